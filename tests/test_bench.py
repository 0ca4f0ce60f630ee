"""The benchmark's arithmetic on a tiny dataset (no timing assertions: numbers vary by machine).

On clean generated data (no dirt) the bare DuckDB statement and the pipeline's marts must agree
to the cent: that checks the bare statement's revenue rules, so its time is a fair ceiling.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines import bench
from pipelines.generate import generate_dataset, markets

START = dt.date(2025, 3, 1)


@pytest.mark.parametrize("compress", [False, True], ids=["jsonl", "jsonl.gz"])
def test_bench_full_on_a_tiny_clean_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    def clean(data_dir: str, start: str, days: int, events_per_day: int, seed: int, compress: bool) -> dict:
        stats = generate_dataset(
            Path(data_dir), dt.date.fromisoformat(start), days, events_per_day, seed, dirt_rate=0, compress=compress
        )
        return {"events": stats.total_events, "seconds": stats.seconds, "events_per_s": 1}

    monkeypatch.setattr(bench.runs, "run_generate", clean)
    result = bench.bench_full(tmp_path, START, 2, 1500, 3, isolate=False, compress=compress)
    suffixes = {p.name.split(".", 1)[1] for p in Path(result["data_dir"]).glob("raw/*/dt=*/*")}
    assert suffixes == {"jsonl.gz" if compress else "jsonl"} and result["compressed"] is compress
    pipeline = result["pipeline"]
    assert pipeline["success"]
    assert result["generator"]["events"] == pipeline["events"]  # clean data: one raw line per event
    assert pipeline["events_per_s"] == pytest.approx(pipeline["events"] / pipeline["seconds"], rel=1e-2)
    bare = result["bare_duckdb"]
    assert len(bare["samples_s"]) == 3 and bare["seconds"] == sorted(bare["samples_s"])[1]  # the median
    assert bare["samples_before_pipeline"] == 1  # one timing on each side of the pipeline at least
    assert result["ratio_pipeline_to_bare"] == pytest.approx(
        pipeline["seconds"] / result["bare_duckdb"]["seconds"], rel=1e-2
    )
    stages = pipeline["stages_s"]
    assert set(stages) == set(bench.STAGES)
    assert stages["landing"] > 0 and stages["staged"] > 0 and stages["checks"] > 0 and stages["publish"] > 0
    assert pipeline["steps_total_s"] == pytest.approx(sum(pipeline["steps_s"].values()), abs=0.01)
    assert pipeline["steps_total_s"] == pytest.approx(sum(stages.values()), abs=0.01)
    assert 0 < pipeline["validation_s"] < pipeline["seconds"]
    # both sides are rounded from unrounded seconds: equal to within one unit of the last digit
    assert pipeline["validation_share"] == pytest.approx(pipeline["validation_s"] / pipeline["seconds"], abs=2e-4)
    assert pipeline["peak_rss_gib"] > 0 and pipeline["peak_rss_gib_by_stage"]
    # dirt aside, the bare statement computes the same revenue as the marts, to the cent
    assert result["bare_vs_marts"]["keys"] == 2 * 4
    assert result["bare_vs_marts"]["max_relative_difference"] < 1e-9
    json.dumps(result)  # what main() writes


def test_ruled_statement_equals_the_marts_on_dirty_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--ruled``: the contract's rules as one DuckDB statement give the marts by stream exactly, on
    generated data with its dirt (malformed lines, duplicates, conflicts, late and invalid events):
    rules 5–9 in SQL against the staged layer's polars. The ratios split pipeline / bare in two."""

    def dirty(data_dir: str, start: str, days: int, events_per_day: int, seed: int, compress: bool) -> dict:
        stats = generate_dataset(
            Path(data_dir), dt.date.fromisoformat(start), days, events_per_day, seed, compress=compress
        )
        return {"events": stats.total_events, "seconds": stats.seconds, "events_per_s": 1}

    monkeypatch.setattr(bench.runs, "run_generate", dirty)
    # a quote and brackets in the path: the pipeline and the bare and ruled statements name every file
    # literally (DuckDB and polars would take `[bench]` for a pattern)
    result = bench.bench_full(tmp_path / "o'brien's [bench]", START, 3, 2000, 5, isolate=False, repeats=1, ruled=True)
    assert result["pipeline"]["success"]
    ruled = result["ruled_duckdb"]
    assert ruled["event_counts_equal"]
    assert ruled["vs_marts"]["keys"] == 3 * 4 and ruled["vs_marts"]["max_relative_difference"] < 1e-9
    assert result["bare_vs_marts"]["max_relative_difference"] > 1e-6  # the dirt the bare statement ignores
    assert ruled["ratio_ruled_to_bare"] * ruled["ratio_pipeline_to_ruled"] == pytest.approx(
        result["ratio_pipeline_to_bare"], rel=0.02
    )
    json.dumps(result)


def _event(kind: str, step: str | None, *, asset: str | None = None, ms: float | None = None):
    data = SimpleNamespace(duration_ms=ms) if ms is not None else None
    key = SimpleNamespace(path=[asset]) if asset else None
    return SimpleNamespace(event_type_value=kind, step_key=step, event_specific_data=data, asset_key=key)


