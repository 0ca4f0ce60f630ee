-- question: Why were event copies rejected, per log, and what share of each log's rejects does each
--   reason account for? Which arrival day was the worst?
-- source: quality.quarantine (one row per rejected copy; reasons of SPEC §4)
-- notes: counts copies, not events: two conflicting copies of one event are two rows.
SELECT
    log,
    reason,
    count(*)                                                     AS rejected_copies,
    count(*) / sum(count(*)) OVER (PARTITION BY log)             AS share_of_log_rejects,
    min(arrival_date)                                            AS first_arrival_date,
    max(arrival_date)                                            AS last_arrival_date,
    mode(arrival_date)                                           AS busiest_arrival_date
FROM quality.quarantine
GROUP BY log, reason
ORDER BY log, rejected_copies DESC, reason
