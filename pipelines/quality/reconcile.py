"""Reconciliation arithmetic behind the asset checks, as plain functions.

Every count is taken from the files themselves (raw lines, Parquet rows),
not from what the step said it did, so a check catches a step that lies.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import shutil
import zlib
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import LOGS
from pipelines.duck import (
    MAX_LINE_BYTES,
    compute_connection,
    connect,
    read_lines_sql,
    rejects_per_file,
    sql_path,
    union_of_scans,
)
from pipelines.lake import DataDir, temp_sibling
from pipelines.landing.gzip_repair import read_with_gzip_repair
from pipelines.landing.land import RawFileError, landing_files_for_event_date, raw_files
from pipelines.landing.undecodable import count_undecodable_lines, probes_undecodable, set_aside_undecodable
from pipelines.marts.usd_sum import run_with_exact_fallback

CENT = 0.005  # half a cent: sums that round to the same cent agree
# Relative slack on top of CENT, so totals in the millions (or a legal 1e20, summed as DOUBLE in
# another order) are compared to their own precision.
RELATIVE = 1e-9


# A sum of doubles is off by up to about log2(n)·2^-53 of the sum of its values' magnitudes, not of its
# result: where large values cancel (orders of 1e17 USD placed and refunded beside one of 10 USD) a
# polars sum of one group can be dollars off while the marts' usd_sum is exact. A recomputation in
# doubles is trusted to this much (about 900·2^-53) of the magnitudes its group summed: 1e-6 USD for a
# group whose values add up to 1e7 USD in absolute terms, 4,000 USD for one holding 4e16.
MAGNITUDE_RELATIVE = 1e-13


def usd_close(got: float | None, want: float | None, tolerance: float = CENT, magnitude: float = 0.0) -> bool:
    """Two USD totals agree: to ``tolerance``, or to RELATIVE of their size, or to MAGNITUDE_RELATIVE of
    the sum of the magnitudes they were summed from (``magnitude``); equal infinities agree."""
    got, want = got or 0.0, want or 0.0
    if got == want or (math.isnan(got) and math.isnan(want)):
        return True
    slack = MAGNITUDE_RELATIVE * magnitude if math.isfinite(magnitude) else 0.0
    return abs(got - want) <= tolerance + RELATIVE * max(abs(got), abs(want)) + slack


def count_raw_lines(data: DataDir, log: str, day: dt.date, con: duckdb.DuckDBPyConnection | None = None) -> int:
    """Non-blank lines of a raw partition, counted independently of the landing SQL."""
    files = [p for p in raw_files(data, log, day) if p.stat().st_size > 0]
    if not files:
        return 0

    # Lines the reader cannot decode (invalid UTF-8) land in its reject table; they are lines too. It
    # keeps rejects_per_file(files) of a file's: a file that reaches that has its undecodable lines counted
    # by Python instead.
    unreadable = """SELECT parse_filename(s.file_path), count(DISTINCT (e.scan_id, e.file_id, e.line)),
                           bool_and(e.error_type = 'INVALID ENCODING')
                    FROM reject_errors e JOIN reject_scans s ON e.scan_id = s.scan_id AND e.file_id = s.file_id
                    GROUP BY 1"""
    own = con is None
    cursor = connect() if own else con.cursor()

    def count(paths: list[Path]) -> int:
        sql = f"""SELECT count(*) FROM ({union_of_scans(paths, read_lines_sql)})
                  -- a non-blank character; CASE, not OR: the regex only runs on lines that do not open an object
                  WHERE CASE WHEN starts_with(raw, '{{') THEN true ELSE regexp_matches(raw, '[^ \\t\\r]') END"""
        readable = int(cursor.execute(sql).fetchall()[0][0])
        by_name = {p.name: p for p in paths}
        limit = rejects_per_file(len(paths))  # as union_of_scans read them
        rejected = 0
        for name, n, _encoding_only in cursor.execute(unreadable).fetchall():
            full = n >= limit and name in by_name  # the reader kept only some of its rejects
            rejected += count_undecodable_lines(by_name[name], MAX_LINE_BYTES) if full else int(n)
        return readable + rejected

    scratch = temp_sibling(data.scratch / f"count-{log}-{day.isoformat()}")
    try:
        # a file in another encoding: its UTF-8 lines are read from a copy, the others counted aside
        set_aside = 0
        for i, path in enumerate(files):
            if probes_undecodable(path):
                clean = scratch / "utf8" / str(i) / path.name
                try:
                    set_aside += sum(len(batch) for batch in set_aside_undecodable(path, clean))
                except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                    raise RawFileError.unreadable(log, day, path, f"Python's gzip: {exc}") from None
                files[i] = clean
        return read_with_gzip_repair(files, scratch, count) + set_aside
    finally:
        cursor.close()
        shutil.rmtree(scratch, ignore_errors=True)


def parquet_rows(files: list) -> int:
    if not files:
        return 0
    return int(pl.scan_parquet(files, hive_partitioning=False, glob=False).select(pl.len()).collect().item())


def landed_row_counts(data: DataDir, log: str, day: dt.date) -> tuple[int, int]:
    """(accepted rows in landing Parquet, rejected rows in landing quarantine) of one arrival day."""
    accepted = parquet_rows(sorted(data.landing_partition(log, day).glob("*/*.parquet")))
    q = data.quarantine_file("landing", log, day)
    return accepted, parquet_rows([q] if q.exists() else [])


def staged_balance(data: DataDir, log: str, event_date: dt.date) -> dict[str, int]:
    """Copies of event date D in landing vs. what staged made of them."""
    from pipelines.staged.stage import read_staged_stats

    stats = read_staged_stats(data, log, event_date)
    copies = parquet_rows(landing_files_for_event_date(data, log, event_date))
    staged = data.staged_file(log, event_date)
    q = data.quarantine_file("staged", log, event_date)
    return {
        "landed_copies": copies,
        "accepted": parquet_rows([staged] if staged.exists() else []),
        "quarantined": parquet_rows([q] if q.exists() else []),
        "collapsed_duplicates": stats.collapsed if stats else 0,
    }


def staged_balance_problems(data: DataDir, log: str, event_date: dt.date) -> list[str]:
    b = staged_balance(data, log, event_date)
    total = b["accepted"] + b["quarantined"] + b["collapsed_duplicates"]
    if b["landed_copies"] != total:
        return [
            f"{log} {event_date}: {b['landed_copies']} landed copies != {b['accepted']} accepted + "
            f"{b['quarantined']} quarantined + {b['collapsed_duplicates']} collapsed"
        ]
    return []


def facts_problems(data: DataDir, event_date: dt.date) -> list[str]:
    """Facts have exactly one row per staged event of each log."""
    facts = data.facts_file(event_date)
    if not facts.exists():
        return [f"facts {event_date} missing"]
    per_log = dict(pl.scan_parquet(facts, glob=False).group_by("log").len().collect(engine="streaming").iter_rows())
    problems = []
    for log in LOGS:
        staged = data.staged_file(log, event_date)
        expected = parquet_rows([staged] if staged.exists() else [])
        if per_log.get(log, 0) != expected:
            problems.append(f"{event_date} {log}: {per_log.get(log, 0)} facts != {expected} staged events")
    nulls = (
        pl.scan_parquet(facts, glob=False)
        .select(
            pl.col("region").is_null().sum().alias("region"),
            pl.col("net_revenue_usd").is_null().sum().alias("net_revenue_usd"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    problems += [f"{event_date}: {n} facts without {c}" for c, n in nulls.items() if n]
    return problems


MEASURES = ("gross_revenue_usd", "platform_fees_usd", "creator_payouts_usd", "net_revenue_usd")


def _usd_totals(con: duckdb.DuckDBPyConnection, source: str, count: str) -> dict[str, float | int | None]:
    """Each measure's exact total (``usd_sum``) and the sum of its magnitudes, and the event count."""
    columns = ", ".join(f'usd_sum("{m}") AS "{m}", sum(abs("{m}")) AS "|{m}|"' for m in MEASURES)
    query = f"SELECT {columns}, {count} AS event_count FROM {source}"
    row = run_with_exact_fallback(con, lambda: con.execute(query).fetchall()[0])
    names = [f for m in MEASURES for f in (m, f"|{m}|")] + ["event_count"]
    return dict(zip(names, row, strict=True))


