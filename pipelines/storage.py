"""Data directories given as URLs: a plain path, ``file://``, or any fsspec URL (``memory://``, ``s3://``…).

Why a mirror and not fsspec all the way down: the core reads and writes with
DuckDB and polars at local-disk speed, renames files atomically and lets DuckDB
spill to local scratch space. None of that survives a network file system
abstraction, so the pipeline stays path-based and this module moves files at
the edges of a command:

- before ``revwh run``: pull ``reference/``, ``raw/``, ``lake/`` and
  ``warehouse.duckdb`` from the URL into a local cache directory, copying only
  objects that are new or changed since the last sync (size + ETag/mtime);
- after a successful run: push ``lake/``, ``reports/`` and ``warehouse.duckdb`` back, again
  only what changed, and delete remote lake objects the run replaced;
- before ``revwh sql``: pull ``warehouse.duckdb`` and ``lake/`` (the
  warehouse's quarantine/facts/staged views read the lake's Parquet).

The URL is the system of record, the cache a disposable copy: ``lake/`` must
travel both ways because the published warehouse is rebuilt from *all* mart
partitions in the lake, not only from the range of one run, and a run on
another machine must see what earlier runs wrote. Two commands on one cache
are serialised by a lock file; two machines writing the same URL at once are
not supported (last push wins), exactly as with a local directory.

The cache is ``$REVWH_CACHE_DIR/<hash of the URL>`` (default root
``~/.cache/revwh``). The published ``warehouse.duckdb`` holds views over the
lake by absolute path, so those views (not the marts tables) resolve only
where the cache path is the same as on the machine that published it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipelines.errors import CliError
from pipelines.lake import DataDir, temp_sibling
from pipelines.warehouse.snapshot import SNAPSHOTS, restore_snapshot

RUN_PULL = ("reference", "raw", "lake", "warehouse.duckdb")
RUN_PUSH = ("lake", "reports", "warehouse.duckdb")  # reports/: the HTML report the run renders
SQL_PULL = ("warehouse.duckdb", "lake")
CACHE_ENV = "REVWH_CACHE_DIR"
STATE_FILE = ".revwh-sync.json"
LOCK_FILE = ".revwh-sync.lock"
# Version stamps fsspec back ends report, most specific first (S3/GCS/Azure/local/memory).
STAMP_KEYS = ("ETag", "etag", "md5", "generation", "mtime", "LastModified", "last_modified", "updated", "created")


class StorageError(CliError):
    """The URL cannot be used (unknown scheme, missing back end, nothing there): one line, exit 2."""


@dataclass
class SyncStats:
    """What one pull or push did, for the one-line summary the CLI prints."""

    copied: int = 0
    bytes: int = 0
    unchanged: int = 0
    deleted: int = 0

    def __str__(self) -> str:
        return (
            f"{self.copied} files copied ({self.bytes / 1e6:.1f} MB), "
            f"{self.unchanged} unchanged, {self.deleted} deleted"
        )


def is_url(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and "://" in location


def default_cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "revwh")


def _skipped(rel: str) -> bool:
    """Temporary siblings (``.x.tmp-…``, ``.old-…``), sync bookkeeping and DuckDB scratch never travel, nor
    the published snapshot's hard links (object storage would hold a second copy of facts and staged)."""
    parts = rel.split("/")
    return any(p.startswith(".") or p in ("_tmp", SNAPSHOTS) for p in parts)


def _remote_stamp(info: dict[str, Any]) -> list[Any]:
    """[size, version stamp] of a remote object; a changed stamp or size means a changed object."""
    size = int(info.get("size") or 0)
    for k in STAMP_KEYS:
        value = info.get(k)
        if value is not None:
            # One back end may report a datetime from info() and a float from find() (memory://).
            return [size, repr(value.timestamp() if isinstance(value, dt.datetime) else value)]
    return [size, None]


def _local_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


