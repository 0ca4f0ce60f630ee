"""Landing buckets (hash of event_id) and the bucket-by-bucket staged step decide exactly what
the unbucketed pipeline decided: same staged events, same quarantine rows (raw lines included),
same facts and marts, whatever the bucket count, the grouping or the landing layout."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipelines.contract import LOGS
from pipelines.facts.revenue import build_facts
from pipelines.generate import generate_dataset
from pipelines.lake import DataDir
from pipelines.landing.land import BUCKET_FILE, land_partition, landing_files_for_event_date, read_manifest
from pipelines.marts.build import build_mart_partition
from pipelines.reference import load_reference
from pipelines.staged import stage as stage_module
from pipelines.staged.rules import duplicated
from pipelines.staged.stage import (
    MAX_SLICES,
    bucket_groups,
    largest_day,
    parallel_threads,
    stage_days,
    stage_range,
)
from tests.builders import impression, write_raw

START = dt.date(2025, 3, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(3)]
ARRIVALS = [START + dt.timedelta(days=i) for i in range(7)]


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bucketing-raw")
    generate_dataset(root, START, 3, 4000, seed=5, dirt_rate=0.02)
    return root


def _copy_raw(raw_dir: Path, target: Path) -> DataDir:
    shutil.copytree(raw_dir / "reference", target / "reference")
    shutil.copytree(raw_dir / "raw", target / "raw")
    return DataDir.at(target)


def _land(data: DataDir, buckets: int) -> None:
    for log in LOGS:
        for day in ARRIVALS:
            land_partition(data, log, day, buckets=buckets)


# Bucket counts of the arrival days for test_other_landing_layout_is_read_by_hash: partitions landed
# with another bucket count (4) or before bucketing (1).
MIXED_LAYOUT = "mixed"


@pytest.fixture(scope="module")
def landed(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[int | str], Path]:
    """The raw data landed with ``buckets`` buckets (or MIXED_LAYOUT), once per layout for the module:
    landing is deterministic, so tests that stage copy it (:func:`_copy_landed`) instead of landing the
    same 35 partitions again, and tests that only read the landing use it as it is."""
    cache: dict[int | str, Path] = {}

    def get(buckets: int | str) -> Path:
        if buckets not in cache:
            data = _copy_raw(raw_dir, tmp_path_factory.mktemp(f"landed-{buckets}"))
            if buckets == MIXED_LAYOUT:
                for log in LOGS:
                    for i, day in enumerate(ARRIVALS):
                        land_partition(data, log, day, buckets=4 if i % 2 else 1)
            else:
                _land(data, int(buckets))
            cache[buckets] = data.root
        return cache[buckets]

    return get


def _copy_landed(landed_root: Path, target: Path) -> DataDir:
    """A copy of a landed data dir to stage in (file times kept: the landing fingerprints still match)."""
    shutil.copytree(landed_root, target, dirs_exist_ok=True)
    return DataDir.at(target)


def _run(
    data: DataDir, buckets: int, monkeypatch: pytest.MonkeyPatch, group_rows: int, threads: int = 1, stage=None
) -> dict[str, list]:
    """Stage (with ``stage``, else :func:`stage_range`), attribute and build the two core marts;
    return every output sorted."""
    monkeypatch.setenv("REVWH_STAGED_GROUP_ROWS", str(group_rows))
    ref = load_reference(data)
    for log in LOGS:
        (stage or stage_range)(data, log, DAYS, ref, buckets=buckets, threads=threads)
    out: dict[str, list] = {}
    for day in DAYS:
        build_facts(data, day, ref)
        for mart in ("revenue_by_stream", "revenue_by_region"):
            build_mart_partition(data, mart, day)
    with duckdb.connect() as con:
        for log in LOGS:
            out[f"staged/{log}"] = con.execute(
                f"SELECT * FROM read_parquet('{data.lake}/staged/{log}/*.parquet') ORDER BY ALL"
            ).fetchall()
        out["quarantine"] = con.execute(
            f"SELECT * FROM read_parquet('{data.lake}/quarantine/*/*/*.parquet', union_by_name = true) ORDER BY ALL"
        ).fetchall()
        out["facts"] = con.execute(
            f"SELECT * FROM read_parquet('{data.lake}/facts/revenue_events/*.parquet') ORDER BY ALL"
        ).fetchall()
        for mart in ("revenue_by_stream", "revenue_by_region"):
            out[mart] = con.execute(
                f"SELECT * FROM read_parquet('{data.lake}/marts/{mart}/*.parquet') ORDER BY ALL"
            ).fetchall()
    return out


@pytest.fixture(scope="module")
def unbucketed(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    data = _copy_raw(raw_dir, tmp_path_factory.mktemp("b1"))
    _land(data, 1)
    with pytest.MonkeyPatch.context() as mp:
        return _run(data, 1, mp, group_rows=10**9)


def test_reference_run_has_every_kind_of_reject(unbucketed: dict[str, list]) -> None:
    reasons = {row[3] for row in unbucketed["quarantine"]}
    assert {"conflicting_duplicate", "invalid_value", "malformed", "late_arrival"} <= reasons
    assert all(row[4] for row in unbucketed["quarantine"])  # every rejected copy keeps its raw line


@pytest.mark.parametrize(
    ("buckets", "group_rows", "threads"),
    # (7, 30, 1): impressions' buckets in 9 slices, the small logs' one to five buckets at a time;
    # (7, 100, 2): impressions' buckets in 6 slices, two at once
    [(7, 30, 1), (16, 10**9, 1), (3, 2000, 1), (7, 100, 2), (16, 3000, 2)],
)
def test_bucketing_changes_nothing(
    landed: Callable[[int | str], Path],
    tmp_path: Path,
    unbucketed: dict[str, list],
    monkeypatch: pytest.MonkeyPatch,
    buckets: int,
    group_rows: int,
    threads: int,
) -> None:
    """Any bucket count, group size or number of groups staged at once gives the same outputs."""
    data = _copy_landed(landed(buckets), tmp_path)
    got = _run(data, buckets, monkeypatch, group_rows, threads)
    assert got.keys() == unbucketed.keys()
    for name, rows in unbucketed.items():
        assert got[name] == rows, name


@pytest.mark.parametrize("group_rows", [3000, 150])  # 150: buckets read in slices
def test_other_landing_layout_is_read_by_hash(
    landed: Callable[[int | str], Path],
    tmp_path: Path,
    unbucketed: dict[str, list],
    monkeypatch: pytest.MonkeyPatch,
    group_rows: int,
) -> None:
    """Partitions landed with another bucket count (or before bucketing) are still staged right."""
    data = _copy_landed(landed(MIXED_LAYOUT), tmp_path)
    got = _run(data, 5, monkeypatch, group_rows=group_rows)
    for name, rows in unbucketed.items():
        assert got[name] == rows, name


def test_pieces_cover_every_bucket_once_and_slice_only_large_buckets(landed: Callable[[int | str], Path]) -> None:
    data = DataDir.at(landed(4))  # only read
    per_bucket = largest_day(data, "impressions", DAYS) // 4  # about 1000 copies
    groups = bucket_groups(data, "impressions", DAYS, 4, group_rows=2 * per_bucket)
    assert [p.buckets for p in groups] == [(0, 1), (2, 3)] and {p.parts for p in groups} == {1}
    assert all(p.keeps() is None for p in groups)
    assert {p.parts for p in bucket_groups(data, "impressions", DAYS, 4, group_rows=per_bucket // 2 + 1)} == {1}
    sliced = bucket_groups(data, "impressions", DAYS, 4, group_rows=per_bucket // 6)  # slices of 2 x the limit
    parts = -(-per_bucket // (2 * (per_bucket // 6)))  # 3 or 4 slices of each bucket
    assert sorted((p.buckets, p.part, p.parts) for p in sliced) == [
        ((b,), j, parts) for b in range(4) for j in range(parts)
    ]
    capped = bucket_groups(data, "impressions", DAYS, 4, group_rows=1)
    assert {p.parts for p in capped} == {MAX_SLICES} and len(capped) == 4 * MAX_SLICES
    # the slices of a bucket split its ids: each id in exactly one
    ids = pl.DataFrame({"event_id": [f"id-{i}" for i in range(1000)]})
    kept = [
        sliced_piece.keep(ids).get_column("event_id").to_list()
        for sliced_piece in sliced
        if sliced_piece.buckets == (0,)
    ]
    assert sorted(i for part in kept for i in part) == sorted(ids.get_column("event_id").to_list())
    assert all(part for part in kept)


def test_every_copy_of_an_id_lands_in_one_bucket(landed: Callable[[int | str], Path]) -> None:
    data = DataDir.at(landed(8))  # only read
    manifest = read_manifest(data, "impressions", DAYS[0])
    assert manifest.buckets == 8 and "%8" in manifest.bucket_scheme
    seen: dict[str, set[int]] = {}
    for day in DAYS:
        for path in landing_files_for_event_date(data, "impressions", day):
            bucket = int(BUCKET_FILE.fullmatch(path.name).group(1))
            for event_id in pl.read_parquet(path, columns=["event_id"]).get_column("event_id"):
                seen.setdefault(event_id, set()).add(bucket)
    assert seen and all(len(b) == 1 for b in seen.values())
    assert len({b for bs in seen.values() for b in bs}) == 8


def test_changing_the_bucket_count_relands(data_dir: DataDir) -> None:
    write_raw(data_dir.root, "impressions", "2025-03-05", [impression("a", "2025-03-05T10:00:00Z")])
    day = dt.date(2025, 3, 5)
    first = land_partition(data_dir, "impressions", day, buckets=4)
    assert land_partition(data_dir, "impressions", day, buckets=4).skipped
    again = land_partition(data_dir, "impressions", day, buckets=8)
    assert not again.skipped and again.fingerprint != first.fingerprint
    manifest = json.loads(data_dir.manifest_file("landing", "impressions", day).read_text())
    assert manifest["buckets"] == 8


def test_quarantined_redelivery_keeps_the_smallest_raw_line(data_dir: DataDir) -> None:
    """Identical copies (same arrival day and file) differing only in formatting, rejected by rule 6:
    the quarantine shows the smallest raw text, as the unbucketed rule 5 kept it."""
    t = "2025-03-05T10:00:00Z"
    row = impression("fmt", t, ad_format="banner")
    compact = json.dumps(row, separators=(",", ":"))
    spaced = json.dumps(row)
    write_raw(data_dir.root, "impressions", "2025-03-05", [compact, spaced, compact])
    day = dt.date(2025, 3, 5)
    land_partition(data_dir, "impressions", day, buckets=2)
    stats = stage_range(data_dir, "impressions", [day], load_reference(data_dir), buckets=2)[0]
    assert (stats.copies, stats.collapsed, stats.accepted, stats.quarantined) == (3, 2, 0, 1)
    q = pl.read_parquet(data_dir.quarantine_file("staged", "impressions", day))
    assert q.select("event_id", "reason", "raw").rows() == [("fmt", "invalid_value", min(compact, spaced))]


def test_a_day_too_large_for_two_groups_at_once_is_staged_on_one_thread(
    landed: Callable[[int | str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataDir.at(landed(4))  # only read
    largest = largest_day(data, "impressions", DAYS)
    assert largest > 3000  # from the landing manifests: about 4000 events a day, most of them impressions
    monkeypatch.setenv("REVWH_PARALLEL_DAY_ROWS", str(largest))
    assert parallel_threads(data, "impressions", DAYS, 2) == 2
    monkeypatch.setenv("REVWH_PARALLEL_DAY_ROWS", str(largest - 1))
    assert parallel_threads(data, "impressions", DAYS, 2) == 1


@pytest.mark.parametrize(("group_rows", "ranges"), [(3000, 1), (10**9, 2)])
def test_stage_days_runs_groups_or_days_at_once_with_the_same_outputs(
    landed: Callable[[int | str], Path],
    tmp_path: Path,
    unbucketed: dict[str, list],
    monkeypatch: pytest.MonkeyPatch,
    group_rows: int,
    ranges: int,
) -> None:
    """Days that come in several bucket groups: the groups run at once over the whole range (one
    stage_range). Days of one group each: runs of days at once (two stage_range calls)."""
    calls: list[str] = []
    real = stage_module.stage_range

    def counting(data, log, *args, **kwargs):
        calls.append(log)
        return real(data, log, *args, **kwargs)

    monkeypatch.setattr(stage_module, "stage_range", counting)
    data = _copy_landed(landed(4), tmp_path)
    got = _run(data, 4, monkeypatch, group_rows, threads=2, stage=stage_days)
    assert calls.count("impressions") == ranges  # about 3300 copies a day: several groups of 3000 / 2
    assert calls.count("fund_payouts") == 2  # a few dozen a day: one group, so runs of days
    for name, rows in unbucketed.items():
        assert got[name] == rows, name


def test_duplicated_matches_polars_on_strings_with_repeats_and_nulls() -> None:
    """The hash-and-sort duplicate test of rule 5 says exactly what ``is_duplicated`` says."""
    rng = random.Random(7)
    ids = [rng.choice([None, f"id-{rng.randrange(3000)}", "ü-ß", ""]) for _ in range(5000)]
    for sample in ([], ["a"], ["a", "a"], ids, ids[:1] + ids[-1:]):
        series = pl.Series("event_id", sample, dtype=pl.String)
        assert duplicated(series).to_list() == series.is_duplicated().to_list()


def test_ids_shared_with_neighbours_are_exact_and_distinct() -> None:
    """Cross-date conflicts: the day's ids that occur on another date, each once."""
    day = stage_module._Ids(pl.Series("event_id", ["a", "b", "b", "c", "d"]))
    others = [
        stage_module._Ids(pl.Series("event_id", ["b", "x"])),
        stage_module._Ids(pl.Series("event_id", [], dtype=pl.String)),
        stage_module._Ids(pl.Series("event_id", ["d", "b", "y"])),
    ]
    assert sorted(stage_module._Ids.shared(day, others).to_list()) == ["b", "d"]
    assert stage_module._Ids.shared(day, others[1:2]).to_list() == []
    assert stage_module._Ids.shared(stage_module._Ids(pl.Series("event_id", [], dtype=pl.String)), others).len() == 0