def mart_problems(data: DataDir, mart: str, event_date: dt.date) -> list[str]:
    """A revenue mart's measures and event_count sum to the facts' totals, to the cent (or to
    RELATIVE of a total too large for that); event_count exactly.

    Both totals are exact sums (``usd_sum``), so only the rounding of each mart row to a double may
    part them, by at most MAGNITUDE_RELATIVE of the rows' magnitudes: a day where orders of 1e17 USD
    cancel is checked to the cent like any other."""
    facts, mart_file = data.facts_file(event_date), data.mart_file(mart, event_date)
    if not mart_file.exists():
        return [f"{mart} {event_date} missing"]
    con = compute_connection(data)
    try:
        want = _usd_totals(con, f"read_parquet({sql_path(facts)})", "count(*)")
        got = _usd_totals(con, f"read_parquet({sql_path(mart_file)})", "sum(event_count)")
    finally:
        con.close()
    problems = [
        f"{mart} {event_date} {m}: mart {got[m]} != facts {want[m]}"
        for m in MEASURES
        if not usd_close(got[m], want[m], magnitude=float(got[f"|{m}|"] or 0.0))  # type: ignore[arg-type]
    ]
    if (got["event_count"] or 0) != want["event_count"]:
        problems.append(f"{mart} {event_date} event_count: mart {got['event_count']} != facts {want['event_count']}")
    return problems
