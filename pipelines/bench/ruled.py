"""The benchmark's second yardstick: the contract's rules as ONE DuckDB statement that writes nothing.

The bare statement (``pipelines.bench.bare.bare_sql``) is the engine's ceiling with the dirt rules
left out. This statement keeps them: rules 1–4 are landing's own SQL
(``pipelines.landing.rules_sql.landing_select``), rule 5 is a GROUP BY over every copy of an id on
the arrival days the run lands, rules 6–9 are WHERE clauses, and revenue by stream is summed as in
the bare statement. It writes no Parquet, keeps no raw line, runs no check and no Dagster.

So the benchmark can split the pipeline / bare ratio in two: what the contract's rules cost in
the engine (ruled / bare), and what the warehouse adds on top of them (pipeline / ruled: the
layers' Parquet, the quarantine, the checks, the reports, Dagster). Its result must equal the
marts by stream (event counts exactly): rules 5–9 here are SQL, in the pipeline they are polars,
so the benchmark also cross-checks the staged layer on every run.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from pipelines.bench.bare import reference_ctes
from pipelines.contract import (
    AD_FORMATS,
    ADULT_AGE,
    CHANNELS,
    LOGS,
    MAX_AGE,
    MAX_LATENESS_DAYS,
    MIN_AGE,
    ORDER_EVENT_TYPES,
    PLATFORMS,
    PRICING_MODELS,
)
from pipelines.duck import sql_path, sql_str
from pipelines.lake import DataDir
from pipelines.landing.land import raw_files
from pipelines.landing.rules_sql import landing_select, register_udfs
from pipelines.staged.rules import identity_columns, identity_sql

_MONEY = "e.{0} > 0 AND isfinite(e.{0})"  # SPEC §2: > 0; 1e400 parses as infinity, no finite amount
_COUNTRY = "e.country IN (SELECT country FROM countries)"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"e.{column} IN ({', '.join(repr(v) for v in values)})"


# Rules 6 (bounds and enums) and 7–9 (reference, FX, age) of each log, as the conditions an event
# that counts meets; ``e`` is the event, ``fx`` / ``fees`` / ``cats`` are left-joined to it.
_ACCEPTED: dict[str, list[str]] = {
    "impressions": [
        _in("ad_format", AD_FORMATS),
        _in("pricing_model", PRICING_MODELS),
        _MONEY.format("price"),
        _COUNTRY,
        "fx.usd_per_unit IS NOT NULL",
    ],
    "coin_purchases": [
        f"e.user_age BETWEEN {MIN_AGE} AND {MAX_AGE}",
        _in("platform", PLATFORMS),
        "e.coins > 0",
        _MONEY.format("amount"),
        _COUNTRY,
        "fees.fee_rate IS NOT NULL",
        "fx.usd_per_unit IS NOT NULL",
        f"e.user_age >= {ADULT_AGE}",
    ],
    "gifts": [
        f"e.user_age BETWEEN {MIN_AGE} AND {MAX_AGE}",
        "e.coins > 0",
        _COUNTRY,
        "e.gift_type IN (SELECT gift_type FROM gift_types)",
        f"e.user_age >= {ADULT_AGE}",
    ],
    "orders": [
        _in("event_type", ORDER_EVENT_TYPES),
        _in("channel", CHANNELS),
        _MONEY.format("amount"),
        "e.affiliate_rate >= 0 AND e.affiliate_rate < 1",
        _COUNTRY,
        "cats.referral_fee_rate IS NOT NULL",
        "fx.usd_per_unit IS NOT NULL",
    ],
    "fund_payouts": [
        "e.qualified_views >= 0",
        _MONEY.format("amount"),
        _COUNTRY,
        "fx.usd_per_unit IS NOT NULL",
    ],
}

# Revenue of one accepted event (SPEC §3): (stream, gross, platform fees, creator payouts).
_REVENUE: dict[str, str] = {
    "impressions": "'advertising', CASE WHEN e.pricing_model = 'cpm' THEN e.price * fx.usd_per_unit / 1000 "
    "WHEN e.clicked THEN e.price * fx.usd_per_unit ELSE 0 END, 0.0, 0.0",
    "coin_purchases": "'virtual_gifts', e.amount * fx.usd_per_unit, e.amount * fx.usd_per_unit * fees.fee_rate, 0.0",
    "gifts": "'virtual_gifts', 0.0, 0.0, e.coins * (SELECT per_coin FROM params)",
    "orders": "'ecommerce', CASE WHEN e.event_type = 'refunded' THEN -1 ELSE 1 END "
    "* e.amount * fx.usd_per_unit * cats.referral_fee_rate, 0.0, 0.0",
    "fund_payouts": "'creator_fund', 0.0, 0.0, e.amount * fx.usd_per_unit",
}

_JOINS: dict[str, str] = {
    "impressions": "LEFT JOIN fx ON fx.date = e.event_date AND fx.currency = e.currency",
    "coin_purchases": "LEFT JOIN fx ON fx.date = e.event_date AND fx.currency = e.currency "
    "LEFT JOIN fees ON fees.platform = e.platform",
    "gifts": "",
    "orders": "LEFT JOIN fx ON fx.date = e.event_date AND fx.currency = e.currency "
    "LEFT JOIN cats ON cats.category = e.category",
    "fund_payouts": "LEFT JOIN fx ON fx.date = e.event_date AND fx.currency = e.currency",
}


def _events(data: DataDir, log: str, start: dt.date, end: dt.date) -> str | None:
    """Rules 1–5 of one log: one row per event of START..END that survives them (rule 5 over the
    copies of every arrival day START..END+3, as `revwh run` lands them); None without raw files."""
    scans = []
    for i in range((end - start).days + 1 + MAX_LATENESS_DAYS):
        arrival = start + dt.timedelta(days=i)
        files = [p for p in raw_files(data, log, arrival) if p.stat().st_size > 0]
        if files:
            scans.append(f"SELECT * FROM ({landing_select(log, files, arrival.isoformat())}) WHERE reason IS NULL")
    if not scans:
        return None
    copies = "\nUNION ALL\n".join(scans)
    identity = identity_sql(log)
    columns = identity_columns(log)
    # Rule 5: an id whose copies are not all identical is rejected whole; identical ones count once.
    # The copies are materialised first (without their raw line): DuckDB aggregates a table several
    # times faster than the streaming output of the rules.
    return f"""
        WITH copies AS MATERIALIZED (SELECT event_id, event_date, {", ".join(identity_columns(log))} FROM ({copies}))
        SELECT event_id, any_value(event_date) AS event_date, {", ".join(f"any_value({c}) AS {c}" for c in columns)}
        FROM copies
        GROUP BY event_id
        HAVING min({identity}) IS NOT DISTINCT FROM max({identity})
           AND any_value(event_date) BETWEEN DATE '{start}' AND DATE '{end}'"""


def ruled_sql(data_dir: Path, start: dt.date, end: dt.date) -> str:
    """ONE statement: revenue by (event_date, stream) after every rule of SPEC §4, from the raw files."""
    data = DataDir.at(data_dir)
    ref = data.root / "reference"
    parts = []
    for log in LOGS:
        events = _events(data, log, start, end)
        if events is None:
            continue
        accepted = " AND ".join(f"coalesce({c}, false)" for c in _ACCEPTED[log])
        parts.append(f"SELECT e.event_date, {_REVENUE[log]} FROM ({events}) e {_JOINS[log]} WHERE {accepted}")
    if not parts:
        parts = ["SELECT CAST(NULL AS DATE), '', 0.0, 0.0, 0.0 LIMIT 0"]
    rows = "\nUNION ALL\n".join(parts)
    return f"""
