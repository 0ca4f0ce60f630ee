-- question: What did the platform net each day, from how many active users, and how much per user?
-- source: marts.revenue_by_stream (money, reconciled) and facts.revenue_events (distinct users
--   across regions: the per-region active_users of marts.kpis_by_region double-count travellers)
-- notes: net_per_active_user_usd is NULL on a day without any user-carrying event.
WITH money AS (
    SELECT event_date, sum(gross_revenue_usd) AS gross_revenue_usd, sum(net_revenue_usd) AS net_revenue_usd,
           sum(event_count) AS events
    FROM marts.revenue_by_stream
    GROUP BY event_date
),
users AS (
    SELECT event_date, count(DISTINCT user_id) AS active_users
    FROM facts.revenue_events
    GROUP BY event_date
)
SELECT
    m.event_date,
    m.gross_revenue_usd,
    m.net_revenue_usd,
    m.events,
    coalesce(u.active_users, 0)                         AS active_users,
    m.net_revenue_usd / nullif(u.active_users, 0)       AS net_per_active_user_usd
FROM money AS m
LEFT JOIN users AS u USING (event_date)
ORDER BY m.event_date
