"""Where every layer lives inside a data directory.

The lake (Parquet under ``<data>/lake``) is the system of record for each
layer; ``warehouse.duckdb`` is a small catalogue published from it (see
``pipelines.warehouse.publish``). Keeping the layout in one place lets the
assets, the checks, the tests and the CLI agree on paths.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

# The name of a file of one event date (staged, facts, marts: see DataDir below); group 1 is the date.
EVENT_DATE_FILE = re.compile(r"event_date=(\d{4}-\d\d-\d\d)\.parquet")


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> DataDir:
        return cls(Path(path).resolve())

    # --- inputs (SPEC §1) -------------------------------------------------
    @property
    def reference(self) -> Path:
        return self.root / "reference"

    def raw_partition(self, log: str, arrival: dt.date) -> Path:
        return self.root / "raw" / log / f"dt={arrival.isoformat()}"

    # --- layers ----------------------------------------------------------------
    @property
    def lake(self) -> Path:
        return self.root / "lake"

    def landing_partition(self, log: str, arrival: dt.date) -> Path:
        """Accepted copies of one arrival day, as ``event_date=E/*.parquet``."""
        return self.lake / "landing" / log / f"dt={arrival.isoformat()}"

    def staged_file(self, log: str, event_date: dt.date) -> Path:
        return self.lake / "staged" / log / f"event_date={event_date.isoformat()}.parquet"

    def facts_file(self, event_date: dt.date) -> Path:
        return self.lake / "facts" / "revenue_events" / f"event_date={event_date.isoformat()}.parquet"

    def mart_file(self, mart: str, event_date: dt.date) -> Path:
        return self.lake / "marts" / mart / f"event_date={event_date.isoformat()}.parquet"

    def quarantine_file(self, stage: str, log: str, day: dt.date) -> Path:
        """Rejected copies written by ``stage`` (landing or staged) for one partition."""
        return self.lake / "quarantine" / stage / log / f"{day.isoformat()}.parquet"

    def manifest_file(self, layer: str, log: str, day: dt.date) -> Path:
        return self.lake / "_manifests" / layer / log / f"{day.isoformat()}.json"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def scratch(self) -> Path:
        """Spill space for DuckDB and temporary outputs (same file system as the lake)."""
        path = self.lake / "_tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path


def temp_sibling(path: Path) -> Path:
    """A unique temporary path next to ``path`` so that ``os.replace`` is atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


def replace_dir(tmp: Path, final: Path) -> None:
    """Swap a freshly written directory into place (old one removed afterwards)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# copy_file_range cannot serve these (old kernel, another file system, a special file): copy bytes instead
_NO_COPY_FILE_RANGE = {errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}


def clone_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to a new file ``dst``, sharing blocks where the file system can.

    ``os.copy_file_range`` lets the kernel copy in place of Python; on XFS and btrfs it
    clones (reflinks) the extents, so a multi-gigabyte file "copies" in milliseconds and
    takes no space until one side is written. Elsewhere (ext4, other file systems, no such
    call) it falls back to an ordinary copy.
    """
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            remaining = os.fstat(fin.fileno()).st_size
            while remaining > 0:
                done = os.copy_file_range(fin.fileno(), fout.fileno(), remaining)
                if done == 0:
                    break
                remaining -= done
        if remaining == 0:
            return
    except OSError as exc:
        if exc.errno not in _NO_COPY_FILE_RANGE:
            dst.unlink(missing_ok=True)  # no half copy left behind (the disk may be full)
            raise
    shutil.copyfile(src, dst)


def sub_folders(folder: str) -> list[str]:
    """The names of ``folder``'s sub-folders, sorted; none when it is missing.

    (``os.scandir`` over plain strings, here and in :func:`files_with_suffix`: a publish lists a file per
    day and table of the whole history, and building a ``Path`` for each cost more than the listing.)"""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def files_with_suffix(folder: str, suffix: str | tuple[str, ...]) -> list[os.DirEntry]:
    """The files of ``folder`` whose names end with ``suffix`` (or one of several), sorted by name; none when
    it is missing. A directory entry knows a regular file without a ``stat``."""
    try:
        with os.scandir(folder) as entries:
            found = [e for e in entries if e.name.endswith(suffix) and _is_file(e)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(found, key=lambda e: e.name)


def _is_file(entry: os.DirEntry) -> bool:
    """A regular file, or a link to one; a link in a loop (which ``is_file`` raises for) is not."""
    try:
        return entry.is_file()
    except OSError:
        return False


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Inclusive list of days from start to end."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def parquet_chunks(path: Path, rows: int = 1_048_576):
    """A Parquet file as polars frames of consecutive row groups, up to ``rows`` rows each
    (a file larger than memory never loads whole; a small one is read in one go). Grouping
    keeps a file of many small row groups from costing one call of the consumer per group."""
    import polars as pl
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    if meta.num_rows <= rows:
        yield pl.read_parquet(path, glob=False)
        return
    offset, size = 0, 0
    for i in range(meta.num_row_groups):
        n = meta.row_group(i).num_rows
        if size and size + n > rows:
            yield pl.scan_parquet(path, glob=False).slice(offset, size).collect()
            offset, size = offset + size, 0
        size += n
    if size:
        yield pl.scan_parquet(path, glob=False).slice(offset, size).collect()
