-- question: Which countries bring the most net revenue, and which stream dominates in each?
-- source: marts.revenue_by_region (one row per event_date, country and stream)
-- notes: top_stream is the stream with the largest net in the country over the period.
SELECT
    country,
    any_value(region)                           AS region,
    sum(net_revenue_usd)                        AS net_revenue_usd,
    sum(gross_revenue_usd)                      AS gross_revenue_usd,
    arg_max(stream, stream_net)                 AS top_stream
FROM (
    SELECT country, region, stream, sum(net_revenue_usd) AS net_revenue_usd,
           sum(gross_revenue_usd) AS gross_revenue_usd, sum(net_revenue_usd) AS stream_net
    FROM marts.revenue_by_region
    GROUP BY ALL
)
GROUP BY country
ORDER BY net_revenue_usd DESC, country
