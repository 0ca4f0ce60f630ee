"""Rule 5 across any distance: ids whose landed copies lie more than 3 event days apart.

Two copies of an id with different event dates differ (their event_time does), so SPEC §4
rule 5 rejects every copy, however far apart the dates are. The staged step compares each
date with its neighbours D-3..D+3 directly (``stage._Ids``); this module finds the rest from
the landing id indexes (``pipelines.landing.id_index``) of every arrival day in the lake:

1. read the (hash, event_date) rows, a range of hashes at a time (bounded memory: the
   indexes are sorted by hash, so a range reads only its row groups);
2. keep the hashes whose dates span more than 3 days and touch the run's dates, or that have a
   copy on the run's arrival days (S..E+3, what the run lands) and one on a date outside the run;
3. confirm on the strings, read from the few landing files that can hold them (a hash
   collision never counts).

The result also says which dates outside the run a re-staging of the run's dates makes stale
(their partitions are stale until they are re-run). Rule 5 ties every date holding a copy of an
id to every other such date, so a date D outside the run is stale when the run changes that tie:

- a copy of an id that arrived on one of the run's arrival days S..E+3 meets one on D (at any
  distance, so these ids are also collected when the dates are 1–3 days apart) and D was staged
  without rejecting it. Those arrival days hold copies of S-3..E+3, so a copy the run lands for
  E+2, a date it does not stage, can tie an id to a date D staged earlier;
- an id that a date of the run's reach (S-3..E+3) rejected before this run has no copy on the
  run's dates any more (its file was removed or corrected), D holds the only copies left and D
  rejected them: D's rejection may have rested on the copy that is gone (also when that copy's
  date was landed but never staged, so only D's own quarantine, inside the reach, remembers the
  id). A removed copy whose date was never staged and whose partner D lies outside the reach is
  not found: nothing left in the lake remembers it (README, Contract decisions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import MAX_LATENESS_DAYS, Reason, arrival_days
from pipelines.duck import compute_connection, sql_list
from pipelines.lake import DataDir
from pipelines.landing.id_index import id_index_rows, landed_arrivals
from pipelines.landing.land import landing_sources
from pipelines.staged.rules import identity_sql

# (hash, date) rows held at once: 12 bytes each plus a sorted copy, about 0.5 GB.
CHUNK_ROWS = 20_000_000
# Below this share of the lake's rows, the run's hashes are probed first (one-day runs
# over a long history), instead of sorting every row.
PROBE_SHARE = 0.125
_EMPTY = pl.DataFrame(schema={"event_id": pl.String, "event_date": pl.Date})


def reach(days: Iterable[dt.date]) -> list[dt.date]:
    """The event dates a run over ``days`` can land copies of: each date and 3 days on each side
    (the arrival days D..D+3 of its dates hold copies of D-3..D+3)."""
    return sorted({d + dt.timedelta(days=i) for d in days for i in range(-MAX_LATENESS_DAYS, MAX_LATENESS_DAYS + 1)})


@dataclass(frozen=True)
class FarConflicts:
    """Every landed (event_id, event_date) of the ids found, confirmed on the strings: ``copies``
    of the ids with copies on dates more than 3 days apart, or on a run date and a date outside
    the run; ``orphans``, the copies left, all on one date outside the run, of ids that the run's
    dates rejected as conflicting before this run and no longer hold."""

    log: str
    copies: pl.DataFrame
    orphans: pl.DataFrame = field(default_factory=lambda: _EMPTY)

    def ids_on(self, day: dt.date) -> pl.Series:
        """The ids with a copy on ``day`` (rejected there as ``conflicting_duplicate``)."""
        return self.copies.filter(pl.col("event_date") == day).get_column("event_id").unique()

    def stale_dates(self, data: DataDir, days: Iterable[dt.date]) -> list[dt.date]:
        """Dates outside ``days`` staged earlier whose partitions no longer follow rule 5: their
        quarantine lacks some of ``copies``' ids (they still count events rule 5 rejects), or it
        rejects some of ``orphans``' ids (their other copies are gone)."""
        inside = set(days)
        dates = set(self.copies.get_column("event_date").to_list()) | set(self.orphans.get_column("event_date"))
        stale = []
        for day in sorted(dates - inside):
            if not data.staged_file(self.log, day).exists():
                continue
            path = data.quarantine_file("staged", self.log, day)
            rejected = _conflicting_ids(path).implode() if path.exists() else _EMPTY.get_column("event_id").implode()
            orphans = self.orphans.filter(pl.col("event_date") == day).get_column("event_id")
            if not self.ids_on(day).is_in(rejected).all() or orphans.is_in(rejected).any():
                stale.append(day)
        return stale


