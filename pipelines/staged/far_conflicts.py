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

The hashes found (step 2) and the confirmed copies (step 3) go to Parquet files in the scratch
folder, not memory: a producer whose ids restart every day ties every copy of a range together
(60 days of 300k such ids: 18M copies, which held 4 GiB in memory). The copies are sorted by event
date, so each piece of the staged step reads only its date's row groups and its buckets' ids.

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
import shutil
import tempfile
import weakref
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import MAX_LATENESS_DAYS, Reason, arrival_days
from pipelines.duck import compute_connection, sql_list, sql_path, sql_str
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


@dataclass
class FarConflicts:
    """Every landed (event_id, event_date) of the ids found, confirmed on the strings: the copies
    of the ids with copies on dates more than 3 days apart, or on a run date and a date outside
    the run (a Parquet file sorted by date, ``copies_file``; None when there are none); ``orphans``,
    the copies left, all on one date outside the run, of ids that the run's dates rejected as
    conflicting before this run and no longer hold.

    The file lives in a scratch folder removed by :meth:`close` (or the ``with`` block, or when the
    object is collected)."""

    log: str
    copies_file: Path | None = None
    orphans: pl.DataFrame = field(default_factory=lambda: _EMPTY)
    ids: int = 0  # distinct ids in copies_file
    _cleanup: weakref.finalize | None = field(default=None, repr=False, compare=False)

    def __enter__(self) -> FarConflicts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the scratch folder of ``copies_file``."""
        if self._cleanup is not None:
            self._cleanup()

    @property
    def copies(self) -> pl.DataFrame:
        """Every copy (event_id, event_date), sorted: the whole file in memory, for small cases."""
        if self.copies_file is None:
            return _EMPTY
        frame = pl.read_parquet(self.copies_file, columns=["event_id", "event_date"], glob=False)
        return frame.sort("event_id", "event_date")

    def ids_on(self, day: dt.date, buckets: Collection[int] | None = None, of: int = 1) -> pl.Series:
        """The ids with a copy on ``day`` (rejected there as ``conflicting_duplicate``); with
        ``buckets``, only those whose hash falls in them (of ``of`` buckets)."""
        if self.copies_file is None:
            return _EMPTY.get_column("event_id")
        rows = pl.scan_parquet(self.copies_file, glob=False).filter(pl.col("event_date") == day)
        if buckets is not None:
            rows = rows.filter((pl.col("h") % of).is_in(pl.Series(sorted(buckets), dtype=pl.UInt64).implode()))
        return rows.select("event_id").unique().collect().get_column("event_id")

    def dates(self) -> list[dt.date]:
        """The event dates holding a copy or an orphan."""
        found = set(self.orphans.get_column("event_date").to_list())
        if self.copies_file is not None:
            rows = pl.scan_parquet(self.copies_file, glob=False).select(pl.col("event_date").unique())
            found |= set(rows.collect().get_column("event_date").to_list())
        return sorted(found)

    def stale_dates(self, data: DataDir, days: Iterable[dt.date]) -> list[dt.date]:
        """Dates outside ``days`` staged earlier whose partitions no longer follow rule 5: their
        quarantine lacks some of the copies' ids (they still count events rule 5 rejects), or it
        rejects some of ``orphans``' ids (their other copies are gone). Compared in DuckDB, within
        its memory limit: with ids that restart every day, each date holds millions of both."""
        inside = set(days)
        candidates = [d for d in self.dates() if d not in inside and data.staged_file(self.log, d).exists()]
        if not candidates:
            return []
        copies = f"read_parquet({sql_path(self.copies_file)})" if self.copies_file else "(FROM orphans LIMIT 0)"
        stale = []
        with compute_connection(data) as con:
            con.register("orphans", self.orphans.select("event_id", "event_date").to_arrow())
            for day in candidates:
                path = data.quarantine_file("staged", self.log, day)
                rejected = (
                    f"""SELECT event_id FROM read_parquet({sql_path(path)}) WHERE event_id IS NOT NULL
                        AND reason = {sql_str(str(Reason.CONFLICTING_DUPLICATE))}"""
                    if path.exists()
                    else "SELECT event_id FROM orphans WHERE false"
                )
                kept = f"SELECT 1 FROM {copies} WHERE event_date = $day AND event_id NOT IN ({rejected}) LIMIT 1"
                lost = f"SELECT 1 FROM orphans WHERE event_date = $day AND event_id IN ({rejected}) LIMIT 1"
                if con.execute(f"({kept}) UNION ALL ({lost})", {"day": day}).fetchall():
                    stale.append(day)
        return stale


def write_rejected_before(
    con: duckdb.DuckDBPyConnection, data: DataDir, log: str, days: Iterable[dt.date], out: Path
) -> Path | None:
    """Write the (event_id, h) of the ids the staged quarantines of ``days`` reject as conflicting,
    as they stand before the run re-stages those dates, to ``out`` sorted by hash; None when there
    are none. DuckDB reads them within its memory limit: a producer whose ids restart every day
    fills each of those quarantines with all of its ids (5 dates of 5M: 25M rows, 19 s and 1 GiB
    through polars)."""
    paths = [p for p in (data.quarantine_file("staged", log, d) for d in sorted(set(days))) if p.exists()]
    if not paths:
        return None
    con.execute(
        f"""COPY (SELECT DISTINCT event_id, hash(event_id) AS h FROM read_parquet({sql_list(paths)})
                  WHERE reason = {sql_str(str(Reason.CONFLICTING_DUPLICATE))} ORDER BY h)
            TO {sql_str(out)} (FORMAT parquet)"""
    )
    found = int(con.execute(f"SELECT count(*) FROM read_parquet({sql_path(out)})").fetchall()[0][0])
    return out if found else None


def find_far_conflicts(
    data: DataDir,
    log: str,
    days: Iterable[dt.date],
    buckets: int,
    *,
    chunk_rows: int | None = None,
) -> FarConflicts:
    """Ids with a copy on one of ``days`` and another copy more than 3 event days away, or with
    a copy on the arrival days of ``days`` (D..D+3) and another on a date outside ``days``;
    and the orphans of the ids the reach dates rejected as conflicting (read now, before ``days``
    are re-staged: :func:`write_rejected_before`)."""
    days = sorted(set(days))
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
            return FarConflicts(log)
        folder = Path(tempfile.mkdtemp(prefix=f"far-conflicts-{log}-", dir=data.scratch))
        far = FarConflicts(log)
        far._cleanup = weakref.finalize(far, shutil.rmtree, folder, True)
        try:
            lost = write_rejected_before(con, data, log, reach(days), folder / "rejected-before.parquet")
            chunks = max(1, -(-total // (chunk_rows or CHUNK_ROWS)))
            hash_files, orphan_parts = [], []
            for chunk in range(chunks):
                hashes, orphans = _far_hashes(indexes, days, chunk, chunks, total, lost)
                orphan_parts.append(orphans)
                if hashes.height:
                    hash_files.append(folder / f"hashes-{chunk:04d}.parquet")
                    hashes.write_parquet(hash_files[-1])
                del hashes
            if hash_files:
                far.copies_file, far.ids = _confirm(con, data, log, hash_files, buckets, folder / "copies.parquet")
            orphans = pl.concat(orphan_parts)
            if lost is not None and orphans.height:
                far.orphans = _confirm_orphans(con, data, log, orphans, lost, buckets)
        except BaseException:
            far.close()
            raise
        return far


@dataclass(frozen=True)
class IdIndexes:
    """The lake's id indexes: those of the arrival days the run lands, and the others."""

    run: list[Path]
    other: list[Path]

    def scan(self, *, by_run: bool) -> pl.LazyFrame:
        """(h, event_date, by_run) of the run's indexes (``by_run``) or the others': by_run tells a
        copy that arrived on one of the run's days."""
        paths = self.run if by_run else self.other
        if not paths:
            return pl.LazyFrame(schema={"h": pl.UInt64, "event_date": pl.Date, "by_run": pl.Boolean})
        return pl.scan_parquet(paths, hive_partitioning=False, glob=False).with_columns(by_run=pl.lit(by_run))


