"""Rule 5 across any distance: ids whose landed copies lie more than 3 event days apart.

Two copies of an id with different event dates differ (their event_time does), so SPEC §4
rule 5 rejects every copy, however far apart the dates are. The staged step compares each
date with its neighbours D-3..D+3 directly (``stage._Ids``); this module finds the rest from
the landing id indexes (``pipelines.landing.id_index``) of every arrival day in the lake:

1. read the (hash, event_date) rows, a range of hashes at a time (bounded memory: the
   indexes are sorted by hash, so a range reads only its row groups);
2. keep the hashes whose dates span more than 3 days and touch the run's dates;
3. confirm on the strings, read from the few landing files that can hold them (a hash
   collision never counts).

The result also says which dates outside the run hold such copies but were staged
without rejecting them: those partitions are stale until they are re-run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import MAX_LATENESS_DAYS, Reason
from pipelines.duck import compute_connection, sql_list
from pipelines.lake import DataDir
from pipelines.landing.id_index import id_index_rows, landed_arrivals
from pipelines.landing.land import landing_sources

# (hash, date) rows held at once: 12 bytes each plus a sorted copy, about 0.5 GB.
CHUNK_ROWS = 20_000_000
# Below this share of the lake's rows, the run's hashes are probed first (one-day runs
# over a long history), instead of sorting every row.
PROBE_SHARE = 0.125
_EMPTY = pl.DataFrame(schema={"event_id": pl.String, "event_date": pl.Date})


@dataclass(frozen=True)
class FarConflicts:
    """Every landed (event_id, event_date) of the ids found, confirmed on the strings."""

    log: str
    copies: pl.DataFrame

    def ids_on(self, day: dt.date) -> pl.Series:
        """The ids with a copy on ``day`` (rejected there as ``conflicting_duplicate``)."""
        return self.copies.filter(pl.col("event_date") == day).get_column("event_id").unique()

    def stale_dates(self, data: DataDir, days: Iterable[dt.date]) -> list[dt.date]:
        """Dates outside ``days`` staged earlier whose quarantine lacks some of these ids:
        their staged, facts and mart partitions still count events rule 5 rejects."""
        inside = set(days)
        stale = []
        for day in sorted(set(self.copies.get_column("event_date").to_list()) - inside):
            if not data.staged_file(self.log, day).exists():
                continue
            path = data.quarantine_file("staged", self.log, day)
            rejected = (
                pl.read_parquet(path, columns=["event_id", "reason"])
                .filter(pl.col("reason") == str(Reason.CONFLICTING_DUPLICATE))
                .get_column("event_id")
                if path.exists()
                else _EMPTY.get_column("event_id")
            )
            if not self.ids_on(day).is_in(rejected.implode()).all():
                stale.append(day)
        return stale


def find_far_conflicts(
    data: DataDir, log: str, days: Iterable[dt.date], buckets: int, *, chunk_rows: int | None = None
) -> FarConflicts:
    """Ids with a copy on one of ``days`` and another copy more than 3 event days away."""
    days = sorted(set(days))
    with compute_connection(data) as con:
        found = [id_index_rows(data, log, arrival, con) for arrival in landed_arrivals(data, log)]
        indexes, total = [path for path, _ in found], sum(rows for _, rows in found)
        if not days or not total:
            return FarConflicts(log, _EMPTY)
        chunks = max(1, -(-total // (chunk_rows or CHUNK_ROWS)))
        far = pl.concat([_far_hashes(indexes, days, chunk, chunks, total) for chunk in range(chunks)])
        if not far.height:
            return FarConflicts(log, _EMPTY)
        return FarConflicts(log, _confirm(con, data, log, far, buckets))


def _far_hashes(indexes: list[Path], days: list[dt.date], chunk: int, chunks: int, total: int) -> pl.DataFrame:
    """(h, event_date) of the hashes of one hash range whose dates span more than the window
    and touch ``days``."""
    rows = pl.scan_parquet(indexes, hive_partitioning=False)
    low, high = (chunk << 64) // chunks, ((chunk + 1) << 64) // chunks
    if chunk:
        rows = rows.filter(pl.col("h") >= pl.lit(low, dtype=pl.UInt64))
    if chunk < chunks - 1:
        rows = rows.filter(pl.col("h") < pl.lit(high, dtype=pl.UInt64))
    frame = rows.collect()
    in_run = pl.col("event_date").is_in(pl.Series(days, dtype=pl.Date).implode())
    ours = frame.filter(in_run).get_column("h")
    if ours.len() < PROBE_SHARE * max(1, total // chunks):
        frame = frame.filter(pl.col("h").is_in(ours.implode()))
    frame = frame.sort("h")
    h = frame.get_column("h")
    repeats = (h == h.shift(1)).fill_null(False) | (h == h.shift(-1)).fill_null(False)
    repeated = frame.filter(repeats)
    far = (
        repeated.group_by("h")
        .agg(
            pl.col("event_date").min().alias("first"),
            pl.col("event_date").max().alias("last"),
            in_run.any().alias("touches_run"),
        )
        .filter(pl.col("touches_run") & ((pl.col("last") - pl.col("first")).dt.total_days() > MAX_LATENESS_DAYS))
    )
    return repeated.join(far.select("h"), on="h", how="semi").unique()


def _confirm(con: duckdb.DuckDBPyConnection, data: DataDir, log: str, far: pl.DataFrame, buckets: int) -> pl.DataFrame:
    """The landed (event_id, event_date) of the ``far`` hashes whose ids really have two or
    more dates: read from the landing files of those dates and hashes' buckets only."""
    wanted = far.select("h").unique()
    bucket_set = sorted({h % buckets for h in wanted.get_column("h").to_list()})
    files = []
    for day in sorted(set(far.get_column("event_date").to_list())):
        sources = landing_sources(data, log, day, buckets)
        files += [p for b in bucket_set for p in sources.bucket_files(b)] + sources.other
    if not files:
        return _EMPTY
    con.register("far_hashes", wanted.to_arrow())
    try:
        found = con.sql(
            f"""SELECT DISTINCT event_id, event_date FROM read_parquet({sql_list(files)})
                WHERE hash(event_id) IN (SELECT h FROM far_hashes)"""
        ).pl()
    finally:
        con.unregister("far_hashes")
    multi = found.group_by("event_id").agg(pl.col("event_date").n_unique().alias("n")).filter(pl.col("n") > 1)
    return found.join(multi.select("event_id"), on="event_id", how="semi").sort("event_id", "event_date")
