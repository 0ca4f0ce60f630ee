"""The facts and staged files a published warehouse reads: hard links, frozen when it was published.

Why: every run replaces the lake's facts and staged partition files as it goes, also a run that then
fails a blocking check (or is killed) and is never published. Views over the live files would show that
run's facts beside the marts of the last good run, so ``SUM(facts)`` would stop matching the marts for an
analyst, and a reader would see a run's facts before its checks passed. So each publish links the files
it publishes into a new folder, ``lake/_published/<id>/`` (the lake's own layout below it), and the new
warehouse's views read that folder; the marts and the quarantine are tables and need nothing of the kind.

A link costs no space. The pipeline writes every partition file beside its target and renames it into
place (a new inode), so a linked file keeps the bytes it had when published, for as long as a snapshot
links it. The folder of the warehouse before is kept too (a reader may have opened it a moment ago),
and so is every folder that was current less than $REVWH_SNAPSHOT_KEEP_MINUTES (60) ago, so that a
notebook's connection survives a backfill's many publishes; older ones are removed. Snapshots never
travel to object storage (``pipelines.storage`` skips them): ``restore_snapshot`` links them again from
the pulled lake.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import duckdb

from pipelines.duck import connect, sql_str
from pipelines.errors import CliError
from pipelines.lake import EVENT_DATE_FILE, DataDir, files_with_suffix, sub_folders, temp_sibling

SNAPSHOTS = "_published"
# The warehouse table that names the folder its views read.
SNAPSHOT_TABLE = "_publish.snapshot"
# The layers read through views (the marts and the quarantine are copied into tables instead).
VIEW_LAYERS = ("facts", "staged")
# Every layer is linked all the same: a rebuild (no warehouse here yet, a mart reshaped) then publishes, for
# the dates outside its run, the marts and quarantine that were published, not a failed run's files.
TABLE_LAYERS = ("marts", "quarantine")
# Written into every snapshot that links all four layers: a folder without it (made by the release before)
# links only facts and staged, so it cannot stand for the marts and quarantine that were published.
ALL_LAYERS_MARKER = "_all_layers"
# A quarantine file is quarantine/<stage>/<log>/<day>.parquet: arrival day for landing, event date for staged.
_QUARANTINE_FILE = re.compile(r"(\d{4}-\d\d-\d\d)\.parquet")
# A replaced snapshot is kept this long for readers still holding the warehouse it belonged to.
KEEP_MINUTES_VARIABLE = "REVWH_SNAPSHOT_KEEP_MINUTES"
DEFAULT_KEEP_MINUTES = 60
# What a file system without hard links answers os.link (FAT, some network and FUSE mounts).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})


def snapshot_root(data: DataDir) -> Path:
    return data.lake / SNAPSHOTS


def new_snapshot_path(data: DataDir) -> Path:
    """A fresh folder name that sorts by publish time."""
    return snapshot_root(data) / f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"


def partition_files(base: Path) -> dict[str, str]:
    """``layer/table/event_date=D.parquet`` and ``quarantine/stage/log/D.parquet`` (relative) → file, under
    ``base`` (a lake or a snapshot folder).

    (Plain strings, not ``Path`` objects: a lake of years holds thousands of these, listed twice on every
    publish; at 90 days of history, 2,100 files, building their ``Path``s cost more than listing them.)"""
    out: dict[str, str] = {}
    root = base.as_posix()
    for layer in (*VIEW_LAYERS, "marts"):
        for table in sub_folders(f"{root}/{layer}"):
            for name in (e.name for e in files_with_suffix(f"{root}/{layer}/{table}", ".parquet")):
                if EVENT_DATE_FILE.fullmatch(name):
                    rel = f"{layer}/{table}/{name}"
                    out[rel] = f"{root}/{rel}"
    for stage in sub_folders(f"{root}/quarantine"):
        for log in sub_folders(f"{root}/quarantine/{stage}"):
            for name in (e.name for e in files_with_suffix(f"{root}/quarantine/{stage}/{log}", ".parquet")):
                if _QUARANTINE_FILE.fullmatch(name):
                    rel = f"quarantine/{stage}/{log}/{name}"
                    out[rel] = f"{root}/{rel}"
    return out


def _in_scope(rel: str, event_dates: frozenset[dt.date], arrival_days: frozenset[dt.date]) -> bool:
    """Whether a run of ``event_dates`` wrote and checked this file (its landing quarantine is cut by arrival day)."""
    parts = rel.split("/")
    match = (_QUARANTINE_FILE if parts[0] == "quarantine" else EVENT_DATE_FILE).fullmatch(parts[-1])
    assert match is not None
    day = dt.date.fromisoformat(match.group(1))
    return day in (arrival_days if parts[:2] == ["quarantine", "landing"] else event_dates)


def snapshot_sources(
    data: DataDir,
    scope: tuple[Iterable[dt.date], Iterable[dt.date]] | None = None,
    kept_from: Path | None = None,
) -> dict[str, str]:
    """What the next snapshot links: the lake's files of ``scope`` (event dates, arrival days), or all of
    them when None; for the partitions outside it, what ``kept_from`` (the snapshot before) linked, or
    nothing when None (a data directory that never published: whatever the lake holds there was left by a
    run that failed or was killed)."""
    lake = partition_files(data.lake)
    if scope is None:
        return lake
    event_dates, arrival_days = frozenset(scope[0]), frozenset(scope[1])
    fresh = {rel: f for rel, f in lake.items() if _in_scope(rel, event_dates, arrival_days)}
    kept: dict[str, str] = {}
    if kept_from is not None and kept_from.is_dir():
        kept = {
            rel: f for rel, f in partition_files(kept_from).items() if not _in_scope(rel, event_dates, arrival_days)
        }
    return dict(sorted({**kept, **fresh}.items()))


def not_linked_by(data: DataDir, snapshot: Path) -> list[str]:
    """The lake's partition files (relative paths) that ``snapshot`` does not hold: written since that
    publish. A run writes its partitions before its blocking checks run, so these are a run's that failed a
    check or was killed. A file is the one published when it is the same file (a hard link) or has the same
    size and modification time (a copy that kept times, ``cp -a``, ``shutil.copytree``). When no file
    matches, the data directory was copied without either (``cp -r``) and nothing can be told: empty list."""
    linked = partition_files(snapshot)
    changed, matched = [], 0
    for rel, path in partition_files(data.lake).items():
        old = linked.get(rel)
        if old is not None and _same_file(path, old):
            matched += 1
        else:
            changed.append(rel)
    return changed if matched or not linked else []


def _same_file(path: str, published: str) -> bool:
    try:
        now, then = os.stat(path), os.stat(published)
    except OSError:  # removed meanwhile
        return False
    same_inode = (now.st_dev, now.st_ino) == (then.st_dev, then.st_ino)
    return same_inode or (now.st_size, now.st_mtime_ns) == (then.st_size, then.st_mtime_ns)


def build_snapshot(target: Path, sources: dict[str, str]) -> Path | None:
    """Link ``sources`` (relative path → file) into the folder ``target`` (made complete, then renamed into
    place); None when the file system cannot hard-link, and the views then read the lake's live files as before."""
    work = temp_sibling(target)
    try:
        work.mkdir()
        root = work.as_posix()
        made: set[str] = set()
        for rel, source in sources.items():
            folder, _, name = rel.rpartition("/")
            if folder not in made:
                os.makedirs(f"{root}/{folder}", exist_ok=True)
                made.add(folder)
            os.link(source, f"{root}/{folder}/{name}")
        (work / ALL_LAYERS_MARKER).write_text(" ".join((*VIEW_LAYERS, *TABLE_LAYERS)) + "\n")
        os.rename(work, target)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if exc.errno in _NO_HARD_LINKS:
            return None
        raise  # a full disk, a file gone: the publish fails and leaves the warehouse as it was
    return target


