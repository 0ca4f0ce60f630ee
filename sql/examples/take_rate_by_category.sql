-- question: What share of GMV does the platform keep as referral revenue (take rate), per category
--   and region, and how much of the GMV is driven by affiliate creators?
-- source: marts.ecommerce_by_category
-- notes: take_rate = referral revenue (net of refund reversals) / GMV; affiliate_gmv_share =
--   affiliate GMV / GMV; commission_rate = affiliate commissions / affiliate GMV. All NULL when
--   their denominator is 0. Commissions are paid by sellers, not by the platform.
SELECT
    category,
    region,
    sum(gmv_usd)                                                       AS gmv_usd,
    sum(referral_revenue_usd)                                          AS referral_revenue_usd,
    sum(referral_revenue_usd) / nullif(sum(gmv_usd), 0)               AS take_rate,
    sum(affiliate_gmv_usd) / nullif(sum(gmv_usd), 0)                  AS affiliate_gmv_share,
    sum(affiliate_commissions_usd)                                     AS affiliate_commissions_usd,
    sum(affiliate_commissions_usd) / nullif(sum(affiliate_gmv_usd), 0) AS commission_rate
FROM marts.ecommerce_by_category
GROUP BY ALL
ORDER BY category, region
