-- question: In which regions do creators get the largest share of what users pay for coins, and
--   how much do app stores keep?
-- source: marts.gifts_by_region
-- notes: payout_ratio = gift payouts / coin gross, store_fee_rate = store fees / coin gross, both
--   over the period and NULL when coin gross is 0. A ratio above 1 means users gifted coins they
--   had bought before the period (or in another region).
SELECT
    region,
    sum(coins_bought)                                      AS coins_bought,
    sum(coins_spent)                                       AS coins_spent,
    sum(coin_gross_usd)                                    AS coin_gross_usd,
    sum(gift_payouts_usd)                                  AS gift_payouts_usd,
    sum(gift_payouts_usd) / nullif(sum(coin_gross_usd), 0) AS payout_ratio,
    sum(store_fees_usd) / nullif(sum(coin_gross_usd), 0)   AS store_fee_rate,
    sum(net_revenue_usd)                                   AS net_revenue_usd
FROM marts.gifts_by_region
GROUP BY region
ORDER BY payout_ratio DESC NULLS LAST, region
