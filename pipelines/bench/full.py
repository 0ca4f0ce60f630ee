"""``--mode full``: generate, run the whole pipeline, time the bare (and, asked, the ruled)
statement on the same files, and put the ratios side by side."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from pipelines.bench import runs
from pipelines.bench.bare import run_bare, stream_differences
from pipelines.bench.measure import lower_median
from pipelines.bench.runs import CREATED, describe_run, in_child, marts_by_stream, run_pipeline, say, warm_imports


def bench_full(
    root: Path,
    start: dt.date,
    days: int,
    events_per_day: int,
    seed: int,
    *,
    isolate: bool = True,
    reuse: bool = False,
    core_only: bool = False,
    repeats: int = 3,
    ruled: bool = False,
    compress: bool = False,
) -> dict[str, Any]:
    """Generate, run the pipeline, run the bare statement (``repeats`` times, the median counts)
    and, with ``ruled``, the ruled statement (``pipelines.bench.ruled``, once); one JSON-able dict.
    ``compress``: the logs are written as .jsonl.gz, as platforms usually ship them (both the pipeline
    and the bare statement inflate them)."""
    data_dir = root / f"full-{days}x{events_per_day}-s{seed}{'-gz' if compress else ''}"
    end = start + dt.timedelta(days=days - 1)
    generator = None
    if not (reuse and (data_dir / "reference" / "countries.csv").exists()):
        shutil.rmtree(data_dir, ignore_errors=True)
        CREATED.append(data_dir)
        generator = in_child(
            isolate, runs.run_generate, str(data_dir), start.isoformat(), days, events_per_day, seed, compress
        )
        say(
            f"generator: {generator['events']:,} events in {generator['seconds']} s = "
            f"{generator['events_per_s']:,} events/s"
        )
    shutil.rmtree(data_dir / "lake", ignore_errors=True)
    (data_dir / "warehouse.duckdb").unlink(missing_ok=True)
    import_s = warm_imports()
    # One timing of the bare statement before the pipeline, the others after it: this host's speed drifts
    # by tens of percent within minutes, and the median of samples on both sides brackets the pipeline's.
    bare_first = (
        in_child(isolate, run_bare, str(data_dir), start.isoformat(), end.isoformat(), 1) if repeats > 1 else None
    )
    load0 = os.getloadavg()
    pipeline = run_pipeline(data_dir, start, end, core_only=core_only)
    pipeline["import_seconds"] = import_s
    pipeline["core_only"] = core_only
    say(describe_run("pipeline", pipeline))
    after = repeats - (1 if bare_first else 0)
    bare = in_child(isolate, run_bare, str(data_dir), start.isoformat(), end.isoformat(), after)
    if bare_first is not None:
        bare["samples_s"] = bare_first["samples_s"] + bare["samples_s"]
        bare["seconds"] = lower_median(bare["samples_s"])
    bare["samples_before_pipeline"] = 1 if bare_first else 0
    bare["events_per_s"] = round(pipeline["events"] / bare["seconds"]) if bare["seconds"] else 0
    say(
        f"bare DuckDB statement: {bare['seconds']} s = {bare['events_per_s']:,} events/s "
        f"(median of {bare['samples_s']}{', the first timed before the pipeline' if bare_first else ''})"
    )
    got = {(r[0], r[1]): tuple(r[2:]) for r in bare.pop("rows")}
    marts = marts_by_stream(data_dir) if pipeline["success"] else {}
    agreement = stream_differences(got, marts) if marts else None
    ratio = round(pipeline["seconds"] / bare["seconds"], 2) if bare["seconds"] else None
    say(f"ratio pipeline / bare DuckDB: {ratio}")
    ruled_result = _ruled(data_dir, start, end, pipeline, bare, marts, isolate) if ruled else None
    return {
        "data_dir": str(data_dir),
        "start": start.isoformat(),
        "days": days,
        "events_per_day": events_per_day,
        "compressed": compress,
        "generator": generator,
        "pipeline": pipeline,
        "bare_duckdb": bare,
        "ratio_pipeline_to_bare": ratio,
        "bare_vs_marts": agreement,
        "ruled_duckdb": ruled_result,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def _ruled(
    data_dir: Path,
    start: dt.date,
    end: dt.date,
    pipeline: dict[str, Any],
    bare: dict[str, Any],
    marts: dict[tuple[str, str], tuple],
    isolate: bool,
) -> dict[str, Any]:
    """Time the ruled statement and split the pipeline / bare ratio into ruled / bare (what the
    contract's rules cost in the engine) × pipeline / ruled (what the warehouse adds)."""
    from pipelines.bench.ruled import run_ruled

    ruled = in_child(isolate, run_ruled, str(data_dir), start.isoformat(), end.isoformat())
    got = {(r[0], r[1]): tuple(r[2:]) for r in ruled.pop("rows")}
    ruled["vs_marts"] = stream_differences(got, marts) if marts else None
    ruled["event_counts_equal"] = bool(marts) and {k: v[4] for k, v in got.items()} == {
        k: v[4] for k, v in marts.items()
    }
    seconds = ruled["seconds"] or None
    ruled["ratio_ruled_to_bare"] = round(seconds / bare["seconds"], 2) if seconds and bare["seconds"] else None
    ruled["ratio_pipeline_to_ruled"] = round(pipeline["seconds"] / seconds, 2) if seconds else None
    say(
        f"ruled DuckDB statement (rules 1-9, writes nothing): {ruled['seconds']} s (cpu {ruled['cpu_seconds']} s); "
        f"ruled / bare {ruled['ratio_ruled_to_bare']}, pipeline / ruled {ruled['ratio_pipeline_to_ruled']}; "
        f"equals the marts: {ruled['event_counts_equal']} (max relative difference "
        f"{(ruled['vs_marts'] or {}).get('max_relative_difference')})"
    )
    return ruled
