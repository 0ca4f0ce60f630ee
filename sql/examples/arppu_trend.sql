-- question: How does revenue per paying user (ARPPU) of virtual gifts move from day to day, and
--   over a trailing 7 days?
-- source: facts.revenue_events (coin purchases), because paying users are distinct users: the
--   per-region counts of marts.gifts_by_region do not add up across regions or days.
-- notes: arppu_usd = coin gross / distinct buyers of the day; arppu_7d_usd = coin gross of the
--   7 days ending that day / distinct buyers over those 7 days. One row per event date of the facts;
--   on a day (or 7 days) without coin purchases the user count is 0 and the ARPPU NULL.
WITH buyers AS (
    SELECT event_date, user_id, sum(gross_revenue_usd) AS coin_gross_usd
    FROM facts.revenue_events
    WHERE log = 'coin_purchases'
    GROUP BY ALL
),
days AS (SELECT DISTINCT event_date FROM facts.revenue_events)
SELECT
    d.event_date,
    count(DISTINCT b.user_id) FILTER (WHERE b.event_date = d.event_date)              AS paying_users,
    coalesce(sum(b.coin_gross_usd) FILTER (WHERE b.event_date = d.event_date), 0)    AS coin_gross_usd,
    sum(b.coin_gross_usd) FILTER (WHERE b.event_date = d.event_date)
        / nullif(count(DISTINCT b.user_id) FILTER (WHERE b.event_date = d.event_date), 0) AS arppu_usd,
    count(DISTINCT b.user_id)                                                        AS paying_users_7d,
    sum(b.coin_gross_usd) / nullif(count(DISTINCT b.user_id), 0)                     AS arppu_7d_usd
FROM days AS d
LEFT JOIN buyers AS b ON b.event_date BETWEEN d.event_date - INTERVAL 6 DAY AND d.event_date
GROUP BY d.event_date
ORDER BY d.event_date
