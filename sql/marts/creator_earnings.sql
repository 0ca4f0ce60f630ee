-- marts.creator_earnings: what each creator earned on a day, from every source
-- grain: one row per (event_date, creator_id) with at least one earning event: a gift received,
--   a creator-fund payout, or an order event carrying them as affiliate_creator_id
-- source: revenue_events WHERE creator_id IS NOT NULL AND log IN ('gifts', 'fund_payouts', 'orders')
-- measures (USD, exact sums, usd_sum):
--   gift_payouts_usd           gifts.coins * creator_usd_per_coin (gifts creator_payouts_usd)
--   fund_payouts_usd           creator-fund payouts (fund_payouts creator_payouts_usd)
--   affiliate_commissions_usd  commissions on orders they promoted, paid by the seller; negative on a
--                              refund, so a creator's day can net below zero
--   total_earnings_usd         gift_payouts_usd + fund_payouts_usd + affiliate_commissions_usd
--   gifts_received, coins_received, qualified_views (sum over fund payouts), affiliate_order_events
--   (coins_received and qualified_views are NULL in the rare row whose total does not fit a BIGINT)
-- ratios: none (every column adds up across days and creators)
-- audit: gift + fund payouts sum to the creator_payouts_usd of revenue_by_stream for the date,
--   commissions to the facts' affiliate_commission_usd, and total = the three parts
--   (asset check reconciles_with_facts)
SELECT
    event_date,
    creator_id,
    usd_sum(CASE WHEN log = 'gifts' THEN creator_payouts_usd ELSE 0 END)            AS gift_payouts_usd,
    usd_sum(CASE WHEN log = 'fund_payouts' THEN creator_payouts_usd ELSE 0 END)     AS fund_payouts_usd,
    usd_sum(CASE WHEN log = 'orders' THEN affiliate_commission_usd ELSE 0 END)      AS affiliate_commissions_usd,
    usd_sum(
        CASE
            WHEN log = 'orders' THEN affiliate_commission_usd
            ELSE creator_payouts_usd
        END
    )                                                                               AS total_earnings_usd,
    CAST(count_if(log = 'gifts') AS BIGINT)                                         AS gifts_received,
    TRY_CAST(coalesce(sum(coins) FILTER (WHERE log = 'gifts'), 0) AS BIGINT)            AS coins_received,
    TRY_CAST(coalesce(sum(qualified_views) FILTER (WHERE log = 'fund_payouts'), 0) AS BIGINT) AS qualified_views,
    CAST(count_if(log = 'orders') AS BIGINT)                                        AS affiliate_order_events
FROM revenue_events
WHERE creator_id IS NOT NULL AND log IN ('gifts', 'fund_payouts', 'orders')
GROUP BY event_date, creator_id
ORDER BY event_date, creator_id
