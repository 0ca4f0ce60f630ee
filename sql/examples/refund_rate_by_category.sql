-- question: Which shop categories have the highest refund rate, and how much GMV is refunded?
-- source: marts.ecommerce_by_category (one row per event_date, region and category)
-- notes: refund_rate = refunds / GMV over the period (a refund counts on its own event date, so a
--   short period can pair refunds with orders placed before it); NULL when GMV is 0.
SELECT
    category,
    sum(orders_placed)                         AS orders_placed,
    sum(orders_refunded)                       AS orders_refunded,
    sum(gmv_usd)                               AS gmv_usd,
    sum(refunds_usd)                           AS refunds_usd,
    sum(refunds_usd) / nullif(sum(gmv_usd), 0) AS refund_rate
FROM marts.ecommerce_by_category
GROUP BY category
ORDER BY refund_rate DESC NULLS LAST, category
