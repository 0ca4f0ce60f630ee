"""Where a benchmarked run spent its time and memory: stages from Dagster's step events, CPU and
peak RSS sampled in a thread, and the median of repeated runs. Pure arithmetic but the sampler."""

from __future__ import annotations

import bisect
import os
import time
from typing import Any

STAGE_OF_LAYER = {
    "landing": "landing",
    "staged": "staged",
    "facts": "facts",
    "marts": "marts",
    "quality": "quality",
    "warehouse": "publish",
    "reports": "reports",
}
STAGES = ("landing", "staged", "facts", "marts", "checks", "quality", "publish", "reports", "other")


def stage_of_steps(events: list[Any]) -> dict[str, str]:
    """The stage of every step: the layer of the asset it materialised (landing, staged, facts,
    marts, quality, warehouse → publish, reports), "checks" for a step that only evaluated
    asset checks, "other" otherwise."""
    layer: dict[str, str] = {}
    checks: set[str] = set()
    steps: set[str] = set()
    for event in events:
        step = event.step_key
        if step is None:
            continue
        steps.add(step)
        if event.event_type_value == "ASSET_MATERIALIZATION":
            layer.setdefault(step, event.asset_key.path[0])
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            checks.add(step)
    return {
        step: STAGE_OF_LAYER.get(layer[step], "other") if step in layer else "checks" if step in checks else "other"
        for step in steps
    }


def step_stages(events: list[Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per stage and per step from a Dagster run's events (Dagster's own
    STEP_SUCCESS / STEP_FAILURE durations; stages as :func:`stage_of_steps`)."""
    seconds: dict[str, float] = {}
    for event in events:
        if event.step_key is not None and event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            duration = getattr(event.event_specific_data, "duration_ms", None)
            if duration is not None:
                seconds[event.step_key] = duration / 1000.0
    stage_of = stage_of_steps(events)
    stages = dict.fromkeys(STAGES, 0.0)
    for step, s in seconds.items():
        stages[stage_of.get(step, "other")] += s
    return {k: round(v, 3) for k, v in stages.items()}, {k: round(v, 3) for k, v in sorted(seconds.items())}


def step_intervals(entries: list[Any]) -> dict[str, tuple[float, float]]:
    """(start, end) wall-clock timestamps of every step, from a run's event log entries."""
    starts: dict[str, float] = {}
    out: dict[str, tuple[float, float]] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            out[event.step_key] = (starts[event.step_key], entry.timestamp)
    return out


def peak_rss_by_stage(
    samples: list[tuple[float, int]], intervals: dict[str, tuple[float, float]], stage_of_step: dict[str, str]
) -> dict[str, float]:
    """Highest sampled RSS (GiB) while each stage's steps ran."""
    peaks: dict[str, float] = {}
    for step, (lo, hi) in intervals.items():
        inside = [rss for t, rss in samples if lo <= t <= hi]
        if inside:
            stage = stage_of_step.get(step, "other")
            peaks[stage] = max(peaks.get(stage, 0.0), round(max(inside) / 2**30, 3))
    return peaks


def cpu_by_stage(
    cpu: list[tuple[float, float]], intervals: dict[str, tuple[float, float]], stage_of_step: dict[str, str]
) -> dict[str, float]:
    """CPU seconds (all threads of the process) while each stage's steps ran, from samples of
    (wall clock, process CPU time); with the stage's wall time it shows how many cores it used."""
    times = [t for t, _ in cpu]
    out: dict[str, float] = {}
    for step, (lo, hi) in intervals.items():
        i, j = bisect.bisect_left(times, lo), bisect.bisect_right(times, hi) - 1
        if j > i:
            stage = stage_of_step.get(step, "other")
            out[stage] = round(out.get(stage, 0.0) + cpu[j][1] - cpu[i][1], 3)
    return out


class RssSampler:
    """Samples this process's resident set size (from /proc/self/statm) in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        self.interval, self.samples = interval, []
        self.cpu: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with open("/proc/self/statm") as f:
                    rss = int(f.read().split()[1]) * self._page
                self.samples.append((time.time(), rss))
                self.cpu.append((time.time(), time.process_time()))
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def summarize_run(
    *, wall: float, cpu: float, lines: int, stages: dict[str, float], validation: float, peak_rss: int
) -> dict[str, Any]:
    """Throughput and shares of one pipeline run (``peak_rss`` in bytes)."""
    steps = sum(stages.values())
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "cpu_utilisation": round(cpu / wall, 3) if wall else 0.0,
        "events": lines,
        "events_per_s": round(lines / wall) if wall else 0,
        "stages_s": stages,
        "steps_total_s": round(steps, 3),
        "dagster_overhead_s": round(max(0.0, wall - steps), 3),
        "validation_s": round(validation, 3),
        "validation_share": round(validation / wall, 4) if wall else 0.0,
        "peak_rss_gib": round(peak_rss / 2**30, 3),
    }


def lower_median(values: list[float]) -> float:
    """The median, or the lower of the two middle values for an even count (always a sample)."""
    return sorted(values)[(len(values) - 1) // 2]


def median_run(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The sample with the median wall time (:func:`lower_median`); a failed sample wins, so a
    failure is never hidden by a faster success."""
    failed = [r for r in samples if not r["success"]]
    if failed:
        return dict(failed[0])
    seconds = lower_median([r["seconds"] for r in samples])
    return dict(next(r for r in samples if r["seconds"] == seconds))
