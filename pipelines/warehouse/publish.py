"""Publish ``warehouse.duckdb`` from the lake by writing a new file and renaming it.

DuckDB lets one process write a database file and, while it does, no other
process may open it. So the pipeline never holds the published file open:
it prepares a new file beside it and ``os.replace``s it, which is atomic.
A reader that opened the old file keeps a consistent snapshot; the next
reader opens the new one. Readers never see a half-replaced partition.

The contract tables (the marts and ``quality.quarantine``, SPEC §5) are tables
inside the file, so the file stands alone: it can be copied or moved away from
the lake and still answers. The large layers (facts, staged) are views over a
snapshot of the lake's Parquet (``pipelines.warehouse.snapshot``: hard links made
at publish time), so they show what the marts were built from, not the files of
a later run that has not passed its checks.
``quality.quarantine_counts`` summarises the quarantine per partition file so
that reports need not scan every quarantine row.

The file is written in DuckDB's v1.0.0 storage format, which every DuckDB
client from 1.0 on can open (the DuckDB CLI on PyPI is still 1.5; the 2.0
format would lock out every 1.x reader: DBeaver, R, the CLI).

Incremental: the new file starts as a copy of the published one, and only the
partition files that changed since (by size and modification time, recorded
in ``_publish.files``) are deleted and re-inserted, in one transaction. So a
daily publish costs the same with 7 or 900 days of history, except for the copy
itself, which grows with the file (mostly the quarantine's raw lines); on XFS and
btrfs the copy is a reflink (``lake.clone_file``) and costs nothing either. Anything unusual
(no warehouse yet, a table missing, a mart's columns changed) rebuilds it all.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import arrival_days
from pipelines.duck import connect, sql_glob, sql_list, sql_path, sql_str
from pipelines.errors import CliError
from pipelines.facts.revenue import FACT_SCHEMA
from pipelines.lake import EVENT_DATE_FILE, DataDir, clone_file, files_with_suffix, sub_folders, temp_sibling
from pipelines.marts.build import mart_names, mart_sql
from pipelines.marts.usd_sum import install_usd_sum
from pipelines.quality.quarantine import QUARANTINE_SCHEMA
from pipelines.warehouse.comments import apply_comments
from pipelines.warehouse.snapshot import (
    SNAPSHOT_TABLE,
    SNAPSHOTS,
    build_snapshot,
    keep_seconds,
    latest_snapshot,
    new_snapshot_path,
    not_linked_by,
    prune_snapshots,
    published_snapshot_name,
    snapshot_sources,
    usable_snapshot,
)

QUARANTINE_COUNTS = "quality.quarantine_counts"
QUARANTINE = "quality.quarantine"
# The oldest storage format DuckDB 2.0 writes: readable by DuckDB 1.0 and later.
WAREHOUSE_STORAGE_VERSION = "v1.0.0"
PUBLISHED_FILES = "_publish.files"
# The two contract marts (SPEC §5) are re-sorted after an incremental update.
SORTED_MARTS = {"marts.revenue_by_stream", "marts.revenue_by_region"}


@dataclass(frozen=True)
class LakeFile:
    """One partition file the warehouse copies from: which table, which partition, which version."""

    table: str  # marts.<name> or quality.quarantine_counts
    key: str  # the partition: "2025-03-01" for a mart, "<stage>/<log>/<day>" for the quarantine
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class PublishScope:
    """The partitions a run wrote and checked: its event dates (marts, the staged quarantine) and their arrival
    days (the landing quarantine). A run publishes only these; a partition outside them that changed in the
    lake (left by a run whose blocking check failed, or that was killed) stays as last published until a
    run of its date passes its checks."""

    event_dates: frozenset[dt.date]
    arrival_days: frozenset[dt.date]

    @classmethod
    def of_run(cls, event_dates: Iterable[dt.date]) -> PublishScope:
        dates = frozenset(event_dates)
        return cls(dates, frozenset(arrival_days(dates)))

    def covers(self, table: str, key: str) -> bool:
        if table == QUARANTINE_COUNTS:
            stage, _, day = key.split("/")
            return dt.date.fromisoformat(day) in (self.arrival_days if stage == "landing" else self.event_dates)
        return dt.date.fromisoformat(key) in self.event_dates


def _glob(folder: Path) -> str | None:
    """A DuckDB string literal of the folder's Parquet files, None if it has none."""
    return sql_glob(folder, "*.parquet") if files_with_suffix(folder.as_posix(), ".parquet") else None


