-- marts.gifts_by_region: the virtual-gifts economy (coins bought, coins gifted to creators)
-- grain: one row per (event_date, region) that had accepted coin purchases or gifts
-- source: revenue_events WHERE stream = 'virtual_gifts' (logs coin_purchases and gifts)
-- measures:
--   coins_bought        sum of coin_purchases.coins
--   coins_spent         sum of gifts.coins (coins sent to creators; may be coins bought earlier)
--                       (each NULL in the rare row whose total does not fit a BIGINT)
--   coin_purchases / gifts_sent   accepted events of each log
--   paying_users        distinct coin_purchases.user_id in the row (a user who bought in two
--                       regions counts once in each; not additive across days or regions)
--   gifters             distinct gifts.user_id (senders)
--   coin_gross_usd      what users paid for coins = virtual_gifts gross_revenue_usd
--   store_fees_usd      app-store fees = virtual_gifts platform_fees_usd
--   gift_payouts_usd    creators' share of gifted coins = virtual_gifts creator_payouts_usd
--   net_revenue_usd     coin_gross_usd - store_fees_usd - gift_payouts_usd
-- ratios (NULL when the denominator is 0, e.g. a region with gifts but no coin purchase that day):
--   arppu_usd             = coin_gross_usd / paying_users  (average revenue per paying user)
--   creator_payout_ratio  = gift_payouts_usd / coin_gross_usd  (can exceed 1 on a day when users
--                           gift coins they bought before)
--   To roll ARPPU up over days or regions, count distinct buyers in facts.revenue_events: summing
--   paying_users double-counts users who bought on several days.
-- audit: coin_gross_usd, store_fees_usd, gift_payouts_usd and net_revenue_usd equal the
--   virtual_gifts measures of revenue_by_region for the same date and region (asset check
--   reconciles_with_facts); the ratios match their definitions (ratios_are_consistent)
WITH sums AS (
    SELECT
        event_date,
        region,
        TRY_CAST(coalesce(sum(coins) FILTER (WHERE log = 'coin_purchases'), 0) AS BIGINT) AS coins_bought,
        TRY_CAST(coalesce(sum(coins) FILTER (WHERE log = 'gifts'), 0) AS BIGINT)          AS coins_spent,
        CAST(count_if(log = 'coin_purchases') AS BIGINT)                            AS coin_purchases,
        CAST(count_if(log = 'gifts') AS BIGINT)                                     AS gifts_sent,
        CAST(count(DISTINCT user_id) FILTER (WHERE log = 'coin_purchases') AS BIGINT) AS paying_users,
        CAST(count(DISTINCT user_id) FILTER (WHERE log = 'gifts') AS BIGINT)          AS gifters,
        usd_sum(gross_revenue_usd)   AS coin_gross_usd,
        usd_sum(platform_fees_usd)   AS store_fees_usd,
        usd_sum(creator_payouts_usd) AS gift_payouts_usd,
        usd_sum(net_revenue_usd)     AS net_revenue_usd
    FROM revenue_events
    WHERE stream = 'virtual_gifts'
    GROUP BY event_date, region
)
SELECT
    event_date,
    region,
    coins_bought,
    coins_spent,
    coin_purchases,
    gifts_sent,
    paying_users,
    gifters,
    coin_gross_usd,
    store_fees_usd,
    gift_payouts_usd,
    net_revenue_usd,
    coin_gross_usd / NULLIF(paying_users, 0)     AS arppu_usd,
    gift_payouts_usd / NULLIF(coin_gross_usd, 0) AS creator_payout_ratio
FROM sums
ORDER BY event_date, region