def _in_range(rows: pl.LazyFrame, chunk: int, chunks: int) -> pl.LazyFrame:
    """The rows whose hash ``h`` falls in range ``chunk`` of ``chunks`` equal ranges."""
    if chunk:
        rows = rows.filter(pl.col("h") >= pl.lit((chunk << 64) // chunks, dtype=pl.UInt64))
    if chunk < chunks - 1:
        rows = rows.filter(pl.col("h") < pl.lit(((chunk + 1) << 64) // chunks, dtype=pl.UInt64))
    return rows


def _far_hashes(
    indexes: IdIndexes, days: list[dt.date], chunk: int, chunks: int, total: int, lost_file: Path | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(h, event_date) of the hashes of one hash range that touch ``days`` and span more than the
    window, or have a copy the run lands and one outside ``days``; and (h, event_date) of the
    hashes in ``lost_file`` that no longer touch ``days`` and lie on one date. The first may repeat a row."""
    lost = (
        _in_range(pl.scan_parquet(lost_file, glob=False).select("h"), chunk, chunks).collect().get_column("h")
        if lost_file is not None
        else pl.Series("h", [], dtype=pl.UInt64)
    )
    landed_by_run = _in_range(indexes.scan(by_run=True), chunk, chunks).collect()
    ours = landed_by_run.get_column("h")
    # A one-day run over a long history probes: only the rows of its own hashes (and of the ids its
    # dates rejected before) are read from the other indexes, not every row of the lake.
    probe = ours.len() < PROBE_SHARE * max(1, total // chunks)
    others = _in_range(indexes.scan(by_run=False), chunk, chunks)
    if probe:
        others = others.filter(pl.col("h").is_in(pl.concat([ours, lost]).implode()))
    frame = pl.concat([landed_by_run, others.collect()])
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
    if probe:
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
    # Not made unique: an id that arrived on several days repeats its (h, event_date), which the
    # confirmation reads as a set; polars' unique over 18M such rows held 3 GiB.
    return repeated.drop("by_run").join(far.select("h"), on="h", how="semi"), orphans


def _landing_files(con: duckdb.DuckDBPyConnection, data: DataDir, log: str, hashes: str, buckets: int) -> list[Path]:
    """The landing files that can hold the ``hashes`` (a relation of h, event_date): those of each
    date's buckets, and the date's files of another layout."""
    pairs = con.sql(f"SELECT DISTINCT event_date, h % {int(buckets)} AS b FROM {hashes}").fetchall()
    by_date: dict[dt.date, set[int]] = {}
    for day, bucket in pairs:
        by_date.setdefault(day, set()).add(int(bucket))
    files = []
    for day in sorted(by_date):
        sources = landing_sources(data, log, day, buckets)
        files += [p for b in sorted(by_date[day]) for p in sources.bucket_files(b)] + sources.other
    return files


def _confirm(
    con: duckdb.DuckDBPyConnection, data: DataDir, log: str, hash_files: list[Path], buckets: int, out: Path
) -> tuple[Path | None, int]:
    """The landed (event_id, event_date, h) of the hashes in ``hash_files`` whose ids really have two
    or more dates, written to ``out`` sorted by date (DuckDB sorts and spills within its memory limit),
    and how many ids that is; (None, 0) when there are none."""
    hashes = f"read_parquet({sql_list(hash_files)})"
    files = _landing_files(con, data, log, hashes, buckets)
    if not files:
        return None, 0
    con.execute(
        f"""COPY (
                WITH found AS (SELECT DISTINCT event_id, event_date FROM read_parquet({sql_list(files)})
                               WHERE hash(event_id) IN (SELECT h FROM {hashes}))
                SELECT event_id, event_date, hash(event_id) AS h FROM found
                WHERE event_id IN (SELECT event_id FROM found GROUP BY event_id HAVING count(*) > 1)
                ORDER BY event_date, h, event_id
            ) TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd)"""
    )
    ids = int(con.execute(f"SELECT count(DISTINCT event_id) FROM read_parquet({sql_path(out)})").fetchall()[0][0])
    return (out, ids) if ids else (None, 0)


def _confirm_orphans(
    con: duckdb.DuckDBPyConnection,
    data: DataDir,
    log: str,
    orphans: pl.DataFrame,
    rejected_file: Path,
    buckets: int,
) -> pl.DataFrame:
    """The (event_id, event_date) of the ids in ``rejected_file`` behind the orphan hashes whose copies left
    are identical (copies that differ on their own date stay rejected whatever happened elsewhere;
    rule 5's identity, decided in DuckDB: an id may have millions of copies). A hash collision with
    another id may hide an orphan, never invent one."""
    con.register("orphan_hashes", orphans.select("h", "event_date").to_arrow())
    try:
        files = _landing_files(con, data, log, "orphan_hashes", buckets)
        if not files:
            return _EMPTY
        found = con.sql(
            f"""WITH c AS (SELECT event_id, event_date, {identity_sql(log)} AS k FROM read_parquet({sql_list(files)})
                           WHERE hash(event_id) IN (SELECT h FROM orphan_hashes)
                             AND event_id IN (SELECT event_id FROM read_parquet({sql_path(rejected_file)})))
                SELECT DISTINCT event_id, event_date FROM c
                WHERE event_id IN (SELECT event_id FROM c GROUP BY event_id
                                   HAVING min(k) IS NOT DISTINCT FROM max(k))"""
        ).pl()
    finally:
        con.unregister("orphan_hashes")
    if found.is_empty():
        return _EMPTY
    return found.cast(_EMPTY.schema).sort("event_id", "event_date")
