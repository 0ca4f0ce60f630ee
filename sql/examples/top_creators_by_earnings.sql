-- question: Who are the top 10 creators by total earnings over the whole period, and where does
--   their money come from (gifts, creator fund, affiliate commissions)?
-- source: marts.creator_earnings (one row per event_date and creator)
-- notes: total_earnings_usd = gift + fund payouts + affiliate commissions; share_of_all_creators
--   is the creator's part of every creator's total (NULL when that total is 0).
SELECT
    creator_id,
    sum(gift_payouts_usd)          AS gift_payouts_usd,
    sum(fund_payouts_usd)          AS fund_payouts_usd,
    sum(affiliate_commissions_usd) AS affiliate_commissions_usd,
    sum(total_earnings_usd)        AS total_earnings_usd,
    sum(total_earnings_usd) / nullif(sum(sum(total_earnings_usd)) OVER (), 0) AS share_of_all_creators,
    count(DISTINCT event_date)     AS earning_days
FROM marts.creator_earnings
GROUP BY creator_id
ORDER BY total_earnings_usd DESC, creator_id
LIMIT 10