def _conflicting_ids(quarantine: Path) -> pl.Series:
    """The ids a staged quarantine file rejects as ``conflicting_duplicate``."""
    frame = pl.read_parquet(quarantine, columns=["event_id", "reason"], glob=False)
    return frame.filter(pl.col("reason") == str(Reason.CONFLICTING_DUPLICATE)).get_column("event_id").unique()


def rejected_before(data: DataDir, log: str, days: Iterable[dt.date]) -> pl.Series:
    """The ids the staged quarantines of ``days`` reject as conflicting, as they stand before
    the run re-stages those dates."""
    paths = [data.quarantine_file("staged", log, d) for d in sorted(set(days))]
    found = [_conflicting_ids(p) for p in paths if p.exists()]
    return pl.concat(found).unique() if found else _EMPTY.get_column("event_id")


def find_far_conflicts(
    data: DataDir,
    log: str,
    days: Iterable[dt.date],
    buckets: int,
    *,
    chunk_rows: int | None = None,
    rejected: pl.Series | None = None,
) -> FarConflicts:
    """Ids with a copy on one of ``days`` and another copy more than 3 event days away, or with
    a copy on the arrival days of ``days`` (D..D+3) and another on a date outside ``days``;
    and the orphans of ``rejected`` (by default :func:`rejected_before` of the reach dates, read
    now, before ``days`` are re-staged)."""
    days = sorted(set(days))
    rejected = rejected_before(data, log, reach(days)) if rejected is None else rejected
    with compute_connection(data) as con:
        arrivals = landed_arrivals(data, log)
        found = [id_index_rows(data, log, arrival, con) for arrival in arrivals]
        total = sum(rows for _, rows in found)
        runs_arrivals = set(arrival_days(days))
        indexes = IdIndexes(
            run=[path for (path, _), a in zip(found, arrivals, strict=True) if a in runs_arrivals],
            other=[path for (path, _), a in zip(found, arrivals, strict=True) if a not in runs_arrivals],
        )
        if not days or not total:
            return FarConflicts(log, _EMPTY)
        lost = _hashes(con, rejected)
        chunks = max(1, -(-total // (chunk_rows or CHUNK_ROWS)))
        parts = [_far_hashes(indexes, days, chunk, chunks, total, lost) for chunk in range(chunks)]
        far = pl.concat([f for f, _ in parts])
        orphans = pl.concat([o for _, o in parts])
        copies = _confirm(con, data, log, far, buckets) if far.height else _EMPTY
        orphans = _confirm_orphans(con, data, log, orphans, rejected, buckets) if orphans.height else _EMPTY
        return FarConflicts(log, copies, orphans)


def _hashes(con: duckdb.DuckDBPyConnection, ids: pl.Series) -> pl.Series:
    """DuckDB's hash of each id, as the id indexes hold it."""
    if not ids.len():
        return pl.Series("h", [], dtype=pl.UInt64)
    con.register("ids_to_hash", pl.DataFrame({"event_id": ids}).to_arrow())
    try:
        return con.sql("SELECT DISTINCT hash(event_id) AS h FROM ids_to_hash").pl().get_column("h")
    finally:
        con.unregister("ids_to_hash")


@dataclass(frozen=True)
class IdIndexes:
    """The lake's id indexes: those of the arrival days the run lands, and the others."""

    run: list[Path]
    other: list[Path]

    def scan(self) -> pl.LazyFrame:
        """(h, event_date, by_run): by_run tells a copy that arrived on one of the run's days."""
        parts = [
            pl.scan_parquet(paths, hive_partitioning=False, glob=False).with_columns(by_run=pl.lit(flag))
            for paths, flag in ((self.run, True), (self.other, False))
            if paths
        ]
        return pl.concat(parts)


def _far_hashes(
    indexes: IdIndexes, days: list[dt.date], chunk: int, chunks: int, total: int, lost: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(h, event_date) of the hashes of one hash range that touch ``days`` and span more than the
    window, or have a copy the run lands and one outside ``days``; and (h, event_date) of the
    ``lost`` hashes that no longer touch ``days`` and lie on one date."""
    rows = indexes.scan()
    low, high = (chunk << 64) // chunks, ((chunk + 1) << 64) // chunks
    if chunk:
        rows = rows.filter(pl.col("h") >= pl.lit(low, dtype=pl.UInt64))
    if chunk < chunks - 1:
        rows = rows.filter(pl.col("h") < pl.lit(high, dtype=pl.UInt64))
    frame = rows.collect()
    in_run = pl.col("event_date").is_in(pl.Series(days, dtype=pl.Date).implode())
    lost_rows = (frame.filter(pl.col("h").is_in(lost.implode())) if lost.len() else frame.clear()).drop("by_run")
    orphans = lost_rows.join(
        lost_rows.group_by("h")
        .agg(in_run.any().alias("touches_run"), pl.col("event_date").n_unique().alias("dates"))
        .filter(~pl.col("touches_run") & (pl.col("dates") == 1))
        .select("h"),
        on="h",
        how="semi",
    ).unique()
    ours = frame.filter(pl.col("by_run")).get_column("h")
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
            pl.col("by_run").any().alias("landed_by_run"),
            (~in_run).any().alias("leaves_run"),
        )
        .filter(
            (pl.col("touches_run") & ((pl.col("last") - pl.col("first")).dt.total_days() > MAX_LATENESS_DAYS))
            | (pl.col("landed_by_run") & pl.col("leaves_run") & (pl.col("first") != pl.col("last")))
        )
    )
    return repeated.drop("by_run").join(far.select("h"), on="h", how="semi").unique(), orphans


def _landed(
    con: duckdb.DuckDBPyConnection,
    data: DataDir,
    log: str,
    rows: pl.DataFrame,
    buckets: int,
    identical_among: pl.Series | None = None,
) -> pl.DataFrame:
    """The landed (event_id, event_date) whose hash and date are among ``rows`` (h, event_date),
    distinct: read from the landing files of those dates and the hashes' buckets only. With
    ``identical_among``, only those of these ids whose copies are all identical (rule 5's identity,
    decided in DuckDB: an id may have millions of copies)."""
    wanted = rows.select("h").unique()
    bucket_set = sorted({h % buckets for h in wanted.get_column("h").to_list()})
    files = []
    for day in sorted(set(rows.get_column("event_date").to_list())):
        sources = landing_sources(data, log, day, buckets)
        files += [p for b in bucket_set for p in sources.bucket_files(b)] + sources.other
    if not files:
        return _EMPTY
    copies = f"read_parquet({sql_list(files)}) WHERE hash(event_id) IN (SELECT h FROM far_hashes)"
    query = f"SELECT DISTINCT event_id, event_date FROM {copies}"
    if identical_among is not None:
        con.register("far_ids", pl.DataFrame({"event_id": identical_among.cast(pl.String)}).to_arrow())
        query = f"""WITH c AS (SELECT event_id, event_date, {identity_sql(log)} AS k FROM {copies}
                               AND event_id IN (SELECT event_id FROM far_ids))
                    SELECT DISTINCT event_id, event_date FROM c
                    WHERE event_id IN (SELECT event_id FROM c GROUP BY event_id
                                       HAVING min(k) IS NOT DISTINCT FROM max(k))"""
    con.register("far_hashes", wanted.to_arrow())
    try:
        return con.sql(query).pl()
    finally:
        con.unregister("far_hashes")
        if identical_among is not None:
            con.unregister("far_ids")


def _confirm(con: duckdb.DuckDBPyConnection, data: DataDir, log: str, far: pl.DataFrame, buckets: int) -> pl.DataFrame:
    """The landed (event_id, event_date) of the ``far`` hashes whose ids really have two or
    more dates: read from the landing files of those dates and hashes' buckets only."""
    found = _landed(con, data, log, far, buckets)
    multi = found.group_by("event_id").agg(pl.col("event_date").n_unique().alias("n")).filter(pl.col("n") > 1)
    return found.join(multi.select("event_id"), on="event_id", how="semi").sort("event_id", "event_date")


def _confirm_orphans(
    con: duckdb.DuckDBPyConnection,
    data: DataDir,
    log: str,
    orphans: pl.DataFrame,
    rejected: pl.Series,
    buckets: int,
) -> pl.DataFrame:
    """The (event_id, event_date) of the ``rejected`` ids behind the orphan hashes whose copies left
    are identical (copies that differ on their own date stay rejected whatever happened elsewhere).
    A hash collision with another id may hide an orphan, never invent one."""
    found = _landed(con, data, log, orphans, buckets, identical_among=rejected)
    if found.is_empty():
        return _EMPTY
    return found.cast(_EMPTY.schema).sort("event_id", "event_date")
