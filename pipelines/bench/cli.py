"""The command line of ``python -m pipelines.bench``: modes, goals, the JSON file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import pipelines.bench
from pipelines.bench.full import bench_full
from pipelines.bench.incremental import bench_incremental
from pipelines.bench.runs import CREATED, say

GOALS = {
    "events_per_s": 1_000_000,
    "ratio_pipeline_to_bare": 3.0,
    "peak_rss_gib_30m_day": 4.0,
    "validation_share": 0.15,
    "incremental_ratio": 1.15,
    "generator_events_per_s": 1_000_000,
}


def machine() -> dict[str, Any]:
    import duckdb
    import polars as pl

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": pl.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """Each goal next to the measured value (None when the mode did not measure it)."""
    full = results.get("full") or {}
    pipeline = full.get("pipeline") or {}
    incremental = results.get("incremental") or {}
    big = full.get("days") == 1 and full.get("events_per_day", 0) >= 30_000_000
    return {
        "events_per_s": [pipeline.get("events_per_s"), f">= {GOALS['events_per_s']:,}"],
        "ratio_pipeline_to_bare": [full.get("ratio_pipeline_to_bare"), f"<= {GOALS['ratio_pipeline_to_bare']}"],
        "peak_rss_gib_30m_day": [pipeline.get("peak_rss_gib") if big else None, f"<= {GOALS['peak_rss_gib_30m_day']}"],
        "validation_share": [pipeline.get("validation_share"), f"<= {GOALS['validation_share']}"],
        "incremental_ratio": [incremental.get("ratio_longest_to_shortest"), f"<= {GOALS['incremental_ratio']}"],
        "generator_events_per_s": [
            (full.get("generator") or {}).get("events_per_s"),
            f">= {GOALS['generator_events_per_s']:,}",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.bench", description=(pipelines.bench.__doc__ or "").split("\n\n")[0]
    )
    p.add_argument("--mode", choices=("full", "incremental", "all"), default="full")
    p.add_argument("--data-root", type=Path, default=Path("data/bench"), help="where generated data goes")
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 3, 1))
    p.add_argument("--days", type=int, default=int(os.environ.get("BENCH_DAYS", 5)))
    p.add_argument("--events-per-day", type=int, default=int(os.environ.get("BENCH_EVENTS", 3_000_000)))
    p.add_argument("--histories", default="7,90", help="incremental mode: history lengths, comma-separated")
    p.add_argument(
        "--incremental-events-per-day", type=int, default=int(os.environ.get("BENCH_INCREMENTAL_EVENTS", 100_000))
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=int(os.environ.get("BENCH_REPEATS", 3)),
        help="time the bare statement (full mode) and each one-day run (incremental mode, from the same "
        "state) this many times; the median counts",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--reuse", action="store_true", help="full mode: reuse generated data of the same size")
    p.add_argument("--keep", action="store_true", help="keep the generated data (default: delete at the end)")
    p.add_argument(
        "--core-only",
        action="store_true",
        help="run only the core layers and their checks (no KPI marts, KPI checks or reports)",
    )
    p.add_argument(
        "--ruled",
        action="store_true",
        help="full mode: also time the contract's rules as one DuckDB statement that writes nothing "
        "(pipelines.bench.ruled), to split the ratio into rules and warehouse; needs memory (11 GB for 5 x 3M)",
    )
    p.add_argument(
        "--compress",
        action="store_true",
        help="full mode: generate .jsonl.gz logs (the pipeline and the bare statement inflate them; landing "
        "also checks each gzip member's CRC-32)",
    )
    p.add_argument("--out", type=Path, default=Path("bench-results.json"))
    args = p.parse_args(argv)
    if args.days < 1 or args.events_per_day < 1:
        p.error("--days and --events-per-day must be at least 1")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    try:
        histories = sorted({int(h) for h in args.histories.split(",") if h.strip()})
    except ValueError:
        p.error(f"--histories must be whole numbers separated by commas, not {args.histories!r}")
    if not histories or histories[0] < 1:
        p.error("--histories needs at least one history length, each of 1 day or more")

    root = args.data_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine()}
    results["command"] = " ".join(["python -m pipelines.bench", *(argv if argv is not None else sys.argv[1:])])
    try:
        if args.mode in ("full", "all"):
            results["full"] = bench_full(
                root,
                args.start,
                args.days,
                args.events_per_day,
                args.seed,
                reuse=args.reuse,
                core_only=args.core_only,
                repeats=args.repeats,
                ruled=args.ruled,
                compress=args.compress,
            )
        if args.mode in ("incremental", "all"):
            results["incremental"] = bench_incremental(
                root,
                args.start,
                histories,
                args.incremental_events_per_day,
                args.seed,
                repeats=args.repeats,
                core_only=args.core_only,
            )
    finally:
        if not args.keep:  # only what this invocation generated
            for child in CREATED:
                shutil.rmtree(child, ignore_errors=True)
    results["goals"] = goals(results)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    for name, (value, goal) in results["goals"].items():
        say(f"goal {name}: measured {value} (goal {goal})")
    say(f"wrote {args.out}")
    failed = [r for r in (results.get("full", {}).get("pipeline"),) if r and not r["success"]]
    failed += [r for r in results.get("incremental", {}).get("runs", {}).values() if not r["success"]]
    return 1 if failed else 0
