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
import shutil
import time
import uuid
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import duckdb

from pipelines.duck import connect
from pipelines.errors import CliError
from pipelines.lake import EVENT_DATE_FILE, DataDir, temp_sibling

SNAPSHOTS = "_published"
# The warehouse table that names the folder its views read.
SNAPSHOT_TABLE = "_publish.snapshot"
# The layers read through views (the marts and the quarantine are copied into tables instead).
VIEW_LAYERS = ("facts", "staged")
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


def _partition_files(base: Path) -> dict[str, Path]:
    """``layer/table/event_date=D.parquet`` (relative) → file, for the view layers under ``base``.

    (``os.scandir``, not ``Path.glob``: a lake of years holds thousands of these, listed on every publish.)"""
    out: dict[str, Path] = {}
    for layer in VIEW_LAYERS:
        layer_dir = base / layer
        if not layer_dir.is_dir():
            continue
        for table in sorted(e.name for e in os.scandir(layer_dir) if e.is_dir()):
            for name in sorted(e.name for e in os.scandir(layer_dir / table) if e.is_file()):
                if EVENT_DATE_FILE.fullmatch(name):
                    out[f"{layer}/{table}/{name}"] = layer_dir / table / name
    return out


def _event_date(rel: str) -> dt.date:
    match = EVENT_DATE_FILE.fullmatch(rel.rsplit("/", 1)[-1])
    assert match is not None
    return dt.date.fromisoformat(match.group(1))


def snapshot_sources(data: DataDir, previous: Path | None, event_dates: Iterable[dt.date] | None) -> dict[str, Path]:
    """What the next snapshot links: the lake's files of ``event_dates`` (all of them when None), and for
    the other dates what ``previous`` linked. Without a previous snapshot (the first publish, a warehouse
    from an older release, a pulled cache) the other dates take the lake's files too."""
    lake = _partition_files(data.lake)
    if event_dates is None or previous is None or not previous.is_dir():
        return lake
    dates = frozenset(event_dates)
    kept = {rel: f for rel, f in _partition_files(previous).items() if _event_date(rel) not in dates}
    fresh = {rel: f for rel, f in lake.items() if _event_date(rel) in dates}
    return dict(sorted({**kept, **fresh}.items()))


def build_snapshot(target: Path, sources: dict[str, Path]) -> Path | None:
    """Link ``sources`` into the folder ``target`` (made complete, then renamed into place); None when the
    file system cannot hard-link, and the views then read the lake's live files as before."""
    work = temp_sibling(target)
    try:
        work.mkdir()
        made: set[Path] = set()
        for rel, source in sources.items():
            link = work / rel
            if link.parent not in made:
                link.parent.mkdir(parents=True, exist_ok=True)
                made.add(link.parent)
            os.link(source, link)
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
    """The snapshot a warehouse recorded, if it is a folder of this data directory's lake that exists."""
    folder = _own_folder(data, recorded)
    return folder if folder is not None and folder.is_dir() else None


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
    if not data.warehouse.exists():
        return None
    with connect(str(data.warehouse), read_only=True) as con:
        folder = _own_folder(data, recorded_snapshot(con))
    if folder is None or folder.is_dir():
        return None  # another machine's path, or already here
    folder.parent.mkdir(parents=True, exist_ok=True)
    return build_snapshot(folder, snapshot_sources(data, None, None))
