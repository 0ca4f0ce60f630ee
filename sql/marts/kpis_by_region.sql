-- marts.kpis_by_region: the daily regional scorecard
-- grain: one row per (event_date, region) that had accepted events of any log
-- source: revenue_events (all five logs)
-- measures:
--   <stream>_net_usd     net_revenue_usd of each stream (advertising, virtual_gifts, ecommerce,
--                        creator_fund), 0 when the stream had no event; creator_fund is a cost,
--                        so its net is <= 0
--   net_revenue_usd      the four streams together (= sum of the columns above)
--   gross_revenue_usd    gross of all streams, for context
--   active_users         distinct user_id over the logs that carry one (impressions, coin
--                        purchases, gift senders, order buyers; fund payouts have none). A user
--                        active in two regions counts in both; not additive across days.
--   event_count          accepted events of the row
-- ratios (NULL when the denominator is 0):
--   <stream>_share       = <stream>_net_usd / net_revenue_usd: the signed mix of net revenue; the
--                          four shares add up to 1, a share is negative for creator_fund and can
--                          exceed 1 when another stream is negative. NULL when net_revenue_usd = 0.
--   net_revenue_per_active_user_usd = net_revenue_usd / active_users (NULL when no user was
--                          active, e.g. a region with only creator-fund payouts)
-- audit: every <stream>_net_usd equals the net_revenue_usd of revenue_by_region summed over the
--   region's countries; active users match the facts (asset check reconciles_with_facts); shares
--   add up to 1 and ratios match their definitions (ratios_are_consistent)
WITH sums AS (
    SELECT
        event_date,
        region,
        usd_sum(CASE WHEN stream = 'advertising' THEN net_revenue_usd ELSE 0 END)   AS advertising_net_usd,
        usd_sum(CASE WHEN stream = 'virtual_gifts' THEN net_revenue_usd ELSE 0 END) AS virtual_gifts_net_usd,
        usd_sum(CASE WHEN stream = 'ecommerce' THEN net_revenue_usd ELSE 0 END)     AS ecommerce_net_usd,
        usd_sum(CASE WHEN stream = 'creator_fund' THEN net_revenue_usd ELSE 0 END)  AS creator_fund_net_usd,
        usd_sum(net_revenue_usd)                                                    AS net_revenue_usd,
        usd_sum(gross_revenue_usd)                                                  AS gross_revenue_usd,
        CAST(count(DISTINCT user_id) AS BIGINT)                                     AS active_users,
        CAST(count(*) AS BIGINT)                                                    AS event_count
    FROM revenue_events
    GROUP BY event_date, region
)
SELECT
    event_date,
    region,
    advertising_net_usd,
    virtual_gifts_net_usd,
    ecommerce_net_usd,
    creator_fund_net_usd,
    net_revenue_usd,
    gross_revenue_usd,
    advertising_net_usd / NULLIF(net_revenue_usd, 0)   AS advertising_share,
    virtual_gifts_net_usd / NULLIF(net_revenue_usd, 0) AS virtual_gifts_share,
    ecommerce_net_usd / NULLIF(net_revenue_usd, 0)     AS ecommerce_share,
    creator_fund_net_usd / NULLIF(net_revenue_usd, 0)  AS creator_fund_share,
    active_users,
    net_revenue_usd / NULLIF(active_users, 0)          AS net_revenue_per_active_user_usd,
    event_count
FROM sums
ORDER BY event_date, region
