-- marts.ecommerce_by_category: shop volume, refunds and the platform's referral take
-- grain: one row per (event_date, region, category) that had accepted order events
-- source: revenue_events WHERE log = 'orders' (events placed and refunded, by their own event_date)
-- measures:
--   orders_placed / orders_refunded   accepted order events of each type
--   gmv_usd               gross merchandise value: sum of amount_usd of placed events
--   refunds_usd           sum of amount_usd of refunded events (a refund counts on its own
--                         event_date, which may be later than the order's)
--   referral_revenue_usd  the platform's referral fees net of refund reversals
--                         = ecommerce gross_revenue_usd
--   affiliate_gmv_usd     gmv_usd of placed orders that carry an affiliate_creator_id
--   affiliate_commissions_usd  commissions owed to affiliate creators (amount_usd * affiliate_rate,
--                         negative on refunds), paid by sellers: creator income, not platform
--                         revenue, so it is not part of referral_revenue_usd
-- ratios (NULL when gmv_usd is 0, e.g. a day with only refunds of older orders):
--   refund_rate  = refunds_usd / gmv_usd  (a flow ratio of the same day: can exceed 1)
--   take_rate    = referral_revenue_usd / gmv_usd  (the category's referral fee rate when there
--                  are no refunds, lower when refunds reverse fees; can be negative)
--   Roll up by summing the USD columns first, then dividing.
-- audit: referral_revenue_usd equals the ecommerce gross of revenue_by_region for the same date and
--   region; gmv, refunds and commissions equal the facts' (asset check reconciles_with_facts); the
--   ratios match their definitions (ratios_are_consistent)
WITH sums AS (
    SELECT
        event_date,
        region,
        category,
        CAST(count_if(order_event_type = 'placed') AS BIGINT)   AS orders_placed,
        CAST(count_if(order_event_type = 'refunded') AS BIGINT) AS orders_refunded,
        usd_sum(CASE WHEN order_event_type = 'placed' THEN amount_usd ELSE 0 END)   AS gmv_usd,
        usd_sum(CASE WHEN order_event_type = 'refunded' THEN amount_usd ELSE 0 END) AS refunds_usd,
        usd_sum(gross_revenue_usd) AS referral_revenue_usd,
        usd_sum(
            CASE WHEN order_event_type = 'placed' AND creator_id IS NOT NULL THEN amount_usd ELSE 0 END
        ) AS affiliate_gmv_usd,
        usd_sum(coalesce(affiliate_commission_usd, 0)) AS affiliate_commissions_usd
    FROM revenue_events
    WHERE log = 'orders'
    GROUP BY event_date, region, category
)
SELECT
    event_date,
    region,
    category,
    orders_placed,
    orders_refunded,
    gmv_usd,
    refunds_usd,
    refunds_usd / NULLIF(gmv_usd, 0)          AS refund_rate,
    referral_revenue_usd,
    referral_revenue_usd / NULLIF(gmv_usd, 0) AS take_rate,
    affiliate_gmv_usd,
    affiliate_commissions_usd
FROM sums
ORDER BY event_date, region, category