WITH countries AS (SELECT country FROM read_csv({sql_path(ref / "countries.csv")},
                                                header = true, all_varchar = true)),
     gift_types AS (SELECT gift_type FROM read_csv({sql_path(ref / "gift_catalog.csv")},
                                                   header = true, all_varchar = true)),
     {reference_ctes(ref)},
     rows (event_date, stream, gross, fees, payouts) AS ({rows})
SELECT event_date, stream, sum(gross) AS gross_revenue_usd, sum(fees) AS platform_fees_usd,
       sum(payouts) AS creator_payouts_usd, sum(gross) - sum(fees) - sum(payouts) AS net_revenue_usd,
       count(*) AS event_count
FROM rows
GROUP BY ALL ORDER BY ALL
"""


def run_ruled(data_dir: str, start: str, end: str) -> dict[str, Any]:
    """Time the ruled statement once (the benchmark runs it in a child process, and only when asked:
    ``--ruled``). It holds every accepted copy of the range at once for rule 5, unlike the pipeline,
    which stages a bounded group of buckets at a time: it runs under DuckDB's default memory limit
    (80 % of RAM; 11 GB for 5 × 3M events), not the pipeline's."""
    import duckdb

    data = DataDir.at(data_dir)
    sql = ruled_sql(data.root, dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    data.scratch.mkdir(parents=True, exist_ok=True)
    began, cpu0 = time.perf_counter(), time.process_time()
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET temp_directory = {sql_str(data.scratch)}")
        con.execute("SET preserve_insertion_order = false")
        register_udfs(con)
        rows = con.execute(sql).fetchall()
    return {
        "seconds": round(time.perf_counter() - began, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),
        "rows": [[r[0].isoformat(), r[1], *r[2:6], int(r[6])] for r in rows],
    }
