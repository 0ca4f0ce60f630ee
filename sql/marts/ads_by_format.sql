-- marts.ads_by_format: advertising delivery and yield per ad format
-- grain: one row per (event_date, region, ad_format) that had accepted impressions
-- source: revenue_events WHERE log = 'impressions' (facts of the event date(s) being built)
-- measures:
--   impressions  accepted impression events (an impression without a click still counts)
--   clicks       impressions with clicked = true, whatever the pricing model
--   spend_usd    what advertisers pay = advertising gross_revenue_usd (cpm: price_usd / 1000 per
--                impression; cpc: price_usd per clicked impression), exact decimal sum
--   cpm_spend_usd / cpc_spend_usd  spend_usd split by pricing model (they add up to spend_usd)
-- ratios (computed from the row's sums; NULL when the denominator is 0, never 0 or infinity):
--   ctr       = clicks / impressions
--   ecpm_usd  = spend_usd / impressions * 1000
--   Ratios do not add up across rows: to roll up (per day, per format, per week) sum
--   clicks, impressions and spend_usd first, then divide.
-- audit: spend_usd sums to the advertising gross of revenue_by_stream / revenue_by_region for the
--   same date and region, impressions and clicks to the facts' counts (asset check
--   reconciles_with_facts); ctr and ecpm_usd match their definitions (ratios_are_consistent)
WITH sums AS (
    SELECT
        event_date,
        region,
        ad_format,
        CAST(count(*) AS BIGINT)                      AS impressions,
        CAST(count_if(clicked) AS BIGINT)             AS clicks,
        usd_sum(gross_revenue_usd)                    AS spend_usd,
        usd_sum(CASE WHEN pricing_model = 'cpm' THEN gross_revenue_usd ELSE 0 END) AS cpm_spend_usd,
        usd_sum(CASE WHEN pricing_model = 'cpc' THEN gross_revenue_usd ELSE 0 END) AS cpc_spend_usd
    FROM revenue_events
    WHERE log = 'impressions'
    GROUP BY event_date, region, ad_format
)
SELECT
    event_date,
    region,
    ad_format,
    impressions,
    clicks,
    CAST(clicks AS DOUBLE) / NULLIF(impressions, 0)   AS ctr,
    spend_usd,
    spend_usd / NULLIF(impressions, 0) * 1000.0       AS ecpm_usd,
    cpm_spend_usd,
    cpc_spend_usd
FROM sums
ORDER BY event_date, region, ad_format