def keep_seconds() -> float:
    """How long a snapshot outlives the publish that replaced it: $REVWH_SNAPSHOT_KEEP_MINUTES, else 60."""
    value = os.environ.get(KEEP_MINUTES_VARIABLE, "").strip()
    if not value:
        return DEFAULT_KEEP_MINUTES * 60.0
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not minutes >= 0 or minutes == float("inf"):
        raise CliError(f"{KEEP_MINUTES_VARIABLE} must be a number of minutes, 0 or more (got {value!r})")
    return minutes * 60.0


def _published_at(folder: Path) -> float:
    """When a snapshot folder was published (Unix seconds): its name starts with the publish time in ns."""
    stamp = folder.name.split("-", 1)[0]
    return int(stamp) / 1e9 if stamp.isdigit() else folder.stat().st_mtime


def prune_snapshots(data: DataDir, keep: Iterable[Path | None], now: float | None = None) -> None:
    """Remove the snapshot folders no reader should still need: not the current one, not the one before,
    and not one replaced (by the next folder's publish) less than ``keep_seconds()`` ago."""
    root = snapshot_root(data)
    kept = {p.resolve() for p in keep if p is not None}
    folders = sorted(f for f in root.iterdir() if f.is_dir() and not f.name.startswith(".")) if root.is_dir() else []
    since = (time.time() if now is None else now) - keep_seconds()
    for folder, successor in pairwise(folders):  # the newest folder has no successor
        if folder.resolve() not in kept and _published_at(successor) < since:
            shutil.rmtree(folder, ignore_errors=True)


