"""Stage (log, event date): read its landed copies, apply rules 5–9, write Parquet.

Reads the copies of event date D from landing partitions D..D+3 (the window
rule 4 allows) and the ids of neighbouring event dates (to catch copies of an
id whose event_time was changed); copies further apart come from the lake's id
indexes (``pipelines.staged.far_conflicts``). Writes clean events and the quarantine of
this partition, each replaced atomically.

Memory is bounded by a landing *bucket* (a hash of event_id, see
``pipelines.landing.land``), not by a day: every copy of an event_id is in the
same bucket, so rule 5 runs a group of buckets at a time and each group is
appended to the staged file (in row groups of at most STAGED_ROW_GROUP_ROWS).
A bucket of more than twice the group limit (a day of about 50M events or more)
is cut further into *slices* by a second hash of event_id, read with a filter, so
memory stays bounded up to days of hundreds of millions of events (MAX_SLICES
slices a bucket).
Slices cannot split one id, so the ids with a great many copies in a bucket far
larger than a piece are found first and staged apart in DuckDB
(``pipelines.staged.hot_ids``): the pieces never hold their copies.
The ``raw`` line is never loaded for the bulk of the events: only the rows that
end in the quarantine fetch it, by file and row number, after the rules have
decided.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contract import MAX_LATENESS_DAYS, Reason
from pipelines.duck import compute_connection, sql_glob, sql_list, sql_path, sql_str
from pipelines.lake import DataDir, temp_sibling
from pipelines.landing.land import (
    LandingSources,
    landing_buckets,
    landing_files_for_event_date,
    landing_sources,
    read_manifest,
)
from pipelines.landing.rules_sql import bucket_expr
from pipelines.parallel import split, step_threads, thread_map
from pipelines.quality.quarantine import QUARANTINE_SCHEMA
from pipelines.reference import Reference
from pipelines.schemas.events import polars_schema
from pipelines.staged.far_conflicts import FarConflicts, find_far_conflicts
from pipelines.staged.hot_ids import HotIds, HotResult, find_hot_ids, oversized_buckets, smallest_raw, stage_hot_ids
from pipelines.staged.rules import StagedBucket, stage_copies

FILE, ROW = "_file", "_row"  # where a copy lives in landing: index into the bucket's file list, row in the file
# Copies staged at once (a group of buckets): bounds the step's memory whatever the day's size.
STAGED_GROUP_ROWS = 1_500_000
# Largest day (landed copies) staged with two threads; larger days go one group at a time.
PARALLEL_DAY_ROWS = 6_000_000
# A bucket with more than twice the group limit's copies is read in slices of at most that many,
# filtered by a hash of event_id. Each slice reads the bucket's files again (and their raw lines
# for its quarantine), so a bucket is sliced only when memory needs it: on the 5.9M-copy buckets of
# a 100M-event day, four slices cost 1.6x the step's time, two slices (the default) less.
MAX_SLICES = 16
SLICE_SEED = 7  # polars' hash seed for slices; unrelated to the landing bucket hash (DuckDB's)
# Rows per row group of a staged file. Readers decode a row group at a time, so this bounds what
# the facts build holds per source (on a 30M-event day with polars' 1M-row default, the facts
# step peaked at 2.5 GiB; with 256k rows and small morsels, 1.34 GiB, in the same time).
STAGED_ROW_GROUP_ROWS = 262_144


@dataclass(frozen=True)
class Piece:
    """The copies staged at once: those of ``buckets`` whose event_id falls in slice ``part`` of
    ``parts``. Every copy of an id is in one piece, so rule 5 is exact piece by piece."""

    buckets: tuple[int, ...]
    part: int = 0
    parts: int = 1

    def keeps(self) -> pl.Expr | None:
        """The filter on landed rows that picks the slice (None: the whole buckets)."""
        if self.parts == 1:
            return None
        return pl.col("event_id").hash(seed=SLICE_SEED) % self.parts == self.part

    def keep(self, frame: pl.DataFrame) -> pl.DataFrame:
        keeps = self.keeps()
        return frame if keeps is None else frame.filter(keeps)


@dataclass
class StagedStats:
    log: str
    event_date: str
    copies: int = 0  # accepted by landing with this event date
    collapsed: int = 0  # identical redeliveries folded into one event
    accepted: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    reference: str = ""  # Reference.fingerprint(event_date) of the tables used ("" before it was recorded)
    # fingerprint of each landed arrival day D..D+3 the copies came from (None: staged before it was recorded)
    landings: dict[str, str] | None = None


def landing_fingerprints(data: DataDir, log: str, event_date: dt.date) -> dict[str, str]:
    """The landing fingerprint of every landed arrival day (D..D+3) that holds accepted copies of
    ``event_date``: it changes whenever the raw files of one of them do. A day landed without any
    (an empty or missing folder, or copies of other dates only) gives staging nothing to read, so it is
    left out: landing it for the first time does not outdate the date."""
    out = {}
    for lag in range(MAX_LATENESS_DAYS + 1):
        arrival = event_date + dt.timedelta(days=lag)
        manifest = read_manifest(data, log, arrival)
        if manifest is not None and manifest.by_event_date.get(event_date.isoformat(), 0) > 0:
            out[arrival.isoformat()] = manifest.fingerprint
    return out


def _landing_changed(data: DataDir, log: str, event_date: dt.date, recorded: dict[str, str]) -> bool:
    """Whether an arrival day that held copies of ``event_date`` when it was staged (``recorded``), or
    holds some now, was landed again from changed raw files since (or removed). A recorded day is
    compared with its landing as it is now, whatever it holds: a date staged by an older version also
    recorded the arrival days that held none of its copies, and they stay quiet while unchanged."""
    now = landing_fingerprints(data, log, event_date)
    for arrival in recorded.keys() | now.keys():
        manifest = read_manifest(data, log, dt.date.fromisoformat(arrival))
        if recorded.get(arrival) != (manifest.fingerprint if manifest is not None else None):
            return True
    return False


def outdated_dates(data: DataDir, log: str, days: Iterable[dt.date]) -> list[dt.date]:
    """Those of ``days`` staged before an arrival day of their window (D..D+3) that held copies of
    them, then or now, was landed again from changed raw files. The fingerprints are per arrival day,
    so a date is reported when such a day changed, even if the change held none of its copies.

    A run over START..END lands arrival days START..END+3, which also hold copies of event dates
    START-3..START-1 and END+1..END+3; it re-stages only its own dates. Dates never staged, or
    staged before the fingerprints were recorded, are not reported."""
    out = []
    for day in sorted(set(days)):
        stats = read_staged_stats(data, log, day)
        if stats is not None and stats.landings is not None and _landing_changed(data, log, day, stats.landings):
            out.append(day)
    return out


def copy_schema(log: str) -> dict[str, pl.DataType]:
    """Columns of a landed copy the staged step reads (everything but ``raw``)."""
    return polars_schema(log) | {"src": pl.String}


def _empty_landed(log: str) -> pl.DataFrame:
    return pl.DataFrame(schema=copy_schema(log) | {"raw": pl.String})


def read_copies(data: DataDir, log: str, event_date: dt.date) -> pl.DataFrame:
    """Every landed copy of event date D with its raw line (for inspection and tests; the
    step itself reads bucket by bucket, without ``raw``)."""
    files = landing_files_for_event_date(data, log, event_date)
    if not files:
        return _empty_landed(log)
    frame = pl.read_parquet(files, hive_partitioning=False, columns=_empty_landed(log).columns, glob=False)
    return frame.cast(_empty_landed(log).schema)


class _BucketReader:
    """Reads one bucket of one event date's landed copies, in either landing layout."""

    def __init__(self, data: DataDir, log: str, buckets: int) -> None:
        self.data, self.log, self.buckets = data, log, buckets
        self.columns = list(copy_schema(log))
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = compute_connection(self.data)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()

    def files(self, sources: LandingSources, piece: Piece) -> list[Path]:
        return [p for b in piece.buckets for p in sources.bucket_files(b)] + sources.other

    def _where(self, piece: Piece) -> str:
        return f"{bucket_expr(self.buckets)} IN ({', '.join(str(int(b)) for b in piece.buckets)})"

    @staticmethod
    def _read(
        files: list[Path], columns: list[str], piece: Piece, hot: pl.Series, row_index: str | None = None
    ) -> pl.DataFrame:
        keeps = piece.keeps()
        if hot.len():
            skip = ~pl.col("event_id").is_in(hot.implode())
            keeps = skip if keeps is None else keeps & skip
        if keeps is None:
            return pl.read_parquet(
                files, columns=columns, hive_partitioning=False, row_index_name=row_index, glob=False
            )
        # a slice, or a bucket without its hot ids: a streaming scan keeps only the rows wanted, so
        # the whole bucket is never in memory
        scan = pl.scan_parquet(files, hive_partitioning=False, row_index_name=row_index, glob=False)
        return scan.select(*([row_index] if row_index else []), *columns).filter(keeps).collect(engine="streaming")

    @staticmethod
    def _not_hot(hot: pl.Series) -> str:
        if not hot.len():
            return ""
        return f" AND event_id NOT IN ({', '.join(sql_str(i) for i in hot.to_list())})"

    def copies(self, sources: LandingSources, piece: Piece, hot: pl.Series) -> tuple[pl.DataFrame, list[Path]]:
        """The piece's copies (no raw) but those of its ``hot`` ids, with FILE / ROW locators, and
        the file list FILE indexes."""
        files = self.files(sources, piece)
        bucketed = files[: len(files) - len(sources.other)]
        schema = copy_schema(self.log) | {ROW: pl.Int64, FILE: pl.Int32}
        parts = []
        if bucketed:
            starts = pl.Series(ROW, file_starts(bucketed)[:-1], dtype=pl.Int64)
            frame = self._read(bucketed, self.columns, piece, hot, row_index=ROW)
            index = starts.search_sorted(frame.get_column(ROW).cast(pl.Int64), side="right") - 1
            frame = frame.with_columns(
                (pl.col(ROW).cast(pl.Int64) - starts.gather(index)).alias(ROW), index.cast(pl.Int32).alias(FILE)
            )
            parts.append(frame)
        for i, path in enumerate(sources.other, start=len(bucketed)):
            # cut with another scheme: keep this group's rows, with their row numbers in the file
            frame = self.con.sql(
                f"""SELECT {", ".join(self.columns)}, file_row_number AS {ROW}
                    FROM read_parquet({sql_path(path)}, file_row_number = true)
                    WHERE {self._where(piece)}{self._not_hot(hot)}"""
            ).pl()
            parts.append(piece.keep(frame).with_columns(pl.lit(i, dtype=pl.Int32).alias(FILE)))
        if not parts:
            return pl.DataFrame(schema=schema), files
        return pl.concat([p.select(list(schema)).cast(schema) for p in parts]), files

    def ids(self, sources: LandingSources, piece: Piece, hot: pl.Series) -> _Ids:
        """The piece's event_ids (for the cross-date conflict test): its ``hot`` ids once each."""
        series = [hot.cast(pl.String)]
        bucketed = [p for b in piece.buckets for p in sources.bucket_files(b)]
        if bucketed:
            series.append(self._read(bucketed, ["event_id"], piece, hot).to_series())
        if sources.other:
            frame = self.con.sql(
                f"""SELECT event_id FROM read_parquet({sql_list(sources.other)})
                    WHERE {self._where(piece)}{self._not_hot(hot)}"""
            ).pl()
            series.append(piece.keep(frame).to_series().cast(pl.String))
        return _Ids(pl.concat(series))