def test_small_staged_row_groups_change_nothing(
    landed: Callable[[int | str], Path], tmp_path: Path, unbucketed: dict[str, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A piece is written in row groups of at most STAGED_ROW_GROUP_ROWS; the outputs are the same."""
    monkeypatch.setattr(stage_module, "STAGED_ROW_GROUP_ROWS", 100)
    data = _copy_landed(landed(4), tmp_path)
    got = _run(data, 4, monkeypatch, group_rows=3000)
    for name, rows in unbucketed.items():
        assert got[name] == rows, name
    meta = pq.ParquetFile(data.staged_file("impressions", DAYS[1])).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert len(sizes) > 10 and max(sizes) <= 100


def test_the_quarantine_spill_leaves_nothing_behind(
    landed: Callable[[int | str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each piece's quarantine rows are spilled to scratch files and sorted into the day's file at
    the end; the scratch files go, whether the step succeeds or fails half way."""
    data = _copy_landed(landed(4), tmp_path)
    ref = load_reference(data)
    stats = stage_range(data, "impressions", DAYS, ref, buckets=4, group_rows=300)  # several pieces
    assert sum(s.quarantined for s in stats) > 0
    assert not list(data.scratch.glob("staged-quarantine-*"))
    day_file = data.quarantine_file("staged", "impressions", DAYS[1])
    before = pl.read_parquet(day_file)
    assert before.height == stats[1].quarantined and before.get_column("reason").is_sorted()

    calls = {"n": 0}
    real = stage_module.stage_copies

    def fail_on_third_piece(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(stage_module, "stage_copies", fail_on_third_piece)
    with pytest.raises(RuntimeError, match="disk full"):
        stage_range(data, "impressions", DAYS, ref, buckets=4, group_rows=300)
    assert not list(data.scratch.glob("staged-quarantine-*"))
    assert pl.read_parquet(day_file).equals(before)  # the last good file stays