def _own_folder(data: DataDir, recorded: str | None) -> Path | None:
    """The snapshot folder a warehouse recorded, if it names one of this data directory's (a copied
    warehouse may name another machine's or another directory's)."""
    if not recorded or Path(recorded).parent != snapshot_root(data):
        return None
    return Path(recorded)


def usable_snapshot(data: DataDir, recorded: str | None) -> Path | None:
    """The snapshot a warehouse recorded, found in this data directory's lake (by its name: a moved or
    copied data directory has it too, while the warehouse still names the old path); None when missing,
    or when it was made by the release before and links facts and staged only."""
    if not recorded:
        return None
    folder = snapshot_root(data) / Path(recorded).name
    return folder if (folder / ALL_LAYERS_MARKER).is_file() else None


def published_snapshot_name(data: DataDir) -> str | None:
    """The snapshot folder the warehouse published now records; None without a warehouse or a recorded folder.

    (ATTACHed from a private in-memory database: ``connect(path)`` would reuse an instance of the path this
    process already holds open, which may be a file a publish has since replaced.)"""
    if not data.warehouse.exists():
        return None
    try:
        with connect() as con:
            con.execute(f"ATTACH {sql_str(data.warehouse)} AS published (READ_ONLY)")
            con.execute("USE published")
            return recorded_snapshot(con)
    except duckdb.Error:
        return None  # a damaged warehouse: only a full rebuild reads the lake, as it is


def latest_snapshot(data: DataDir) -> Path | None:
    """The newest complete snapshot of the lake (for a warehouse deleted since it was published)."""
    root = snapshot_root(data)
    folders = [f for f in sorted(root.iterdir()) if not f.name.startswith(".")] if root.is_dir() else []
    complete = [f for f in folders if (f / ALL_LAYERS_MARKER).is_file()]
    return complete[-1] if complete else None


def recorded_snapshot(con: duckdb.DuckDBPyConnection) -> str | None:
    """The folder a warehouse's views read; None for a warehouse without one (an older release's)."""
    schema, name = SNAPSHOT_TABLE.split(".")
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = ? "
        "AND table_name = ?",
        [schema, name],
    ).fetchall()[0][0]
    if not exists:
        return None
    rows = con.execute(f"SELECT folder FROM {SNAPSHOT_TABLE}").fetchall()
    return rows[0][0] if rows else None


def restore_snapshot(data: DataDir) -> Path | None:
    """Link a pulled warehouse's snapshot folder again from the pulled lake, when it is missing here.

    Object storage holds no links, so a cache pulled from a URL has the lake but not the snapshot. The
    lake pushed after a successful run is what that run published (a run that fails is not pushed)."""
    folder = _own_folder(data, published_snapshot_name(data))
    if folder is None or folder.is_dir():
        return None  # another machine's path, or already here
    folder.parent.mkdir(parents=True, exist_ok=True)
    return build_snapshot(folder, snapshot_sources(data))