def lake_files(base: Path) -> list[LakeFile]:
    """Every mart and quarantine partition file under ``base`` (a lake or a snapshot), with its size and mtime."""
    root = base.as_posix()
    out = []
    for name in mart_names():
        for entry in files_with_suffix(f"{root}/marts/{name}", ".parquet"):
            match = EVENT_DATE_FILE.fullmatch(entry.name)
            if match:
                st = entry.stat()
                out.append(LakeFile(f"marts.{name}", match.group(1), entry.path, st.st_size, st.st_mtime_ns))
    for stage in sub_folders(f"{root}/quarantine"):
        for log in sub_folders(f"{root}/quarantine/{stage}"):
            for entry in files_with_suffix(f"{root}/quarantine/{stage}/{log}", ".parquet"):
                st = entry.stat()
                key = f"{stage}/{log}/{entry.name.removesuffix('.parquet')}"
                out.append(LakeFile(QUARANTINE_COUNTS, key, entry.path, st.st_size, st.st_mtime_ns))
    return out


def _create_empty_mart(con: duckdb.DuckDBPyConnection, name: str) -> None:
    empty_facts = pl.DataFrame(schema=FACT_SCHEMA)  # noqa: F841 (read by DuckDB's replacement scan)
    install_usd_sum(con)
    con.execute("CREATE OR REPLACE TEMP VIEW revenue_events AS SELECT * FROM empty_facts")
    sql = mart_sql(name).strip().rstrip(";")
    con.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM ({sql}) LIMIT 0")


def _counts_select(files: list[LakeFile]) -> str:
    """quarantine_counts rows of some quarantine files: rows per (partition file, reason, arrival date)."""
    keys = ", ".join(f"({sql_str(f.path)}, '{f.key}')" for f in files)
    return f"""SELECT k.key AS partition_key, q.stage, q.log, q.reason, q.arrival_date,
                      CAST(count(*) AS BIGINT) AS rows
               FROM read_parquet({sql_list([f.path for f in files])}, union_by_name = true, filename = true) q
               JOIN (VALUES {keys}) k(path, key) ON k.path = q.filename
               GROUP BY ALL"""


# The partition a quarantine row belongs to, as LakeFile.key spells it: landing files are cut by
# arrival day, staged files by event date.
_QUARANTINE_ROW_KEY = (
    "stage || '/' || log || '/' "
    "|| strftime(CASE WHEN stage = 'landing' THEN arrival_date ELSE event_date END, '%Y-%m-%d')"
)


_QUARANTINE_DAY = re.compile(r"\d{4}-\d\d-\d\d")


