"""generate_dataset: reference tables + raw logs for a date range, chunk by chunk.

Work is split into (day, log, chunk) tasks with their own random streams; two threads
build chunks (numpy and polars release the GIL) while the caller's thread writes them in
task order, so output is byte-identical however the threads interleave, and memory stays
bounded by a few chunks whatever the day size.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.contract import LOGS, PARTITIONS_START
from pipelines.generate.dirt import CODE, DirtPlan, apply_text_dirt, apply_value_dirt
from pipelines.generate.encode import Lookups, build_lookups, encode
from pipelines.generate.events import GENERATORS, Context
from pipelines.generate.options import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DIRT_RATE,
    DEFAULT_LATE_RATE,
    DIRT_KINDS,
    MAX_EVENTS_PER_DAY,
    ROW_KINDS,
)
from pipelines.generate.population import build_population
from pipelines.generate.reference import write_reference
from pipelines.generate.rng import rng_for
from pipelines.generate.timing import EPOCH, daily_counts, epoch_day
from pipelines.generate.writer import RawWriter, clear_raw, deflate, text_of

ID_PREFIX = {"impressions": "imp", "coin_purchases": "cp", "gifts": "gift", "orders": "ord", "fund_payouts": "fund"}


@dataclass
class GenerateStats:
    """What a run wrote: events per log, lines per log (copies, blanks included), dirt."""

    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOGS, 0))
    lines: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOGS, 0))
    dirt: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRT_KINDS, 0))
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    @property
    def total_lines(self) -> int:
        return sum(self.lines.values())

    @property
    def events_per_second(self) -> float:
        return self.total_events / self.seconds if self.seconds > 0 else 0.0

    def summary(self, data_dir: Path) -> str:
        dirty = sum(self.dirt.values())
        return (
            f"generated {self.total_events:,} events ({self.total_lines:,} lines, {dirty:,} dirty, "
            f"{self.files} files, {self.bytes / 1e6:,.1f} MB of NDJSON) in {self.seconds:.2f} s "
            f"= {self.events_per_second:,.0f} events/s into {data_dir}"
        )


@dataclass
class _Chunk:
    log: str
    producer: int  # day index of the event date the chunk was generated for
    parts: list[tuple[int, memoryview, bytes | None]]  # (arrival epoch day, NDJSON text, deflated)
    events: int
    lines: int
    dirt: dict[str, int]


@dataclass(frozen=True)
class _Task:
    log: str
    day_index: int
    chunk: int
    ctr0: int
    n: int


def _distinct_days(arrival: np.ndarray) -> np.ndarray:
    """The sorted distinct arrival days of a chunk: a count over its few days (the on-time one and up to
    a week of late ones), 0.3 ms against 3 ms for np.unique's sort of 100k rows."""
    if not arrival.size:
        return arrival
    first = int(arrival.min())
    return np.flatnonzero(np.bincount(arrival - first)) + first


class _Producer:
    """Builds one chunk: clean events, dirt, lines, split by arrival day."""

    def __init__(self, ctx: Context, lk: Lookups, plan: DirtPlan, start_day: int, compress: bool) -> None:
        self.ctx, self.lk, self.plan, self.start_day, self.compress = ctx, lk, plan, start_day, compress

    def __call__(self, task: _Task) -> _Chunk:
        day = self.start_day + task.day_index
        rng = rng_for(self.ctx.seed, "events", day, LOGS.index(task.log), task.chunk)
        cols = GENERATORS[task.log](self.ctx, rng, day, task.ctr0, task.n)
        n_events = len(cols["ctr"])
        kind, blank = self.plan.assign(task.log, rng, n_events)
        dirt = {k: int(np.count_nonzero(kind == CODE[k])) for k in ROW_KINDS} | {"blank_line": int(blank.sum())}
        cols, kind = apply_value_dirt(task.log, cols, kind, rng, self.ctx, self.lk)
        day8 = (EPOCH + dt.timedelta(days=day)).strftime("%Y%m%d")
        lines = encode(task.log, cols, self.lk, f"{ID_PREFIX[task.log]}-{day8}-", day8, touched=kind != 0)
        lines, arrival = apply_text_dirt(task.log, lines, cols, kind, blank, rng)
        days = _distinct_days(arrival)
        if len(days) == 1:
            texts = [(int(days[0]), text_of(lines))]
        else:
            texts = [(int(a), text_of(lines.filter(pl.Series(arrival == a)))) for a in days]
        parts = [(a, text, deflate(text) if self.compress else None) for a, text in texts]
        return _Chunk(task.log, task.day_index, parts, n_events, len(lines) + dirt["blank_line"], dirt)