@dataclass
class Location:
    """Where a command's data directory lives, and the local path the pipeline works in.

    For a plain path or a ``file://`` URL, ``local`` is the directory itself and
    pull/push do nothing. For any other URL, ``local`` is the cache directory.
    """

    given: str
    local: Path
    url: str | None = None
    fs: Any = None
    root: str = ""
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, location: str | os.PathLike[str], cache_root: Path | None = None) -> Location:
        if not is_url(location):
            return cls(given=str(location), local=Path(location))
        url = str(location)
        try:
            fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:  # unknown protocol, or its back end (s3fs…) not installed
            raise StorageError(f"cannot open {url}: {exc}") from exc
        if isinstance(fs, LocalFileSystem):
            return cls(given=url, local=Path(root))
        root = root.rstrip("/")
        canonical = fs.unstrip_protocol(root)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        cache = (cache_root or default_cache_root()) / digest
        return cls(given=url, local=cache, url=canonical, fs=fs, root=root)

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    # --- bookkeeping ---------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[Location]:
        """Exclusive use of the cache for one command (no-op for a local directory)."""
        if not self.is_remote:
            yield self
            return
        self.local.mkdir(parents=True, exist_ok=True)
        with open(self.local / LOCK_FILE, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load_state(self) -> dict[str, Any]:
        path = self.local / STATE_FILE
        try:
            self._state = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self._state = {}
        return self._state.setdefault("files", {})

    def _save_state(self) -> None:
        path = self.local / STATE_FILE
        tmp = temp_sibling(path)
        tmp.write_text(json.dumps(self._state, indent=0, sort_keys=True))
        os.replace(tmp, path)

    def _remote_path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _remote_files(self, part: str) -> dict[str, dict[str, Any]]:
        """{relative path: info} of every object under ``part`` (a folder or a single file)."""
        path = self._remote_path(part)
        if self.fs.isfile(path):
            return {part: self.fs.info(path)}
        if not self.fs.isdir(path):
            return {}
        out = {}
        prefix = self.fs._strip_protocol(self.root).rstrip("/") + "/"
        for key, info in self.fs.find(path, detail=True, withdirs=False).items():
            stripped = self.fs._strip_protocol(key)
            if not stripped.startswith(prefix):
                continue
            rel = stripped[len(prefix) :]
            if info.get("type", "file") == "file" and not _skipped(rel):
                out[rel] = info
        return out

    def _local_files(self, part: str) -> dict[str, Path]:
        path = self.local / part
        if path.is_file():
            return {part: path}
        if not path.is_dir():
            return {}
        out = {}
        for file in path.rglob("*"):
            rel = file.relative_to(self.local).as_posix()
            if file.is_file() and not _skipped(rel):
                out[rel] = file
        return out

    # --- the two directions ----------------------------------------------------
    def pull(self, parts: Iterable[str] = RUN_PULL) -> SyncStats:
        """Make the cache's ``parts`` equal to the URL's, copying only new or changed objects."""
        stats = SyncStats()
        if not self.is_remote:
            return stats
        try:
            exists = self.fs.exists(self.root)
        except Exception as exc:  # network/credential errors of the back end
            raise StorageError(f"cannot read {self.url}: {exc}") from exc
        if not exists:
            raise StorageError(f"{self.url} does not exist")
        files = self._load_state()
        try:
            for part in parts:
                remote = self._remote_files(part)
                local = self._local_files(part)
                for rel, info in remote.items():
                    target = self.local / rel
                    stamp = _remote_stamp(info)
                    known = files.get(rel)
                    if target.exists() and known == {"remote": stamp, "local": _local_stamp(target)}:
                        stats.unchanged += 1
                        continue
                    tmp = temp_sibling(target)
                    self.fs.get_file(self._remote_path(rel), str(tmp))
                    os.replace(tmp, target)
                    files[rel] = {"remote": stamp, "local": _local_stamp(target)}
                    stats.copied += 1
                    stats.bytes += stamp[0]
                for rel in local.keys() - remote.keys():
                    local[rel].unlink()
                    files.pop(rel, None)
                    stats.deleted += 1
                _prune_empty_dirs(self.local / part)
        finally:
            self._save_state()
        return stats

    def push(self, parts: Iterable[str] = RUN_PUSH) -> SyncStats:
        """Make the URL's ``parts`` equal to the cache's; the warehouse goes last so it never precedes its lake."""
        stats = SyncStats()
        if not self.is_remote:
            return stats
        files = self._load_state()
        ordered = sorted(parts, key=lambda p: p == "warehouse.duckdb")
        try:
            for part in ordered:
                remote = self._remote_files(part)
                local = self._local_files(part)
                for rel, path in sorted(local.items()):
                    stamp = _local_stamp(path)
                    info = remote.get(rel)
                    if info is not None and files.get(rel) == {"remote": _remote_stamp(info), "local": stamp}:
                        stats.unchanged += 1
                        continue
                    rpath = self._remote_path(rel)
                    self.fs.makedirs(rpath.rsplit("/", 1)[0], exist_ok=True)
                    self.fs.put_file(str(path), rpath)
                    files[rel] = {"remote": _remote_stamp(self.fs.info(rpath)), "local": stamp}
                    stats.copied += 1
                    stats.bytes += stamp[0]
                stale = sorted(remote.keys() - local.keys())
                if stale:
                    for rel in stale:  # one by one: fsspec's rm() takes `[`, `*`, `?` in a path for a glob
                        self.fs.rm_file(self._remote_path(rel))
                    for rel in stale:
                        files.pop(rel, None)
                    stats.deleted += len(stale)
        finally:
            self._save_state()
        return stats

    def require(self, rel: str, hint: str) -> None:
        """Fail with ``hint`` when the URL has no ``rel`` (checked before a long pull)."""
        if self.is_remote and not self.fs.exists(self._remote_path(rel)):
            raise StorageError(f"no {rel} at {self.url}: {hint}")


def _prune_empty_dirs(folder: Path) -> None:
    """Remove folders a pull emptied (object stores have no empty folders to mirror)."""
    if not folder.is_dir():
        return
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir()


def local_for_reading(location: str | os.PathLike[str]) -> Path:
    """``revwh sql``: the local data directory to query, after pulling the warehouse if it is remote."""
    loc = Location.parse(location)
    if loc.is_remote:
        loc.require("warehouse.duckdb", f"run `revwh run --data-dir {loc.given} ...` first")
        with loc.lock():
            loc.pull(SQL_PULL)
            restore_snapshot(DataDir.at(loc.local))
    return loc.local
