"""The engine's ceiling: revenue by stream as ONE bare DuckDB statement over the raw NDJSON
(dirt rules aside), and how far its numbers are from the marts'."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from pipelines.bench.measure import lower_median
from pipelines.duck import sql_list, sql_path


def stream_differences(bare: dict[tuple[str, str], tuple], marts: dict[tuple[str, str], tuple]) -> dict[str, Any]:
    """How far the bare statement's revenue is from the marts' (they differ by the dirt rules only)."""
    keys = sorted(set(bare) | set(marts))
    worst = 0.0
    for k in keys:
        b, m = bare.get(k), marts.get(k)
        if b is None or m is None:
            worst = max(worst, 1.0)
            continue
        for x, y in zip(b[:4], m[:4], strict=True):
            scale = max(abs(x), abs(y), 1e-9)
            worst = max(worst, abs(x - y) / scale)
    return {"keys": len(keys), "max_relative_difference": round(worst, 6)}


def reference_ctes(ref: Path) -> str:
    """``fx``, ``fees``, ``cats`` and ``params`` (per_coin) from the reference CSVs, for a WITH clause."""
    return f"""fx AS (SELECT * FROM read_csv({sql_path(ref / "fx_rates.csv")}, header = true,
                columns = {{'date': 'DATE', 'currency': 'VARCHAR', 'usd_per_unit': 'DOUBLE'}})),
     fees AS (SELECT * FROM read_csv({sql_path(ref / "store_fees.csv")}, header = true,
                columns = {{'platform': 'VARCHAR', 'fee_rate': 'DOUBLE'}})),
     cats AS (SELECT * FROM read_csv({sql_path(ref / "shop_categories.csv")}, header = true,
                columns = {{'category': 'VARCHAR', 'referral_fee_rate': 'DOUBLE'}})),
     params AS (SELECT CAST(value AS DOUBLE) AS per_coin
                FROM read_csv({sql_path(ref / "parameters.csv")}, header = true,
                columns = {{'name': 'VARCHAR', 'value': 'VARCHAR'}}) WHERE name = 'creator_usd_per_coin')"""


def bare_sql(data_dir: Path, start: dt.date, end: dt.date) -> str:
    """ONE DuckDB statement: revenue by (event_date, stream) straight from the raw NDJSON of
    arrival days start..end+3, joined to fx / store fees / categories / parameters. No dirt
    rules (malformed lines are skipped by the reader, nothing is deduplicated)."""
    ref = data_dir / "reference"

    def files(log: str) -> list[str]:
        out = []
        for i in range((end - start).days + 4):
            folder = data_dir / "raw" / log / f"dt={start + dt.timedelta(days=i)}"
            if folder.is_dir():
                out += [
                    p.as_posix()
                    for p in sorted(folder.iterdir())
                    if p.name.endswith((".jsonl", ".jsonl.gz")) and p.stat().st_size
                ]
        return out

    columns = {
        "impressions": "pricing_model VARCHAR, price DOUBLE, currency VARCHAR, clicked BOOLEAN",
        "coin_purchases": "platform VARCHAR, amount DOUBLE, currency VARCHAR",
        "gifts": "coins BIGINT",
        "orders": "event_type VARCHAR, category VARCHAR, amount DOUBLE, currency VARCHAR",
        "fund_payouts": "amount DOUBLE, currency VARCHAR",
    }

    def read(log: str) -> str:
        spec = {"event_time": "VARCHAR"} | dict(c.rsplit(" ", 1) for c in columns[log].split(", "))
        paths = files(log)
        if not paths:
            cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in spec.items())
            return f"(SELECT CAST(NULL AS DATE) AS d, {cols} LIMIT 0)"
        struct = "{" + ", ".join(f"'{c}': '{t}'" for c, t in spec.items()) + "}"
        file_list = sql_list(paths)
        return (
            f"(SELECT TRY_CAST(left(event_time, 10) AS DATE) AS d, * FROM read_json({file_list}, "
            f"format = 'newline_delimited', ignore_errors = true, columns = {struct}))"
        )

    return f"""
WITH {reference_ctes(ref)},
     rows AS (
        SELECT e.d, 'advertising' AS stream,
               CASE WHEN e.pricing_model = 'cpm' THEN e.price * fx.usd_per_unit / 1000
                    WHEN e.clicked THEN e.price * fx.usd_per_unit ELSE 0 END AS gross,
               0.0 AS fees, 0.0 AS payouts
        FROM {read("impressions")} e JOIN fx ON fx.date = e.d AND fx.currency = e.currency
        UNION ALL
        SELECT e.d, 'virtual_gifts', e.amount * fx.usd_per_unit, e.amount * fx.usd_per_unit * fees.fee_rate, 0.0
        FROM {read("coin_purchases")} e JOIN fx ON fx.date = e.d AND fx.currency = e.currency
             JOIN fees ON fees.platform = e.platform
        UNION ALL
        SELECT e.d, 'virtual_gifts', 0.0, 0.0, e.coins * params.per_coin FROM {read("gifts")} e, params
        UNION ALL
        SELECT e.d, 'ecommerce',
               CASE WHEN e.event_type = 'refunded' THEN -1 ELSE 1 END
                   * e.amount * fx.usd_per_unit * cats.referral_fee_rate, 0.0, 0.0
        FROM {read("orders")} e JOIN fx ON fx.date = e.d AND fx.currency = e.currency
             JOIN cats ON cats.category = e.category
        UNION ALL
        SELECT e.d, 'creator_fund', 0.0, 0.0, e.amount * fx.usd_per_unit
        FROM {read("fund_payouts")} e JOIN fx ON fx.date = e.d AND fx.currency = e.currency
     )
SELECT d AS event_date, stream, sum(gross) AS gross_revenue_usd, sum(fees) AS platform_fees_usd,
       sum(payouts) AS creator_payouts_usd, sum(gross) - sum(fees) - sum(payouts) AS net_revenue_usd,
       count(*) AS event_count
FROM rows
WHERE d BETWEEN DATE '{start}' AND DATE '{end}'
GROUP BY ALL ORDER BY ALL
"""


def run_bare(data_dir: str, start: str, end: str, repeats: int = 1) -> dict[str, Any]:
    """Time the bare statement ``repeats`` times, each on a fresh connection (run in a child
    process by the benchmark); the median counts, as one run varies by 10–20 %."""
    import duckdb

    sql = bare_sql(Path(data_dir), dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    samples = []
    for _ in range(max(1, repeats)):
        began = time.perf_counter()
        with duckdb.connect() as con:
            con.execute("SET enable_progress_bar = false")  # the benchmark writes a log, not a terminal
            rows = con.execute(sql).fetchall()
        samples.append(round(time.perf_counter() - began, 3))
    return {
        "seconds": lower_median(samples),
        "samples_s": samples,
        "rows": [[r[0].isoformat(), r[1], *r[2:6], int(r[6])] for r in rows],
    }