class _Ids:
    """One event date's ids with their 64-bit hashes: membership is tested on the hashes first
    (cheap), then confirmed on the strings for the few candidates, so a collision never counts."""

    def __init__(self, ids: pl.Series) -> None:
        self.ids = ids
        self.hashes = ids.hash(seed=0)

    @staticmethod
    def shared(day: _Ids, others: list[_Ids]) -> pl.Series:
        """Distinct ids of ``day`` that also occur in ``others``."""
        others = [o for o in others if o.ids.len()]
        if not others or not day.ids.len():
            return pl.Series("event_id", [], dtype=pl.String)
        # the day's hashes are the set (built once) and the neighbours' are probed: building a
        # set costs far more per element than probing one
        pool = pl.concat([o.hashes for o in others])
        hits = pool.filter(pool.is_in(day.hashes.implode())).unique()
        candidates = day.ids.filter(day.hashes.is_in(hits.implode()))
        if not candidates.len():
            return candidates
        wanted = candidates.hash(seed=0).implode()
        strings = pl.concat([o.ids.filter(o.hashes.is_in(wanted)) for o in others])
        return candidates.filter(candidates.is_in(strings.implode())).unique()


def bucket_groups(
    data: DataDir, log: str, days: list[dt.date], buckets: int, group_rows: int | None = None
) -> list[Piece]:
    """Pieces staged at once: as many buckets as keep a piece under STAGED_GROUP_ROWS copies.

    Small days run as one piece (few, large polars and pandera calls); a day larger than
    memory runs bucket by bucket, and a bucket of more than twice the limit slice by slice
    (up to MAX_SLICES). Sized from the landing manifests' counts.
    """
    rows = largest_day(data, log, days)
    per_bucket = max(1, rows // buckets)
    limit = max(1, staged_group_rows() if group_rows is None else group_rows)
    if per_bucket > 2 * limit:
        parts = min(MAX_SLICES, -(-per_bucket // (2 * limit)))
        return [Piece((b,), part, parts) for b in range(buckets) for part in range(parts)]
    size = max(1, min(buckets, limit // per_bucket))
    return [Piece(tuple(range(i, min(i + size, buckets)))) for i in range(0, buckets, size)]


def largest_day(data: DataDir, log: str, days: list[dt.date]) -> int:
    """The most landed copies any of ``days`` has (from the landing manifests of arrival days D..D+3)."""
    rows = 0
    for day in days:
        n = 0
        for lag in range(MAX_LATENESS_DAYS + 1):
            manifest = read_manifest(data, log, day + dt.timedelta(days=lag))
            if manifest is not None:
                n += manifest.by_event_date.get(day.isoformat(), 0)
        rows = max(rows, n)
    return rows


def parallel_threads(data: DataDir, log: str, days: list[dt.date], threads: int) -> int:
    """``threads``, or 1 when a day is too large to stage two pieces of it at once.

    Two groups at half size do not halve the peak: on a 30M-event day they raised it from
    3.25 to 4.2 GiB (transient copies and per-thread allocator arenas). Days up to
    PARALLEL_DAY_ROWS copies (memory is no concern there) use both cores.
    """
    limit = int(os.environ.get("REVWH_PARALLEL_DAY_ROWS", PARALLEL_DAY_ROWS))
    return threads if largest_day(data, log, days) <= limit else 1


def staged_group_rows() -> int:
    return int(os.environ.get("REVWH_STAGED_GROUP_ROWS", STAGED_GROUP_ROWS))


def file_starts(files: list[Path]) -> list[int]:
    """Row offset of each file in the concatenation of ``files`` (and the total, last)."""
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in files]
    return [0, *itertools.accumulate(sizes)]


def fetch_raw(files: list[Path], rows: pl.DataFrame) -> pl.DataFrame:
    """The raw lines of the copies at ``rows`` (FILE, ROW): one streaming scan of the files'
    raw column, keeping only those rows (memory stays at a few row groups)."""
    schema = {FILE: pl.Int32, ROW: pl.Int64, "raw": pl.String}
    rows = rows.unique()
    if not rows.height:
        return pl.DataFrame(schema=schema)
    used = sorted(rows.get_column(FILE).unique().to_list())
    paths = [files[i] for i in used]
    starts = pl.Series("start", file_starts(paths)[:-1], dtype=pl.Int64)
    position = pl.DataFrame({FILE: pl.Series(used, dtype=pl.Int32), "start": starts})
    wanted = rows.join(position, on=FILE).with_columns((pl.col("start") + pl.col(ROW)).alias("_g"))
    found = (
        pl.scan_parquet(paths, hive_partitioning=False, glob=False)
        .select("raw")
        .with_row_index("_g")
        .filter(pl.col("_g").is_in(wanted.get_column("_g").cast(pl.UInt32).implode()))
        .collect(engine="streaming")
        .with_columns(pl.col("_g").cast(pl.Int64))
    )
    return wanted.join(found, on="_g").select(list(schema)).cast(schema)


class _DayOutput:
    """The staged file (appended piece by piece), quarantine rows and stats of one event date."""

    def __init__(self, data: DataDir, log: str, day: dt.date, reference: str) -> None:
        self.data, self.log, self.day = data, log, day
        self.stats = StagedStats(
            log=log, event_date=day.isoformat(), reference=reference, landings=landing_fingerprints(data, log, day)
        )
        # string_view, polars' own layout: handing the rows to pyarrow copies no string
        self.schema = (
            pl.DataFrame(schema=polars_schema(log) | {"src": pl.String})
            .to_arrow(compat_level=pl.CompatLevel.newest())
            .schema
        )
        self.path = data.staged_file(log, day)
        self.tmp = temp_sibling(self.path)
        # dictionary pages pay off on the repetitive columns, not on ids and timestamps
        dictionary = [
            c for c, t in zip(self.schema.names, self.schema.types, strict=True) if pa.types.is_string_view(t)
        ]
        dictionary = [c for c in dictionary if c not in ("event_id", "event_time")]
        # min/max statistics only where they can prune (time columns): on ids and categories they
        # never do (rows are not sorted by them) and cost a fifth of the write
        stats = [c for c in ("event_date", "event_ts", "arrival_date") if c in self.schema.names]
        self.writer = pq.ParquetWriter(
            self.tmp,
            self.schema,
            compression="zstd",
            compression_level=1,
            use_dictionary=dictionary,
            write_statistics=stats,
        )
        # Each piece's quarantine rows go to a file of their own here at once, and the day's file is
        # sorted from them at the end (by DuckDB, which spills): the quarantine of a day is never
        # held in memory, however large the day (0.72 GiB for 2.4M rows of a 100M-event day).
        self.spill = Path(tempfile.mkdtemp(prefix=f"staged-quarantine-{log}-{day}-", dir=data.scratch))
        self.spilled = 0
        self._spill(_empty_quarantine_source())  # the day's file has its columns even with no row

    def spill_file(self) -> Path:
        """A new file of this day's quarantine spill, for a writer of its own (call under the lock)."""
        self.spilled += 1
        return self.spill / f"{self.spilled - 1:06d}.parquet"

    def _spill(self, quarantine: pl.DataFrame) -> None:
        rows = quarantine.select(
            pl.lit(self.log).alias("log"),
            "event_id",
            "arrival_date",
            "reason",
            "raw",
            "event_date",
            pl.lit("staged").alias("stage"),
            pl.col("src").alias("source_file"),
        ).cast({c: _PL[t] for c, t in QUARANTINE_SCHEMA.items()})
        rows.write_parquet(self.spill_file(), compression="lz4")

    def add(self, clean: pl.DataFrame, quarantine: pl.DataFrame, copies: int, collapsed: int) -> None:
        if clean.height:
            rows = clean.select(self.schema.names).to_arrow(compat_level=pl.CompatLevel.newest())
            self.writer.write_table(rows.cast(self.schema), row_group_size=STAGED_ROW_GROUP_ROWS)
        if quarantine.height:
            self._spill(quarantine)
        self.stats.copies += copies
        self.stats.collapsed += collapsed
        self.stats.accepted += clean.height

    def finish(self, con: duckdb.DuckDBPyConnection) -> StagedStats:
        """Close the day's staged file and sort its spilled quarantine rows into the day's file, on
        ``con`` (a compute connection shared by the range's days)."""
        self.writer.close()
        os.replace(self.tmp, self.path)
        out = self.data.quarantine_file("staged", self.log, self.day)
        tmp = temp_sibling(out)
        try:
            con.execute(
                f"""COPY (SELECT * FROM read_parquet({sql_glob(self.spill, "*.parquet")})
                          ORDER BY reason, event_id, arrival_date, source_file, raw)
                    TO {sql_str(tmp)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"""
            )
            counts = con.sql(
                f"SELECT reason, count(*) FROM read_parquet({sql_path(tmp)}) GROUP BY reason ORDER BY reason"
            ).fetchall()
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(self.spill, ignore_errors=True)
        self.stats.by_reason = {r: int(n) for r, n in counts}
        self.stats.quarantined = sum(self.stats.by_reason.values())
        _write_stats(self.data, self.stats)
        return self.stats

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)
        shutil.rmtree(self.spill, ignore_errors=True)


def _empty_quarantine_source() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "event_id": pl.String,
            "arrival_date": pl.Date,
            "reason": pl.String,
            "raw": pl.String,
            "event_date": pl.Date,
            "src": pl.String,
        }
    )


def _stage_hot(
    reader: _BucketReader,
    log: str,
    files: list[Path],
    hot_ids: pl.Series,
    foreign: pl.Series,
    output: _DayOutput,
    lock: threading.Lock,
) -> HotResult:
    """Rule 5 for a piece's hot ids of one date, in DuckDB (``pipelines.staged.hot_ids``): conflicting
    copies go to a spill file of the day's quarantine, identical ones come back as their kept copy."""
    if not hot_ids.len():
        return HotResult.none(copy_schema(log))
    with lock:
        spill = output.spill_file()
    return stage_hot_ids(reader.con, log, files, hot_ids, foreign, copy_schema(log), spill)


def _hot_raw(
    reader: _BucketReader, files: list[Path], quarantine: pl.DataFrame, result: StagedBucket, apart: HotResult
) -> pl.DataFrame:
    """The quarantine rows with, for a hot id's kept copy that rules 6–9 rejected, the smallest raw
    line of its arrival day and file (found in DuckDB: the ties may be millions of copies)."""
    rejected = apart.kept.join(result.rejected.select("event_id"), on="event_id", how="semi")
    if not rejected.height:
        return quarantine
    smallest = smallest_raw(reader.con, files, rejected)
    return quarantine.update(smallest, on="event_id", how="left")


def stage_range(
    data: DataDir,
    log: str,
    days: Iterable[dt.date],
    ref: Reference,
    *,
    buckets: int | None = None,
    group_rows: int | None = None,
    threads: int = 1,
    far: FarConflicts | None = None,
) -> list[StagedStats]:
    """Rules 5–9 for every event date of ``days``, piece by piece.

    For each piece (a group of buckets, or a slice of one bucket) the days are visited in
    order with a sliding window of the neighbours' ids (D-3..D+3), so each event date's ids
    are read once per piece, not once per neighbour. Pieces are independent (an id lives in
    one piece): ``threads`` of them run at once, each holding a proportionally smaller
    piece, and append their row groups to the day's file under a lock. Ids with copies
    further apart than the window come from ``far`` (found over the whole lake when None).
    """
    days = sorted(set(days))
    if not days:
        return []
    buckets = landing_buckets() if buckets is None else buckets
    with find_far_conflicts(data, log, days, buckets) if far is None else contextlib.nullcontext(far) as found:
        return _stage_range(data, log, days, ref, buckets, group_rows, threads, found)


def _stage_range(
    data: DataDir,
    log: str,
    days: list[dt.date],
    ref: Reference,
    buckets: int,
    group_rows: int | None,
    threads: int,
    far: FarConflicts,
) -> list[StagedStats]:
    span = [days[0] + dt.timedelta(days=i) for i in range(-MAX_LATENESS_DAYS, (days[-1] - days[0]).days + 4)]
    sources = {d: landing_sources(data, log, d, buckets) for d in span}
    outputs = {d: _DayOutput(data, log, d, ref.fingerprint(d)) for d in days}
    lock = threading.Lock()
    limit = max(1, (staged_group_rows() if group_rows is None else group_rows) // max(1, threads))
    hot = HotIds({})
    if oversized := oversized_buckets(sources, buckets, limit):
        with compute_connection(data) as con:
            hot = find_hot_ids(con, oversized, buckets, limit)

    def run_piece(piece: Piece) -> None:
        reader = _BucketReader(data, log, buckets)
        try:
            ids: dict[dt.date, _Ids] = {}
            for day in days:
                hot_ids = hot.in_piece(day, piece.buckets, piece.keeps())
                copies, files = reader.copies(sources[day], piece, hot_ids)
                ids[day] = _Ids(pl.concat([copies.get_column("event_id"), hot_ids]))
                neighbours = []
                for offset in range(-MAX_LATENESS_DAYS, MAX_LATENESS_DAYS + 1):
                    other = day + dt.timedelta(days=offset)
                    if offset == 0:
                        continue
                    if other not in ids:
                        other_hot = hot.in_piece(other, piece.buckets, piece.keeps())
                        ids[other] = reader.ids(sources[other], piece, other_hot)
                    neighbours.append(ids[other])
                foreign = _Ids.shared(ids[day], neighbours)
                far_ids = far.ids_on(day, piece.buckets, buckets)
                if far_ids.len():
                    foreign = pl.concat([foreign, far_ids]).unique()
                apart = _stage_hot(reader, log, files, hot_ids, foreign, outputs[day], lock)
                result = stage_copies(log, pl.concat([copies, apart.kept.select(copies.columns)]), foreign, ref)
                raw = fetch_raw(files, result.needs_raw)
                quarantine = _hot_raw(reader, files, result.quarantine(raw), result, apart)
                with lock:
                    outputs[day].add(
                        result.clean, quarantine, copies.height + apart.copies, result.collapsed + apart.collapsed
                    )
                del copies, result, raw, quarantine
                for old in [d for d in ids if d < day - dt.timedelta(days=MAX_LATENESS_DAYS - 1)]:
                    del ids[old]
        finally:
            reader.close()

    try:
        # neighbours' ids are held too, so the groups are sized over the whole span
        thread_map(run_piece, bucket_groups(data, log, span, buckets, limit), threads)
        # one database for the days' quarantine sorts: opening one costs about 30 ms, a tiny day's whole sort
        with compute_connection(data) as con:
            return [outputs[d].finish(con) for d in days]
    except BaseException:
        for out in outputs.values():
            out.abort()
        raise


def stage_days(
    data: DataDir,
    log: str,
    days: Iterable[dt.date],
    ref: Reference,
    *,
    buckets: int | None = None,
    threads: int | None = None,
    far: FarConflicts | None = None,
) -> list[StagedStats]:
    """:func:`stage_range` with both cores busy, bounded memory either way.

    When the days are large enough to come in at least ``threads`` bucket groups, the groups
    run at once over the whole range: groups are equal in size (a hash cuts them), so the
    threads finish together (on 5 × 2.5M impressions: 13.6 s against 15–16 s for runs of 3 and 2
    days). Smaller days are one group each: ``threads`` runs of consecutive days then go at
    once, each holding a proportionally smaller group."""
    days = sorted(set(days))
    buckets = landing_buckets() if buckets is None else buckets
    with find_far_conflicts(data, log, days, buckets) if far is None else contextlib.nullcontext(far) as found:
        return _stage_days(data, log, days, ref, buckets, threads, found)


def _stage_days(
    data: DataDir, log: str, days: list[dt.date], ref: Reference, buckets: int, threads: int | None, far: FarConflicts
) -> list[StagedStats]:
    threads = parallel_threads(data, log, days, step_threads() if threads is None else threads)
    runs = split(days, threads)
    if len(runs) <= 1 or len(bucket_groups(data, log, days, buckets, staged_group_rows() // threads)) >= threads:
        return stage_range(data, log, days, ref, buckets=buckets, threads=threads, far=far)
    rows = staged_group_rows() // len(runs)
    parts = thread_map(
        lambda run: stage_range(data, log, run, ref, buckets=buckets, group_rows=rows, far=far), runs, len(runs)
    )
    return [stats for part in parts for stats in part]


def stage_partition(
    data: DataDir, log: str, event_date: dt.date, ref: Reference, *, buckets: int | None = None
) -> StagedStats:
    return stage_range(data, log, [event_date], ref, buckets=buckets)[0]


_PL = {"VARCHAR": pl.String, "DATE": pl.Date}


def _write_stats(data: DataDir, stats: StagedStats) -> None:
    path = data.manifest_file("staged", stats.log, dt.date.fromisoformat(stats.event_date))
    tmp = temp_sibling(path)
    tmp.write_text(json.dumps(asdict(stats), indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_staged_stats(data: DataDir, log: str, event_date: dt.date) -> StagedStats | None:
    path = data.manifest_file("staged", log, event_date)
    return StagedStats(**json.loads(path.read_text())) if path.exists() else None


__all__ = ["Reason", "StagedStats", "read_copies", "stage_days", "stage_partition", "stage_range"]
