"""Land one (log, arrival day): raw NDJSON → typed Parquet by event date + quarantine.

The whole day goes through one streaming DuckDB ``COPY``, so memory stays
bounded however large the day is. The partition is written beside the old one
and swapped in, so a re-run replaces it and never doubles it.

Accepted copies are split by event date and by *bucket*, a hash of event_id
modulo ``buckets`` (``event_date=E/bucket-BBB-K.parquet``). Every copy of an
event_id falls in the same bucket on every arrival day, so the staged layer
(rule 5 is per event_id) can process one bucket at a time: memory is bounded
by a bucket, not by a day. The bucket scheme (hash function and count) is part
of the fingerprint and of the manifest, so a change re-lands the day and
readers know how each partition was cut.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import MAX_LATENESS_DAYS, Reason
from pipelines.duck import MAX_LINE_BYTES, compute_connection, rejects_per_file, sql_list, sql_path, sql_str
from pipelines.lake import DataDir, files_with_suffix, replace_dir, temp_sibling
from pipelines.landing.gzip_check import GzipCheck
from pipelines.landing.gzip_repair import file_named_in, read_with_gzip_repair, reason_for
from pipelines.landing.id_index import INDEX_FILE, write_id_index
from pipelines.landing.rules_sql import bucket_expr, landing_select, register_udfs
from pipelines.landing.undecodable import (
    probes_undecodable,
    set_aside_undecodable,
    undecodable_batches,
    undecodable_lines,
)
from pipelines.parallel import thread_map
from pipelines.quality.quarantine import QUARANTINE_COLUMNS_SQL, write_empty_quarantine

RAW_SUFFIXES = (".jsonl", ".jsonl.gz")
# Bump when the landing rules change, so a re-run re-lands unchanged raw files.
LANDING_VERSION = "5"  # 4: a name given twice keeps its last value; 5: lines read whole (pipelines.duck)
# Buckets per (arrival day, event date): enough that one bucket of a very large day fits in
# memory in the staged step. Changing it re-lands (it is part of the fingerprint).
DEFAULT_BUCKETS = 16
BUCKET_FILE = re.compile(r"bucket-(\d+)-\d+\.parquet")
# Rows per Parquet row group of landing files: bounds DuckDB's buffer per open partition.
LANDING_ROW_GROUP_SIZE = 65_536
PARTITION_FLUSH_ROWS = 16_384
# Lines of the files DuckDB's reject table could not hold, read again by Python, a Parquet file at a time.
UNDECODABLE_BATCH_LINES = 100_000
# A day with this many bytes of raw files lands alone rather than beside another day. Measured on 2
# cores: five days of 2.65M impressions (680 MB each) took 41.7 s (79 CPU s) one at a time against
# 50.9 s (100 CPU s) two at a time; 134 MB days tie (10.1-10.5 s either way); 23 MB days land in
# 2.2 s two at a time against 3.3 s one at a time.
CONCURRENT_DAY_MAX_BYTES = 128 << 20


def landing_buckets() -> int:
    """Buckets for new landings: $REVWH_LANDING_BUCKETS, else DEFAULT_BUCKETS."""
    value = int(os.environ.get("REVWH_LANDING_BUCKETS", DEFAULT_BUCKETS))
    if not 1 <= value <= 4096:
        raise ValueError(f"REVWH_LANDING_BUCKETS must be between 1 and 4096, got {value}")
    return value


def bucket_scheme(buckets: int | None = None) -> str:
    """How accepted copies are cut into buckets: DuckDB's hash of event_id (pinned version) mod N."""
    n = landing_buckets() if buckets is None else buckets
    return f"duckdb-{duckdb.__version__}-hash(event_id)%{n}"


@dataclass
class LandingStats:
    """What one landing partition saw; kept in its manifest for checks and metadata."""

    log: str
    arrival_date: str
    files: int = 0
    landed: int = 0  # non-blank lines (copies)
    accepted: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_event_date: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    skipped: bool = False
    buckets: int = 0  # 0: landed before bucketing (one file per event date)
    bucket_scheme: str = ""


