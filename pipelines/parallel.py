"""Threads inside a step: a multi-day step works on several days at once.

DuckDB, polars and pyarrow release the GIL while they compute, so two threads keep both
cores busy where one step alone would use one (rule 5–9 bookkeeping, pandera, Parquet
writes). Order of results is the order of the inputs, whatever the scheduling.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def step_threads() -> int:
    """Threads a step may use: $REVWH_STEP_THREADS, else the number of CPUs (at most 2 are useful here)."""
    value = os.environ.get("REVWH_STEP_THREADS")
    if value:
        return max(1, int(value))
    return max(1, min(2, os.cpu_count() or 1))


def thread_map(fn: Callable[[T], R], items: Sequence[T], threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``threads`` threads; the first exception is raised."""
    threads = step_threads() if threads is None else threads
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="revwh-step") as pool:
        return list(pool.map(fn, items))


def split(items: Sequence[T], parts: int) -> list[list[T]]:
    """``items`` cut into at most ``parts`` contiguous, nearly equal, non-empty runs."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return [p for p in out if p]