def _is_day(text: str) -> bool:
    """Whether ``text`` is a day as a quarantine row's key spells it (YYYY-MM-DD, a real date)."""
    if not _QUARANTINE_DAY.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _insert_quarantine(con: duckdb.DuckDBPyConnection, files: list[LakeFile]) -> None:
    """The rows of some quarantine files into quality.quarantine; each row must belong to its file's partition
    (that is how a re-run's rows are found and deleted), which is checked here rather than assumed."""
    paths = sql_list([f.path for f in files])
    keys = ", ".join(f"({sql_str(f.path)}, '{f.key}')" for f in files)
    cols = ", ".join(f"q.{c}" for c in QUARANTINE_SCHEMA)
    inserted = con.execute(
        f"""INSERT INTO {QUARANTINE} SELECT {cols}
            FROM read_parquet({paths}, union_by_name = true, filename = true) q
            JOIN (VALUES {keys}) k(path, key) ON k.path = q.filename
            WHERE {_QUARANTINE_ROW_KEY} = k.key"""
    ).fetchall()[0][0]
    expected = con.execute(f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({paths})").fetchall()[0][0]
    if inserted != expected:
        raise ValueError(
            f"{expected - inserted} quarantine rows lie outside their file's partition (stage/log/day) in {paths}"
        )


def _insert(con: duckdb.DuckDBPyConnection, table: str, files: list[LakeFile]) -> None:
    if table == QUARANTINE_COUNTS:
        con.execute(f"INSERT INTO {table} {_counts_select(files)}")
        _insert_quarantine(con, files)
    else:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet({sql_list([f.path for f in files])})")


def _delete_quarantine_rows(con: duckdb.DuckDBPyConnection, keys: list[str]) -> None:
    """Delete the quarantine rows of the partitions ``keys`` (``<stage>/<log>/<day>``).

    Said as each stage's date column between the keys' first and last day, then the (log, day) pairs,
    not as the row's key spelt out (``_QUARANTINE_ROW_KEY``): DuckDB then skips every row group whose
    dates lie outside by its min/max, instead of building the key of every row of the history. On a
    table of 20M rows (700 days of about 30k rejects), deleting one day's ten partitions took 1.1–1.3 s
    the old way and 0.007 s this way. A key whose day is not a date names no row (every row's key has one)."""
    by_stage: dict[str, list[tuple[str, str]]] = {}
    for key in keys:
        stage, log, day = key.split("/")
        if _is_day(day):
            by_stage.setdefault(stage, []).append((log, day))
    for stage, parts in sorted(by_stage.items()):
        column = "arrival_date" if stage == "landing" else "event_date"  # as _QUARANTINE_ROW_KEY cuts them
        days = sorted(day for _, day in parts)
        pairs = ", ".join(f"({sql_str(log)}, DATE '{day}')" for log, day in parts)
        con.execute(
            f"""DELETE FROM {QUARANTINE} WHERE stage = {sql_str(stage)}
                AND {column} BETWEEN DATE '{days[0]}' AND DATE '{days[-1]}'
                AND (log, {column}) IN (SELECT * FROM (VALUES {pairs}))"""
        )


def _delete(con: duckdb.DuckDBPyConnection, table: str, keys: list[str]) -> None:
    values = ", ".join(f"('{k}')" for k in keys)
    if table == QUARANTINE_COUNTS:
        con.execute(f"DELETE FROM {table} WHERE partition_key IN (SELECT * FROM (VALUES {values}))")
        _delete_quarantine_rows(con, keys)
    else:
        con.execute(f"DELETE FROM {table} WHERE event_date IN (SELECT CAST(k AS DATE) FROM (VALUES {values}) v(k))")


def _views(con: duckdb.DuckDBPyConnection, data: DataDir, snapshot: Path | None) -> None:
    """The lazy views over the snapshot (over the live lake where the file system cannot hard-link), and
    which folder they read. Cheap: no data is read."""
    base = snapshot if snapshot is not None else data.lake
    facts = _glob(base / "facts" / "revenue_events")
    if facts:
        con.execute(f"CREATE OR REPLACE VIEW facts.revenue_events AS SELECT * FROM read_parquet({facts})")
    for log_dir in sorted((base / "staged").glob("*")) if (base / "staged").exists() else []:
        pattern = _glob(log_dir)
        if pattern:
            source = f"read_parquet({pattern})"
            con.execute(f"CREATE OR REPLACE VIEW staged.{log_dir.name} AS SELECT * FROM {source}")
    con.execute(f"CREATE OR REPLACE TABLE {SNAPSHOT_TABLE} (folder VARCHAR)")
    if snapshot is not None:
        con.execute(f"INSERT INTO {SNAPSHOT_TABLE} VALUES (?)", [snapshot.as_posix()])


def _record(con: duckdb.DuckDBPyConnection, files: list[LakeFile]) -> None:
    if not files:
        return
    frame = pl.DataFrame([f.__dict__ for f in files], schema=list(LakeFile.__dataclass_fields__), orient="row")
    con.register("_new_files", frame)
    con.execute(f'INSERT INTO {PUBLISHED_FILES} SELECT "table", key, path, size, mtime_ns FROM _new_files')
    con.unregister("_new_files")


def _rebuild(con: duckdb.DuckDBPyConnection, data: DataDir, files: list[LakeFile], snapshot: Path | None) -> None:
    """The whole catalogue from ``files`` (the snapshot's, where there is one)."""
    for schema in ("marts", "quality", "facts", "staged", "_publish"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        f"CREATE TABLE {PUBLISHED_FILES} (table_name VARCHAR, key VARCHAR, path VARCHAR, size BIGINT, mtime_ns BIGINT)"
    )
    for name in mart_names():
        paths = [f.path for f in files if f.table == f"marts.{name}"]
        if paths:
            con.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM read_parquet({sql_list(paths)}) ORDER BY ALL")
        else:  # no partition built yet: an empty table with the mart's columns
            _create_empty_mart(con, name)
    con.execute(
        f"""CREATE TABLE {QUARANTINE_COUNTS} (partition_key VARCHAR, stage VARCHAR, log VARCHAR, reason VARCHAR,
                                              arrival_date DATE, rows BIGINT)"""
    )
    columns = ", ".join(f"{c} {t}" for c, t in QUARANTINE_SCHEMA.items())
    con.execute(f"CREATE TABLE {QUARANTINE} ({columns})")
    quarantine = [f for f in files if f.table == QUARANTINE_COUNTS]
    if quarantine:
        _insert(con, QUARANTINE_COUNTS, quarantine)
    _record(con, files)
    _views(con, data, snapshot)
    con.execute("BEGIN TRANSACTION")
    apply_comments(con)
    con.execute("COMMIT")


def _published(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple[int, int]] | None:
    """What the copied warehouse holds, by (table, partition key); None when it cannot be updated in place."""
    version = con.execute(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()[0][0]
    if not version.startswith(WAREHOUSE_STORAGE_VERSION):
        return None  # written by an older release in another format: rebuild in the readable one
    tables = {r[0] for r in con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
    marts = {f"marts.{name}" for name in mart_names()}
    needed = {PUBLISHED_FILES, QUARANTINE_COUNTS, QUARANTINE} | marts
    if not needed <= tables or {t for t in tables if t.startswith("marts.")} != marts:
        return None  # a mart was added or dropped from sql/marts: rebuild
    rows = con.execute(f"SELECT table_name, key, size, mtime_ns FROM {PUBLISHED_FILES}").fetchall()
    return {(t, k): (s, m) for t, k, s, m in rows}


def _columns(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {sql}").fetchall()]


@dataclass(frozen=True)
class _Update:
    """The partitions an in-place update deletes and re-inserts."""

    changed: list[LakeFile]
    removed: list[tuple[str, str]]


def _plan_update(
    con: duckdb.DuckDBPyConnection, files: list[LakeFile], published: dict, scope: PublishScope | None
) -> _Update | None:
    """The changed partitions (of ``scope``, when given); None when a full rebuild is needed instead."""
    current = {(f.table, f.key): f for f in files}
    changed = [f for k, f in current.items() if published.get(k) != (f.size, f.mtime_ns)]
    removed = [k for k in published if k not in current]
    if scope is not None:
        changed = [f for f in changed if scope.covers(f.table, f.key)]
        removed = [k for k in removed if scope.covers(*k)]
    for f in changed:  # a mart whose SQL changed has new columns: rebuild rather than mix shapes
        new, old = f"SELECT * FROM read_parquet({sql_path(f.path)})", f"SELECT * FROM {f.table}"
        if f.table != QUARANTINE_COUNTS and _columns(con, new) != _columns(con, old):
            return None
    return _Update(changed, removed)


def _update(con: duckdb.DuckDBPyConnection, data: DataDir, plan: _Update, snapshot: Path | None) -> None:
    """Replace the planned partitions and point the views at ``snapshot``, in one transaction."""
    changed, removed = plan.changed, plan.removed
    con.execute("BEGIN TRANSACTION")
    try:
        by_table: dict[str, list] = {}
        for f in changed:
            by_table.setdefault(f.table, []).append(f)
        for table, keys in [(t, [k for tt, k in removed if tt == t]) for t in {t for t, _ in removed}]:
            _delete(con, table, keys)
        for table, group in by_table.items():
            _delete(con, table, [f.key for f in group])
            _insert(con, table, group)
        for table in SORTED_MARTS & (set(by_table) | {t for t, _ in removed}):
            # keep the contract marts in key order, as a full rebuild leaves them, for readers that
            # compare `SELECT *` without ORDER BY (they are small: a few rows per day)
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {table} ORDER BY ALL")
        stale = [(t, k) for t, k in removed] + [(f.table, f.key) for f in changed]
        if stale:
            values = ", ".join(f"('{t}', '{k}')" for t, k in stale)
            con.execute(f"DELETE FROM {PUBLISHED_FILES} WHERE (table_name, key) IN (SELECT * FROM (VALUES {values}))")
        _record(con, changed)
        _views(con, data, snapshot)
        apply_comments(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A new file is created in WAREHOUSE_STORAGE_VERSION; an existing one keeps its own format."""
    return connect(str(path), config={"storage_compatibility_version": WAREHOUSE_STORAGE_VERSION})


def _remove(tmp: Path) -> None:
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)


def _sources(
    data: DataDir,
    scope: PublishScope | None,
    previous: Path | None,
    recorded: str | None,
    on_note: Callable[[str], None],
) -> dict[str, Path]:
    """What this publish shows: a run's partitions from the lake and the others as published before, so a
    failed or killed run's files stay out (also through a rebuild); `revwh publish` takes the lake as it is."""
    if scope is None:
        return snapshot_sources(data)
    dates = (scope.event_dates, scope.arrival_days)
    if previous is not None:
        return snapshot_sources(data, dates, kept_from=previous)
    if data.warehouse.exists():
        # Published without a usable snapshot: by a release before snapshots, on a file system without
        # hard links, with its snapshot folder deleted, or restored from a backup older than its snapshots.
        if recorded:  # it did have one (a file system without hard links records none: nothing to say)
            on_note(
                f"the published warehouse's snapshot {Path(recorded).name} is not in {data.lake / SNAPSHOTS}, so "
                "the facts and staged of the dates outside this run are published from the lake as it is, with "
                "whatever a failed or killed run left there: re-run such dates to publish them checked"
            )
        return snapshot_sources(data)
    return snapshot_sources(data, dates)  # nothing was ever published here: only the run's partitions


def _note_unchecked(data: DataDir, changed: list[str], on_note: Callable[[str], None]) -> None:
    """Say which partitions ``revwh publish`` takes that no successful run published (see ``not_linked_by``),
    and the run that would publish them checked."""
    if not changed:
        return
    days = sorted(re.findall(r"\d{4}-\d\d-\d\d", " ".join(changed)))
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    on_note(
        f"{len(changed)} lake partition file(s) of {days[0]}..{days[-1]} changed since the warehouse was last "
        f"published ({shown}): a run that failed a blocking check or was killed left them, and this publish takes "
        f"them unchecked; `revwh run --data-dir {shlex.quote(str(data.root))} --start {days[0]} --end {days[-1]}` "
        "publishes them checked"
    )


def publish_warehouse(
    data: DataDir,
    *,
    full: bool = False,
    scope: PublishScope | None = None,
    on_note: Callable[[str], None] = lambda note: None,
) -> Path:
    """Bring the catalogue up to date with the lake and swap it in; returns the warehouse path.

    ``full``: rebuild from scratch even when an in-place update is possible. ``scope``: update only the
    partitions a run checked (the ``warehouse`` asset), the other partitions as last published (from the
    snapshot, also through a rebuild: no warehouse yet, a mart added, dropped or reshaped, an older storage
    format); None (``revwh publish``) takes the lake as it is.
    ``on_note``: told when a scoped publish cannot keep the other dates as published (no snapshot to take them from),
    and when an unscoped one (``revwh publish``) takes partitions written since the last publish, unchecked.
    """
    keep_seconds()  # a bad $REVWH_SNAPSHOT_KEEP_MINUTES fails here, not after the swap
    target = data.warehouse
    tmp = temp_sibling(target)
    files = lake_files(data.lake)
    # What is published now: the snapshot the warehouse reads; without a warehouse (deleted, or never
    # published), the newest snapshot the lake holds.
    recorded = published_snapshot_name(data)
    previous = usable_snapshot(data, recorded) if target.exists() else latest_snapshot(data)
    incremental = not full and target.exists()
    if scope is None and previous is not None:
        _note_unchecked(data, not_linked_by(data, previous), on_note)
    con = None
    try:
        if incremental:
            clone_file(target, tmp)  # shares blocks on XFS / btrfs: no cost growing with history there
        con = _connect(tmp)
        published = _published(con) if incremental else None
    except BaseException as exc:  # leave nothing behind; a damaged published file: say so and how to rebuild it
        if con is not None:
            con.close()
        _remove(tmp)
        if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EROFS:
            raise CliError(
                f"cannot write the new warehouse beside {target}: {exc.strerror or exc} (the data directory must "
                "be writable by whoever runs the pipeline)"
            ) from None
        if not incremental or not isinstance(exc, duckdb.Error):
            raise
        reason = str(exc).strip().splitlines()[0]
        raise CliError(
            f"{target} cannot be read ({reason}). It is built from the lake: rebuild it with "
            f"`revwh publish --data-dir {shlex.quote(str(data.root))} --full`, then re-run."
        ) from None
    snapshot: Path | None = None
    try:
        plan = _plan_update(con, files, published, scope) if incremental and published is not None else None
        snapshot = build_snapshot(new_snapshot_path(data), _sources(data, scope, previous, recorded, on_note))
        if plan is not None:
            _update(con, data, plan, snapshot)
        else:
            con.close()
            tmp.unlink(missing_ok=True)
            con = _connect(tmp)
            _rebuild(con, data, lake_files(snapshot) if snapshot is not None else files, snapshot)
        con.execute("CHECKPOINT")
    except BaseException as exc:
        con.close()
        _remove(tmp)  # the published file is untouched
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
        if isinstance(exc, duckdb.InvalidInputException | duckdb.IOException) and ".parquet" in str(exc):
            reason = " ".join(str(exc).split())
            raise CliError(
                f"cannot publish {target}: a lake file cannot be read ({reason}); the published warehouse is "
                "unchanged. Re-run the dates of the file it names (`revwh run`), which writes it again."
            ) from None
        raise
    con.close()
    os.replace(tmp, target)
    wal = Path(str(tmp) + ".wal")
    if wal.exists():
        wal.unlink()
    prune_snapshots(data, keep=[snapshot, previous])
    return target