def _tasks(ctx: Context, start: dt.date, days: int, events_per_day: int, chunk_size: int) -> Iterator[_Task]:
    for d in range(days):
        day = start + dt.timedelta(days=d)
        counts = daily_counts(day, events_per_day) | {"fund_payouts": len(ctx.fund_creators(epoch_day(day)))}
        for log in LOGS:
            for chunk, ctr0 in enumerate(range(0, counts[log], chunk_size)):
                yield _Task(log, d, chunk, ctr0, min(chunk_size, counts[log] - ctr0))


def _prepare_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"{data_dir} exists and is not a directory") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"{data_dir}: a parent of it is a file, not a directory") from None
    if not data_dir.is_dir():
        raise NotADirectoryError(f"{data_dir} is not a directory")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise PermissionError(f"{data_dir} is not writable")


def generate_dataset(
    data_dir: Path,
    start: dt.date,
    days: int,
    events_per_day: int,
    seed: int = 0,
    *,
    compress: bool = False,
    dirt_rate: float = DEFAULT_DIRT_RATE,
    dirt_rates: dict[str, float] | None = None,
    late_rate: float = DEFAULT_LATE_RATE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    threads: int = 2,
) -> GenerateStats:
    """Write a complete data directory (SPEC §1) for event dates start..start+days-1.

    `dirt_rate` is the share of events spoiled by each dirt kind; `dirt_rates` overrides it
    per kind (see dirt.DIRT_KINDS); all zero gives a clean dataset that every rule accepts.
    Raises ValueError for bad arguments and OSError for an unusable directory.
    """
    if days <= 0 or events_per_day <= 0 or chunk_size <= 0:
        raise ValueError("days, events_per_day and chunk_size must be greater than 0")
    if events_per_day > MAX_EVENTS_PER_DAY:
        raise ValueError(f"events_per_day must be at most {MAX_EVENTS_PER_DAY:,} (9-digit event counters)")
    if seed < 0:
        raise ValueError("seed must be 0 or more")
    if not 0.0 <= late_rate <= 1.0:
        raise ValueError(f"late_rate must be between 0 and 1, got {late_rate}")
    if start < dt.date.fromisoformat(PARTITIONS_START):
        raise ValueError(f"start must be on or after {PARTITIONS_START}, the first daily partition")
    plan = DirtPlan.build(dirt_rate, dirt_rates)
    began = time.perf_counter()
    data_dir = Path(data_dir)
    _prepare_dir(data_dir)
    ref = write_reference(data_dir, start, days, seed)
    clear_raw(data_dir)
    pop = build_population(ref, events_per_day, seed)
    first, last = epoch_day(start), epoch_day(start) + days - 1
    ctx = Context(ref=ref, pop=pop, seed=seed, late_rate=late_rate, last_day=last)
    max_per_day = 2 * events_per_day + len(pop.fund_creators)  # weekday peaks, refunds: ample
    produce = _Producer(ctx, build_lookups(ref, pop, first, last, max_per_day), plan, first, compress)

    stats = GenerateStats()
    with RawWriter(data_dir, compress) as writer, ThreadPoolExecutor(max(1, threads)) as pool:
        pending: collections.deque[Future[_Chunk]] = collections.deque()
        current_day = 0

        def drain_one() -> None:
            nonlocal current_day
            chunk = pending.popleft().result()
            if chunk.producer != current_day:
                writer.close_producer(current_day)
                current_day = chunk.producer
            for arr, text, deflated in chunk.parts:
                writer.write(chunk.log, EPOCH + dt.timedelta(days=arr), chunk.producer, text, deflated)
            stats.events[chunk.log] += chunk.events
            stats.lines[chunk.log] += chunk.lines
            for k, v in chunk.dirt.items():
                stats.dirt[k] += v

        for task in _tasks(ctx, start, days, events_per_day, chunk_size):
            pending.append(pool.submit(produce, task))
            if len(pending) > max(1, threads):
                drain_one()
        while pending:
            drain_one()
    stats.files, stats.bytes = writer.files, writer.bytes
    stats.seconds = time.perf_counter() - began
    return stats
