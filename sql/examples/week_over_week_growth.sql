-- question: How fast is net revenue of each stream growing week over week?
-- source: marts.revenue_by_stream (daily, one row per event_date and stream)
-- notes: weeks start on Monday; a partial first or last week makes its growth misleading, so
--   days_in_week is shown. wow_growth = (this week - previous week) / |previous week|, NULL for
--   the first week of a stream or when the previous week's net was 0.
WITH weekly AS (
    SELECT
        CAST(date_trunc('week', event_date) AS DATE) AS week_start,
        stream,
        sum(net_revenue_usd)       AS net_revenue_usd,
        count(DISTINCT event_date) AS days_in_week
    FROM marts.revenue_by_stream
    GROUP BY ALL
)
SELECT
    week_start,
    stream,
    days_in_week,
    net_revenue_usd,
    lag(net_revenue_usd) OVER (PARTITION BY stream ORDER BY week_start) AS previous_week_net_usd,
    (net_revenue_usd - lag(net_revenue_usd) OVER (PARTITION BY stream ORDER BY week_start))
        / nullif(abs(lag(net_revenue_usd) OVER (PARTITION BY stream ORDER BY week_start)), 0) AS wow_growth
FROM weekly
ORDER BY stream, week_start
