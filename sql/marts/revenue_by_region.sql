-- marts.revenue_by_region (SPEC §5)
-- grain: one row per (event_date, country, stream); region comes from reference/countries.csv
-- source: revenue_events = facts of the event date(s) being built
-- audit: sums reconcile with facts.revenue_events to the cent (asset check)
SELECT
    event_date,
    region,
    country,
    stream,
    usd_sum(gross_revenue_usd)   AS gross_revenue_usd,
    usd_sum(platform_fees_usd)   AS platform_fees_usd,
    usd_sum(creator_payouts_usd) AS creator_payouts_usd,
    usd_sum(net_revenue_usd)     AS net_revenue_usd,
    CAST(count(*) AS BIGINT)     AS event_count
FROM revenue_events
GROUP BY event_date, region, country, stream
ORDER BY event_date, region, country, stream
