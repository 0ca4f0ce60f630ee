-- question: How does each region's net revenue split between the four streams, week by week?
-- source: marts.kpis_by_region (daily, one row per event_date and region)
-- notes: weeks start on Monday. Shares are recomputed from the week's sums (never averaged from
--   daily shares); they are signed (creator_fund is a cost) and NULL when the week's net is 0.
SELECT
    CAST(date_trunc('week', event_date) AS DATE) AS week_start,
    region,
    sum(advertising_net_usd)   AS advertising_net_usd,
    sum(virtual_gifts_net_usd) AS virtual_gifts_net_usd,
    sum(ecommerce_net_usd)     AS ecommerce_net_usd,
    sum(creator_fund_net_usd)  AS creator_fund_net_usd,
    sum(net_revenue_usd)       AS net_revenue_usd,
    sum(advertising_net_usd) / nullif(sum(net_revenue_usd), 0)   AS advertising_share,
    sum(virtual_gifts_net_usd) / nullif(sum(net_revenue_usd), 0) AS virtual_gifts_share,
    sum(ecommerce_net_usd) / nullif(sum(net_revenue_usd), 0)     AS ecommerce_share,
    sum(creator_fund_net_usd) / nullif(sum(net_revenue_usd), 0)  AS creator_fund_share
FROM marts.kpis_by_region
GROUP BY ALL
ORDER BY week_start, region
