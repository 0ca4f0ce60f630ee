"""``--mode incremental``: the cost of one day's run after short and long histories."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from pipelines.bench import runs
from pipelines.bench.measure import median_run
from pipelines.bench.runs import CREATED, describe_run, in_child, run_pipeline, say, warm_imports


def bench_incremental(
    root: Path,
    start: dt.date,
    histories: list[int],
    events_per_day: int,
    seed: int,
    *,
    repeats: int = 3,
    isolate: bool = True,
    core_only: bool = False,
) -> dict[str, Any]:
    """For each history length H: H days landed and staged, then the next day's run, timed.

    Every H times the SAME calendar day (``start`` + the longest H), so the runs compare equal
    work: the generator's days differ in volume (weekends run higher), and a Saturday after 7
    days against a Friday after 90 measured the calendar as much as the history. The day's run
    is timed ``repeats`` times from the same lake (restored from a copy between runs) and the
    median counts: one run varies by about ±5 %. The histories are built first and their timed runs
    alternate, in ABBA order (7, 90, 90, 7, 7, 90, ...): this host's speed drifts by tens of percent
    within minutes, and when every short-history run came before every long one, a slowdown between
    the two halves read as a ratio of 1.349 (every step slower, the marts and report too). So the
    process's high-water mark (``peak_rss_gib``) includes the histories' runs; ``peak_rss_gib_run`` is
    each day's run's own (sampled every 0.2 s).
    """
    import dagster as dg

    warm_imports()
    day = start + dt.timedelta(days=max(histories))
    out: dict[str, Any] = {"events_per_day": events_per_day, "day": day.isoformat(), "repeats": repeats, "runs": {}}
    lakes: dict[int, tuple[Path, Any, Path, float]] = {}
    for history in histories:
        data_dir = root / f"incr-{history}x{events_per_day}-s{seed}"
        shutil.rmtree(data_dir, ignore_errors=True)
        CREATED.append(data_dir)
        first = day - dt.timedelta(days=history)
        in_child(isolate, runs.run_generate, str(data_dir), first.isoformat(), history + 1, events_per_day, seed)
        hidden = _hide_arrivals_from(data_dir, day)  # the new day's files have not arrived yet
        instance = dg.DagsterInstance.ephemeral()  # one instance: the day's run sees the history's runs
        before = run_pipeline(data_dir, first, day - dt.timedelta(days=1), instance, core_only=core_only)
        _restore(hidden)
        lakes[history] = (data_dir, instance, _snapshot_outputs(data_dir), before["seconds"])
    samples: dict[int, list[dict[str, Any]]] = {h: [] for h in histories}
    out["order"] = alternating(histories, repeats)
    for history in out["order"]:
        data_dir, instance, snapshot, _ = lakes[history]
        if samples[history]:
            _rewind_outputs(data_dir, snapshot)
        samples[history].append(run_pipeline(data_dir, day, day, instance, core_only=core_only))
    for history in histories:
        data_dir, _, snapshot, history_seconds = lakes[history]
        shutil.rmtree(snapshot, ignore_errors=True)
        run = median_run(samples[history])
        run["samples_s"] = [r["seconds"] for r in samples[history]]
        run["history_days"] = history
        run["history_run_seconds"] = history_seconds
        out["runs"][str(history)] = run
        say(describe_run(f"{day} after {history} days of history (median of {repeats})", run))
        say(f"  samples [s]: {run['samples_s']}; this run's own peak RSS (sampled) {run['peak_rss_gib_run']:.2f} GiB")
    costs = [out["runs"][str(h)]["seconds"] for h in histories]
    cpus = [out["runs"][str(h)]["cpu_seconds"] for h in histories]
    out["ratio_longest_to_shortest"] = round(costs[-1] / costs[0], 3) if costs[0] else None
    out["cpu_ratio_longest_to_shortest"] = round(cpus[-1] / cpus[0], 3) if cpus[0] else None
    per_event = [out["runs"][str(h)]["seconds"] / max(1, out["runs"][str(h)]["events"]) for h in histories]
    out["per_event_ratio_longest_to_shortest"] = round(per_event[-1] / per_event[0], 3) if per_event[0] else None
    say(f"incremental: {dict(zip(histories, costs, strict=True))} s, ratio {out['ratio_longest_to_shortest']}")
    return out


def alternating(histories: list[int], repeats: int) -> list[int]:
    """The order of the timed runs: ``repeats`` rounds over the histories, every other round reversed."""
    order: list[int] = []
    for attempt in range(repeats):
        order += histories if attempt % 2 == 0 else histories[::-1]
    return order


# What a run writes into a data directory; everything else (raw, reference) it only reads.
_RUN_OUTPUTS = ("lake", "warehouse.duckdb", "reports")


def _snapshot_outputs(data_dir: Path) -> Path:
    """A copy of what a run writes, to time the same run again from the same state."""
    snapshot = data_dir.parent / f"{data_dir.name}.before-run"
    CREATED.append(snapshot)  # removed at the end even if a run fails in between
    _copy_outputs(data_dir, snapshot)
    return snapshot


def _rewind_outputs(data_dir: Path, snapshot: Path) -> None:
    """Put the data directory back as :func:`_snapshot_outputs` found it."""
    _copy_outputs(snapshot, data_dir)


def _copy_outputs(source_dir: Path, target_dir: Path) -> None:
    """Make ``target_dir``'s run outputs exactly ``source_dir``'s (absent ones removed)."""
    target_dir.mkdir(exist_ok=True)
    for name in _RUN_OUTPUTS:
        source, target = source_dir / name, target_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        elif source.exists():
            shutil.copy2(source, target)


def _hide_arrivals_from(data_dir: Path, first: dt.date) -> list[tuple[Path, Path]]:
    moved = []
    stash = data_dir / "_not_arrived_yet"
    for log_dir in sorted((data_dir / "raw").iterdir()):
        for folder in sorted(log_dir.iterdir()):
            if folder.name.startswith("dt=") and dt.date.fromisoformat(folder.name[3:]) >= first:
                target = stash / log_dir.name / folder.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(folder, target)
                moved.append((target, folder))
    return moved


def _restore(moved: list[tuple[Path, Path]]) -> None:
    for target, folder in moved:
        os.replace(target, folder)
