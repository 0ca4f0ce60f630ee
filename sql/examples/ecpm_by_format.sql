-- question: Which ad format earns the most per thousand impressions (eCPM), and how often is it
--   clicked (CTR)?
-- source: marts.ads_by_format (one row per event_date, region and ad_format)
-- notes: eCPM = spend / impressions * 1000 and CTR = clicks / impressions over the whole period,
--   from summed numerators and denominators (averaging the daily ratios would weight small days
--   like big ones); NULL when there were no impressions.
SELECT
    ad_format,
    sum(impressions)                                      AS impressions,
    sum(clicks)                                           AS clicks,
    sum(clicks) / nullif(sum(impressions), 0)             AS ctr,
    sum(spend_usd)                                        AS spend_usd,
    sum(spend_usd) / nullif(sum(impressions), 0) * 1000.0 AS ecpm_usd,
    sum(cpc_spend_usd) / nullif(sum(spend_usd), 0)        AS cpc_share_of_spend
FROM marts.ads_by_format
GROUP BY ad_format
ORDER BY ecpm_usd DESC NULLS LAST, ad_format