def test_stage_arithmetic() -> None:
    events = [
        _event("ASSET_MATERIALIZATION", "landing__gifts", asset="landing"),
        _event("STEP_SUCCESS", "landing__gifts", ms=1500),
        _event("ASSET_CHECK_EVALUATION", "landing__gifts_check"),
        _event("STEP_SUCCESS", "landing__gifts_check", ms=250),
        _event("ASSET_MATERIALIZATION", "warehouse", asset="warehouse"),
        _event("STEP_SUCCESS", "warehouse", ms=100),
        _event("STEP_SUCCESS", "mystery", ms=5),
        _event("PIPELINE_SUCCESS", None),
    ]
    stages, steps = bench.step_stages(events)
    assert stages["landing"] == 1.5 and stages["checks"] == 0.25 and stages["publish"] == 0.1
    assert stages["other"] == 0.005 and sum(stages.values()) == pytest.approx(1.855)
    assert steps == {"landing__gifts": 1.5, "landing__gifts_check": 0.25, "mystery": 0.005, "warehouse": 0.1}
    summary = bench.summarize_run(wall=2.0, cpu=3.0, lines=1000, stages=stages, validation=0.5, peak_rss=2**30)
    assert summary["events_per_s"] == 500 and summary["cpu_utilisation"] == 1.5
    assert summary["dagster_overhead_s"] == pytest.approx(0.145) and summary["validation_share"] == 0.25
    assert summary["peak_rss_gib"] == 1.0
    peaks = bench.peak_rss_by_stage(
        [(1.0, 2**30), (2.0, 3 * 2**30), (5.0, 2**31)],
        {"landing__gifts": (0.5, 2.5), "warehouse": (4.0, 6.0)},
        {"landing__gifts": "landing", "warehouse": "publish"},
    )
    assert peaks == {"landing": 3.0, "publish": 2.0}


def test_stream_differences() -> None:
    bare = {("2025-03-01", "ads"): (1.0, 0.0, 0.0, 1.0, 10)}
    assert bench.stream_differences(bare, dict(bare))["max_relative_difference"] == 0.0
    assert bench.stream_differences(bare, {("2025-03-01", "ads"): (1.1, 0.0, 0.0, 1.1, 11)})[
        "max_relative_difference"
    ] == pytest.approx(0.1 / 1.1, rel=1e-6)
    assert bench.stream_differences(bare, {})["max_relative_difference"] == 1.0


def test_bench_incremental_times_the_same_day_repeatedly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both histories end on the same calendar day, so the timed runs do the same work, each repeat
    starts from the same lake (the snapshot is restored between runs), and the runs alternate."""

    def on_time(data_dir: str, start: str, days: int, events_per_day: int, seed: int) -> dict:
        stats = generate_dataset(
            Path(data_dir), dt.date.fromisoformat(start), days, events_per_day, seed, dirt_rate=0, late_rate=0
        )
        return {"events": stats.total_events, "seconds": stats.seconds, "events_per_s": 1}

    monkeypatch.setattr(bench.runs, "run_generate", on_time)
    # Both histories reach back past the longest refund delay (a refund is a new event of a later day),
    # cut from 10 days to 1 here: the histories' own runs were most of this test's 80-96 s.
    monkeypatch.setattr(markets, "REFUND_MAX_DAYS", 1)
    histories = [markets.REFUND_MAX_DAYS + 1, markets.REFUND_MAX_DAYS + 2]
    out = bench.bench_incremental(tmp_path, START, histories, 200, 5, repeats=2, isolate=False, core_only=True)
    day = START + dt.timedelta(days=histories[-1])
    assert out["day"] == day.isoformat() and out["repeats"] == 2
    assert out["order"] == [histories[0], histories[1], histories[1], histories[0]]  # alternating, ABBA
    short, long = (out["runs"][str(h)] for h in histories)
    assert short["success"] and long["success"]
    assert len(short["samples_s"]) == len(long["samples_s"]) == 2
    assert short["seconds"] in short["samples_s"]
    assert 0 < short["peak_rss_gib_run"] <= short["peak_rss_gib"]  # the run's own, within the process's mark
    assert short["events"] == long["events"] > 0  # the same day's raw files, whatever the history
    assert out["ratio_longest_to_shortest"] == pytest.approx(long["seconds"] / short["seconds"], rel=1e-2)
    data_dir = tmp_path / f"incr-{histories[-1]}x200-s5"
    assert not data_dir.with_name(f"{data_dir.name}.before-run").exists()  # the snapshot is removed
    import duckdb

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        dates = con.sql("SELECT DISTINCT event_date FROM marts.revenue_by_stream ORDER BY 1").fetchall()
        rows = con.sql("SELECT count(*) FROM marts.revenue_by_stream").fetchall()[0][0]
    assert [d for (d,) in dates] == [START + dt.timedelta(days=i) for i in range(histories[-1] + 1)]
    assert rows == 4 * len(dates)  # four streams a day, never doubled by the repeat


def test_the_timed_runs_alternate_in_abba_order() -> None:
    assert bench.incremental.alternating([7, 90], 3) == [7, 90, 90, 7, 7, 90]
    assert bench.incremental.alternating([7, 30, 90], 2) == [7, 30, 90, 90, 30, 7]
    assert bench.incremental.alternating([7], 2) == [7, 7]


def test_median_run_prefers_a_failure() -> None:
    runs = [{"success": True, "seconds": s} for s in (3.0, 1.0, 2.0)]
    assert bench.median_run(runs)["seconds"] == 2.0
    assert bench.median_run(runs[:2])["seconds"] == 1.0  # even count: the lower middle
    assert bench.median_run([*runs, {"success": False, "seconds": 9.0}])["success"] is False
