"""One writer per data directory, and the clean-up of what killed writers left behind.

Two runs over one data directory interleave their lake writes and can leave the older
result last. The UI's run queue starts one run at a time, but a ``revwh run`` started
beside it (or two overlapping cron jobs) went unguarded. So every run (``revwh run`` here,
a run launched by the UI or the daemon in its executor, pipelines.locked_executor) and every
``revwh publish`` holds an exclusive ``flock`` on ``<data>/.revwh-writer.lock`` while it
works; a second writer waits for it, saying whom it waits for. The kernel releases the
lock when its holder dies (``kill -9`` included), so a dead run never blocks the next.

Whoever takes the lock is then the only local writer, so it sweeps the temporary files
that killed writers left behind (``.<name>.tmp-…`` and ``.<name>.old-…`` siblings, the
lake's ``_tmp`` scratch space). Only entries untouched for an hour go: a run orchestrated on
another machine does not hold this machine's lock (nor do the Celery workers that execute
steps), and a file being written keeps a fresh modification time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.lake import DataDir

LOCK_NAME = ".revwh-writer.lock"
SWEPT_NAME = ".revwh-swept"  # its modification time says when the last sweep walked the directory
# lake.temp_sibling and lake.replace_dir name their files so; DuckDB adds ".wal" to a database's
TEMP_NAME = re.compile(r"^\..+\.(tmp|old)-[0-9a-f]{8}(\.wal)?$")
SCRATCH = ("lake", "_tmp")
PRODUCER_DIRS = frozenset({"raw", "reference"})  # written by the apps, never swept
STALE_AFTER_SECONDS = 3600.0
WAIT_NOTE_EVERY_SECONDS = 60.0

_held: dict[Path, int] = {}  # lock files this process holds, with their nesting depth
_held_guard = threading.Lock()


@dataclass(frozen=True)
class Swept:
    """What the sweep removed: paths (relative to the data directory) and their bytes."""

    paths: tuple[str, ...]
    bytes: int

    def __str__(self) -> str:
        return f"{len(self.paths)} leftover temporary file(s), {self.bytes / 1e6:.1f} MB"

    def note(self) -> str:
        """The line ``revwh run`` and a locked Dagster run log about it."""
        return f"removed {self} of killed runs"


def _holder_text(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another writer"
    return f"{info.get('holder', 'a writer')} (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')})"


@contextlib.contextmanager
def writer_lock(
    data: DataDir,
    holder: str,
    *,
    on_wait: Callable[[str], None] | None = None,
    on_sweep: Callable[[Swept], None] | None = None,
    poll_seconds: float = 0.5,
) -> Iterator[None]:
    """Hold the data directory's writer lock for the body; wait while another process holds it.

    Re-entrant within a process (a caller that holds it can run code that takes it again).
    A directory that does not exist is not locked: there is nothing to protect, and the
    caller's own checks say what is wrong.
    """
    if not data.root.is_dir():
        yield
        return
    path = data.root / LOCK_NAME
    with _held_guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[path] -= 1
        return
    handle = open(path, "a+")  # noqa: SIM115 - held until the body ends
    try:
        _acquire(handle, path, on_wait, poll_seconds)
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        handle.write(json.dumps({"holder": holder, "pid": os.getpid(), "host": socket.gethostname(), "since": since}))
        handle.flush()
        with _held_guard:
            _held[path] = 1
        try:
            swept = sweep_if_due(data)
            if swept.paths and on_sweep is not None:
                on_sweep(swept)
            yield
        finally:
            with _held_guard:
                del _held[path]
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _acquire(handle, path: Path, on_wait: Callable[[str], None] | None, poll_seconds: float) -> None:
    """Take the lock, polling (so Ctrl-C and Dagster's termination stay prompt) and noting the wait."""
    began = noted = None
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if began is None:
            began = now
        if on_wait is not None and (noted is None or now - noted >= WAIT_NOTE_EVERY_SECONDS):
            waited = f" (waited {now - began:.0f}s)" if noted is not None else ""
            on_wait(f"waiting for {_holder_text(path)} to finish writing {path.parent}{waited}")
            noted = now
        time.sleep(poll_seconds)


def _newest_mtime(path: Path) -> float:
    """The latest modification time in a file or a directory tree (a spill folder in use is fresh)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return path.lstat().st_size


def _candidates(data: DataDir) -> Iterator[Path]:
    """Temporary siblings anywhere the pipeline writes, and every entry of the scratch space."""
    scratch = data.root.joinpath(*SCRATCH)
    for folder, dirs, files in os.walk(data.root):
        here = Path(folder)
        if here == data.root:
            dirs[:] = [d for d in dirs if d not in PRODUCER_DIRS]
        if here == scratch:
            yield from (here / name for name in dirs + files)
            dirs[:] = []
            continue
        for name in list(dirs):
            if TEMP_NAME.match(name):
                dirs.remove(name)
                yield here / name
        yield from (here / name for name in files if TEMP_NAME.match(name))


def sweep_if_due(data: DataDir) -> Swept:
    """Sweep unless a sweep walked the directory within the hour: nothing it could remove has aged since
    (a walk of a lake of years is a fraction of a second, but a daily run should not grow with history)."""
    stamp = data.root / SWEPT_NAME
    try:
        due = stamp.stat().st_mtime < time.time() - STALE_AFTER_SECONDS
    except FileNotFoundError:
        due = True
    if not due:
        return Swept((), 0)
    swept = sweep_leftovers(data)
    stamp.touch()
    return swept


def sweep_leftovers(data: DataDir, *, stale_after: float = STALE_AFTER_SECONDS) -> Swept:
    """Remove temporary files older than ``stale_after`` seconds; call it holding the writer lock."""
    cutoff = time.time() - stale_after
    removed: list[str] = []
    total = 0
    for path in _candidates(data):
        try:
            if _newest_mtime(path) > cutoff:
                continue
            size = _size(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:  # gone meanwhile, or not ours to remove (another user's): never fails the run
            continue
        removed.append(str(path.relative_to(data.root)))
        total += size
    return Swept(tuple(sorted(removed)), total)