class RawFileError(Exception):
    """A raw file cannot be read at all (not gzip, a truncated gzip stream), or not within memory: its
    lines cannot be counted, so they can be neither accepted nor quarantined, and the day does not land."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message, path)  # both in args: the error pickles (process executors)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def unreadable(cls, log: str, arrival: dt.date, path: Path, reason: str) -> RawFileError:
        return cls(
            f"landing/{log} dt={arrival}: cannot read raw file {path} ({reason}); the day's previous landing, if any, "
            "is kept. Replace or remove the file, then re-run the day.",
            path,
        )


def raw_files(data: DataDir, log: str, arrival: dt.date) -> list[Path]:
    """Every .jsonl / .jsonl.gz file of a partition folder (a missing folder has none). Hidden names are left
    out, as the README decides: a producer writes ``.part-0.jsonl`` and renames it when it is complete."""
    folder = data.raw_partition(log, arrival)
    return [folder / e.name for e in files_with_suffix(str(folder), RAW_SUFFIXES) if not e.name.startswith(".")]


def fingerprint(files: list[Path], buckets: int | None = None) -> str:
    """Names, sizes and modification times (and the landing version and bucket scheme):
    changes whenever a raw file does."""
    h = hashlib.sha256(f"{LANDING_VERSION}\0{bucket_scheme(buckets)}".encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


NOT_LANDED = "has raw files but was never landed"
CHANGED_SINCE_LANDED = "has raw files that changed (or were removed) since it was landed"
# The metadata key under which the landing check and staged list such arrival days (`revwh run` prints them).
CHANGED_DAYS_METADATA = "arrival_days_changed_since_landed"


def landing_lag(data: DataDir, log: str, arrival: dt.date, buckets: int | None = None) -> str | None:
    """Why the landing of ``arrival`` does not hold what its raw folder holds now, or None when it
    does (or when there is nothing to land). Costs a ``stat`` per raw file, no read."""
    files = raw_files(data, log, arrival)
    previous = read_manifest(data, log, arrival)
    if previous is None or not data.landing_partition(log, arrival).exists():
        return NOT_LANDED if files else None
    if previous.fingerprint != fingerprint(files, landing_buckets() if buckets is None else buckets):
        return CHANGED_SINCE_LANDED
    return None


def read_manifest(data: DataDir, log: str, arrival: dt.date) -> LandingStats | None:
    """The day's landing record; None when there is none, or when it cannot be read (cut short, edited by
    hand): the day then counts as never landed, and the next run lands it again and writes a new one."""
    path = data.manifest_file("landing", log, arrival)
    if not path.exists():
        return None
    try:
        return LandingStats(**json.loads(path.read_text()))
    except (ValueError, TypeError, OSError):  # not JSON, not an object, a field missing or unknown
        return None


def _landed_files_intact(data: DataDir, log: str, arrival: dt.date, stats: LandingStats) -> bool:
    """The day's landed files still hold the rows its manifest counts (read from their footers). A file
    deleted, cut short or overwritten since (a disk fault, a hand edit) makes the day land again rather
    than fail its landing check on every run."""
    from pipelines.quality.reconcile import landed_row_counts  # the landing check's count (imports this module)

    if not data.landing_partition(log, arrival).exists():
        return False
    try:
        return landed_row_counts(data, log, arrival) == (stats.accepted, stats.quarantined)
    except (pl.exceptions.PolarsError, OSError):
        return False


def _write_manifest(data: DataDir, stats: LandingStats) -> None:
    path = data.manifest_file("landing", stats.log, dt.date.fromisoformat(stats.arrival_date))
    tmp = temp_sibling(path)
    tmp.write_text(json.dumps(asdict(stats), indent=1, sort_keys=True))
    os.replace(tmp, path)


def retry_memory_limit() -> str:
    """DuckDB's memory limit for a landing that ran out of memory: half the machine's memory (at least
    the usual limit), or ``REVWH_LANDING_RETRY_MEMORY_LIMIT``."""
    if limit := os.environ.get("REVWH_LANDING_RETRY_MEMORY_LIMIT"):
        return limit
    half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 // 2**20
    return f"{max(half, 2048)}MB"


def _copy_with_more_memory(
    data: DataDir, log: str, arrival: dt.date, files: list[Path], copy_on: Callable[[duckdb.DuckDBPyConnection], None]
) -> None:
    """Land the day again on a connection of its own with a larger memory limit.

    DuckDB reads 2,048 lines at a time and its reservations for them count against the limit: a few
    hundred megabytes of lines of megabytes each in a row (an event with a large extra member) exceed
    the usual 2 GB while the process holds under 1 GB (20 lines of 10 MB: 1.5 GiB of RSS once allowed
    8 GB). When even that is not enough, the day fails with one line, like an unreadable file."""
    limit = retry_memory_limit()
    with compute_connection(data) as con:
        con.execute(f"SET memory_limit = '{limit}'")
        _ensure_udfs(con)
        try:
            copy_on(con)
        except duckdb.OutOfMemoryException as exc:
            largest = max(files, key=lambda p: p.stat().st_size)
            raise RawFileError(
                f"landing/{log} dt={arrival}: DuckDB ran out of memory reading the day's raw lines, also with a "
                f"limit of {limit} ({str(exc).splitlines()[0]}); lines of megabytes one after another are read "
                "2,048 at a time. The day's previous landing, if any, is kept. Set "
                "REVWH_LANDING_RETRY_MEMORY_LIMIT higher, or have the producer drop such members, then re-run the day.",
                largest,
            ) from None


def _readable(files: list[Path]) -> list[Path]:
    """Drop empty files (DuckDB's reader refuses them; they hold no lines anyway)."""
    return [p for p in files if p.stat().st_size > 0]


def land_partition(
    data: DataDir,
    log: str,
    arrival: dt.date,
    *,
    force: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
    buckets: int | None = None,
) -> LandingStats:
    """Apply rules 1–4 to every copy of ``log`` that arrived on ``arrival``.

    Skips the work (and says so) when the raw files are unchanged since the
    last landing of this partition, unless ``force``. ``con``: a compute
    connection to reuse (a step lands many days); one is opened otherwise.
    """
    buckets = landing_buckets() if buckets is None else buckets
    files = raw_files(data, log, arrival)
    fp = fingerprint(files, buckets)
    previous = read_manifest(data, log, arrival)
    if previous and previous.fingerprint == fp and not force and _landed_files_intact(data, log, arrival, previous):
        previous.skipped = True
        return previous

    stats = LandingStats(
        log=log,
        arrival_date=arrival.isoformat(),
        files=len(files),
        fingerprint=fp,
        buckets=buckets,
        bucket_scheme=bucket_scheme(buckets),
    )
    final_dir = data.landing_partition(log, arrival)
    quarantine_path = data.quarantine_file("landing", log, arrival)
    work = temp_sibling(final_dir)
    work.mkdir(parents=True)
    accepted_dir = work / "accepted"
    # Written in the work folder and moved next to the accepted partition's swap, so that a step that
    # fails (or dies) leaves the day's accepted copies and its quarantine both old, never one of each.
    new_quarantine = work / "quarantine.parquet"
    readable = _readable(files)
    try:
        if readable:
            readable, set_aside = _set_aside_undecodable(readable, work / "utf8", log, arrival)
            own = con is None
            con = compute_connection(data) if own else con

            def copy_on(connection: duckdb.DuckDBPyConnection) -> None:
                def copy(files: list[Path]) -> None:
                    for folder in (work / "split", accepted_dir):  # a read DuckDB refused may have begun writing
                        shutil.rmtree(folder, ignore_errors=True)
                    accepted_dir.mkdir()
                    _copy_partition(
                        connection, log, arrival, files, work, accepted_dir, new_quarantine, stats, set_aside
                    )

                read_with_gzip_repair(readable, work / "repaired", copy)

            # DuckDB inflates .gz files without checking their CRC-32: the raw ones (not the copies Python
            # wrote, which it checked) are checked beside the COPY
            gzipped = [p for p in readable if p.name.endswith(".gz") and not p.is_relative_to(work)]
            try:
                with GzipCheck(gzipped) as check:
                    try:
                        copy_on(con)
                    except duckdb.OutOfMemoryException:
                        _copy_with_more_memory(data, log, arrival, readable, copy_on)
                    if (fault := check.fault()) is not None:
                        raise RawFileError.unreadable(log, arrival, *fault)
                write_id_index(con, sorted(accepted_dir.glob("*/*.parquet")), accepted_dir / INDEX_FILE)
            except duckdb.IOException as exc:
                bad = file_named_in(str(exc), readable)
                if bad is None:
                    raise
                raise RawFileError.unreadable(log, arrival, bad, reason_for(str(exc), bad)) from None
            finally:
                if own:
                    con.close()
        else:
            accepted_dir.mkdir()
            write_empty_quarantine(new_quarantine)
            write_id_index(None, [], accepted_dir / INDEX_FILE)
        quarantine_path.parent.mkdir(parents=True, exist_ok=True)
        replace_dir(accepted_dir, final_dir)
        os.replace(new_quarantine, quarantine_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _write_manifest(data, stats)
    return stats


# A .gz raw file holds at least this many times its size in lines (NDJSON inflates 5-8x).
GZIP_TEXT_RATIO = 4


def text_bytes(path: Path) -> int:
    """Bytes of lines ``path`` holds: its size, or for a .gz file the size its last member's trailer
    records (ISIZE, the whole text of a single-member file, as gzip and pigz write them), at least
    :data:`GZIP_TEXT_RATIO` times its size (several members, zero padding, a text over 4 GiB)."""
    size = path.stat().st_size
    if not path.name.endswith(".gz") or size < 4:
        return size
    try:
        with path.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            recorded = int.from_bytes(fh.read(4), "little")
    except OSError:  # not readable: the landing that reads it says so, naming the file
        recorded = 0
    return max(recorded, GZIP_TEXT_RATIO * size)


def raw_bytes(data: DataDir, log: str, day: dt.date) -> int:
    """Bytes of lines the day's raw files hold (what its landing reads; a .gz file's inflated size)."""
    return sum(text_bytes(p) for p in raw_files(data, log, day))


def land_days(
    data: DataDir, log: str, days: list[dt.date], *, threads: int | None = None, force: bool = False
) -> list[LandingStats]:
    """:func:`land_partition` for each day (one DuckDB database, a cursor per thread). Results in
    the order of ``days``.

    Small days are mostly fixed cost, so up to ``threads`` of them land at once. A large day
    (:data:`CONCURRENT_DAY_MAX_BYTES` of lines or more, inflated) keeps both cores busy inside DuckDB on
    its own and lands alone: two large days at once cost a quarter more CPU than one after the other
    (five 107 MB gzip days of 717 MB of lines each: 53-60 s alone against 64 s two at a time, 101-116
    against 125 CPU s).

    A day with an unreadable raw file does not stop the others: they land, then the first
    :class:`RawFileError` is raised (its message counts the other unreadable files)."""
    unreadable: list[RawFileError] = []
    large = {day for day in days if raw_bytes(data, log, day) >= CONCURRENT_DAY_MAX_BYTES}
    with compute_connection(data) as con:
        _ensure_udfs(con)

        def land(day: dt.date) -> LandingStats | None:
            with con.cursor() as cursor:
                try:
                    return land_partition(data, log, day, force=force, con=cursor)
                except RawFileError as exc:
                    unreadable.append(exc)
                    return None

        alone = {day: land(day) for day in days if day in large}
        small = [day for day in days if day not in large]
        together = dict(zip(small, thread_map(land, small, threads), strict=True))
        landed = [alone[day] if day in large else together[day] for day in days]
    if unreadable:
        first = min(unreadable, key=lambda e: str(e))
        more = f" ({len(unreadable) - 1} more days of {log} have unreadable files)" if len(unreadable) > 1 else ""
        raise RawFileError(f"{first}{more}", first.path)
    return [stats for stats in landed if stats is not None]


def _ensure_udfs(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # already registered on this (reused) connection
        register_udfs(con)


def _copy_partition(
    con: duckdb.DuckDBPyConnection,
    log: str,
    arrival: dt.date,
    files: list[Path],
    work: Path,
    accepted_dir: Path,
    quarantine_path: Path,
    stats: LandingStats,
    set_aside: list[Path],
) -> None:
    """One streaming COPY: accepted copies by (event date, bucket), rejected ones aside (``set_aside``:
    Parquet files of undecodable lines, see :func:`_set_aside_undecodable`)."""
    _ensure_udfs(con)
    # Flush each thread's partitioned buffers early: with DuckDB's default (524,288 rows) a large
    # day spills gigabytes to the temp directory and runs 1.6x slower; 16k rows keeps RSS < 1 GiB.
    con.execute(f"SET partitioned_write_flush_threshold = {PARTITION_FLUSH_ROWS}")
    select = landing_select(log, files, arrival.isoformat())
    split = work / "split"
    written = con.execute(
        f"""COPY (
                SELECT *,
                    CASE WHEN reason IS NULL THEN strftime(event_date, '%Y-%m-%d') ELSE 'rejected' END AS part,
                    CASE WHEN reason IS NULL THEN {bucket_expr(stats.buckets)} ELSE 0 END AS bucket
                FROM ({select})
            ) TO {sql_str(split)} (FORMAT parquet, PARTITION_BY (part, bucket), COMPRESSION zstd,
                                      COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {LANDING_ROW_GROUP_SIZE},
                                      RETURN_STATS)"""
    ).fetchall()
    by_event_date: dict[str, int] = {}
    rejected_files = []
    for filename, count, *_rest, partition_keys, _extra in written:
        path = Path(filename)
        part, bucket = partition_keys["part"], int(partition_keys["bucket"])
        if part == "rejected":
            rejected_files.append(path)
            continue
        by_event_date[part] = by_event_date.get(part, 0) + int(count)
        target = accepted_dir / f"event_date={part}"
        target.mkdir(exist_ok=True)
        index = path.stem.rsplit("_", 1)[-1]
        os.replace(path, target / f"bucket-{bucket:03d}-{index}.parquet")
    stats.by_event_date = dict(sorted(by_event_date.items()))
    unreadable = _unreadable_lines_sql(con, arrival, files, work, set_aside)
    sources = [f"SELECT * FROM read_parquet({sql_list(rejected_files)})"] if rejected_files else []
    sources += [unreadable] if unreadable else []
    if sources:
        rejected = " UNION ALL BY NAME ".join(sources)
        con.execute(
            f"""COPY (SELECT {QUARANTINE_COLUMNS_SQL.format(log=log, stage="landing")} FROM ({rejected}))
                TO {sql_str(quarantine_path)} (FORMAT parquet)"""
        )
        rows = con.execute(
            f"SELECT reason, count(*) FROM read_parquet({sql_path(quarantine_path)}) GROUP BY 1"
        ).fetchall()
        stats.by_reason = {r: int(n) for r, n in sorted(rows)}
    else:
        write_empty_quarantine(quarantine_path)
    stats.accepted = sum(stats.by_event_date.values())
    stats.quarantined = sum(stats.by_reason.values())
    stats.landed = stats.accepted + stats.quarantined


def _set_aside_undecodable(
    files: list[Path], folder: Path, log: str, arrival: dt.date
) -> tuple[list[Path], list[Path]]:
    """Files that probe as not UTF-8 (another encoding, see ``probes_undecodable``) replaced by a copy of
    their UTF-8 lines under ``folder``, with the same name; their other lines written to Parquet
    (``src``, ``raw``) in batches. DuckDB's reader sent each such line to its reject table at 1.2 GiB a
    million lines. A file Python cannot read to its end (a cut gzip stream) fails the day in one line."""
    kept: list[Path] = []
    set_aside: list[Path] = []
    for i, path in enumerate(files):
        if not probes_undecodable(path):
            kept.append(path)
            continue
        clean = folder / str(i) / path.name
        try:
            for j, batch in enumerate(set_aside_undecodable(path, clean)):
                set_aside.append(folder / str(i) / f"set-aside-{j:06d}.parquet")
                schema = {"src": pl.String, "raw": pl.String}
                frame = pl.DataFrame({"src": [path.name] * len(batch), "raw": batch}, schema=schema)
                frame.write_parquet(set_aside[-1])
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise RawFileError.unreadable(log, arrival, path, f"Python's gzip: {exc}") from None
        kept.append(clean)
    return kept, set_aside


def _unreadable_lines_sql(
    con: duckdb.DuckDBPyConnection, arrival: dt.date, files: list[Path], work: Path, set_aside: list[Path]
) -> str | None:
    """Lines DuckDB's reader could not read as text (invalid UTF-8, over-long lines): malformed.

    They are kept in the reader's reject table (``store_rejects``) instead of failing the whole
    partition. Their text there is mangled (see :mod:`pipelines.landing.undecodable`), so a file whose
    rejects are all undecodable lines is read again for their own bytes. It keeps the reader's text if
    that finds another number of such lines than the reader did (the counts must balance). The reader
    keeps at most ``rejects_per_file`` of a file's lines (its table lives in memory); a file that
    reaches that (a file in another encoding) takes its undecodable lines from the re-read alone, which
    writes them to ``work`` in batches, so they are never all in memory.
    """
    rejects = """reject_errors e JOIN reject_scans s ON e.scan_id = s.scan_id AND e.file_id = s.file_id"""
    try:
        per_file = con.execute(
            f"""SELECT parse_filename(s.file_path), count(DISTINCT (e.scan_id, e.file_id, e.line)),
                       bool_and(e.error_type = 'INVALID ENCODING')
                FROM {rejects} GROUP BY 1"""
        ).fetchall()
    except duckdb.Error:  # no reject table: nothing was rejected
        per_file = []
    columns = f"NULL::VARCHAR AS event_id, DATE '{arrival.isoformat()}' AS arrival_date, '{Reason.MALFORMED}' AS reason"
    aside = f"SELECT {columns}, raw, NULL::DATE AS event_date, src FROM read_parquet({sql_list(set_aside)})"
    if not per_file:
        return aside if set_aside else None
    by_name = {p.name: p for p in files}
    limit = rejects_per_file(len(files))  # as the read had it (pipelines.duck.union_of_scans)
    texts: dict[str, list[str]] = {}  # fewer than `limit` lines a file: at most about REJECTS_PER_READ in all
    reread: list[str] = []
    for name, count, encoding_only in per_file:
        if name not in by_name:
            continue
        if count >= limit:  # the table kept only some of its rejects, of whatever kind
            reread.append(name)
        elif encoding_only and len(lines := undecodable_lines(by_name[name])) == count:
            texts[name] = lines
    sources = [
        f"""SELECT DISTINCT ON (e.scan_id, e.file_id, e.line)
                   {columns}, e.csv_line AS raw, NULL::DATE AS event_date, parse_filename(s.file_path) AS src
               FROM {rejects}
               WHERE NOT list_contains({_sql_text_list([*texts, *reread])}, parse_filename(s.file_path))"""
    ]
    if texts:
        view = f"undecodable_lines_{arrival:%Y%m%d}"  # per day: days land side by side on cursors
        frame = pl.DataFrame(
            {
                "src": [n for n, lines in texts.items() for _ in lines],
                "raw": [t for lines in texts.values() for t in lines],
            },
            schema={"src": pl.String, "raw": pl.String},
        )
        con.register(view, frame)
        sources.append(f"SELECT {columns}, raw, NULL::DATE AS event_date, src FROM {view}")
    written = _write_undecodable_batches([by_name[n] for n in reread], work / "undecodable") + set_aside
    if written:
        sources.append(f"SELECT {columns}, raw, NULL::DATE AS event_date, src FROM read_parquet({sql_list(written)})")
    return "\nUNION ALL BY NAME\n".join(sources)


def _write_undecodable_batches(paths: list[Path], folder: Path) -> list[Path]:
    """The undecodable and over-long lines of ``paths``, as Parquet files (``src``, ``raw``) of about
    ``UNDECODABLE_BATCH_LINES`` lines each: a file's lines may span several, and one holds several small
    files' (5,000 files of 990 such lines made 5,000 Parquet files for the quarantine to open)."""
    shutil.rmtree(folder, ignore_errors=True)  # an attempt before a retry may have begun writing
    out: list[Path] = []
    names: list[str] = []
    lines: list[str] = []

    def flush() -> None:
        if lines:
            folder.mkdir(parents=True, exist_ok=True)
            out.append(folder / f"{len(out):06d}.parquet")
            frame = pl.DataFrame({"src": names, "raw": lines}, schema={"src": pl.String, "raw": pl.String})
            frame.write_parquet(out[-1])
            names.clear()
            lines.clear()

    for path in paths:
        for batch in undecodable_batches(path, UNDECODABLE_BATCH_LINES, max_line_bytes=MAX_LINE_BYTES):
            names.extend([path.name] * len(batch))
            lines.extend(batch)
            if len(lines) >= UNDECODABLE_BATCH_LINES:
                flush()
    flush()
    return out


def _sql_text_list(values: list[str]) -> str:
    return f"[{', '.join(sql_str(v) for v in values)}]::VARCHAR[]"


def landing_files_for_event_date(data: DataDir, log: str, event_date: dt.date, bucket: int | None = None) -> list[Path]:
    """Accepted copies with this event date, from arrival days D..D+3 (rule 4's window).

    ``bucket``: only the files of that bucket (partitions landed with the current
    bucket scheme; see :func:`landing_sources` for partitions cut otherwise).
    """
    out: list[Path] = []
    for lag in range(MAX_LATENESS_DAYS + 1):
        folder = data.landing_partition(log, event_date + dt.timedelta(days=lag))
        part = folder / f"event_date={event_date.isoformat()}"
        if part.is_dir():
            pattern = "*.parquet" if bucket is None else f"bucket-{bucket:03d}-*.parquet"
            out.extend(sorted(part.glob(pattern)))
    return out


@dataclass(frozen=True)
class LandingSources:
    """The landed files with one event date, split by how their partition was bucketed."""

    bucketed: list[Path]  # cut with the current scheme: the file name says its bucket
    other: list[Path]  # landed before bucketing or with another scheme: filter by hash when read

    def bucket_files(self, bucket: int) -> list[Path]:
        return [p for p in self.bucketed if int(BUCKET_FILE.fullmatch(p.name).group(1)) == bucket]


def landing_sources(data: DataDir, log: str, event_date: dt.date, buckets: int) -> LandingSources:
    """Every landed file with ``event_date`` (arrival days D..D+3), by bucketing scheme."""
    scheme = bucket_scheme(buckets)
    bucketed: list[Path] = []
    other: list[Path] = []
    for lag in range(MAX_LATENESS_DAYS + 1):
        arrival = event_date + dt.timedelta(days=lag)
        part = data.landing_partition(log, arrival) / f"event_date={event_date.isoformat()}"
        if not part.is_dir():
            continue
        files = sorted(part.glob("*.parquet"))
        manifest = read_manifest(data, log, arrival)
        same = manifest is not None and manifest.bucket_scheme == scheme
        if same and all(BUCKET_FILE.fullmatch(p.name) for p in files):
            bucketed += files
        else:
            other += files
    return LandingSources(bucketed, other)
