"""Rule 5 at any distance: copies of an id more than 3 event days apart are conflicting too.

SPEC §4 rule 5 rejects every copy of an id whose copies differ, and sets no distance. The
staged step compares D-3..D+3 directly and the rest through the landing id indexes; these
cases are built by hand so that only the far comparison can catch them.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipelines.bench.runs import execute_core
from pipelines.defs.stale_dates_sensor import stale_dates_sensor
from pipelines.lake import DataDir
from pipelines.landing.id_index import INDEX_FILE, hash_scheme, id_index, is_current
from pipelines.landing.land import land_partition
from pipelines.reference import load_reference
from pipelines.runner import stale_date_notes
from pipelines.staged.far_conflicts import find_far_conflicts
from pipelines.staged.stage import stage_days
from tests.builders import impression, write_raw, write_reference
from tests.cli_helpers import run_impressions_to_staged

D1 = dt.date(2025, 3, 1)


def day(offset: int) -> dt.date:
    return D1 + dt.timedelta(days=offset)


def at(offset: int) -> str:
    return f"{day(offset)}T10:00:00Z"


def _scenario(root: Path) -> DataDir:
    """far-5 on D1 and D1+5 (beyond the window), near-3 on D1 and D1+3 (inside it), and
    clean events: each arrives on its own event date."""
    write_reference(root, day(-5), day(20))
    write_raw(root, "impressions", str(day(0)), [impression("far-5", at(0)), impression("near-3", at(0))])
    write_raw(root, "impressions", str(day(0)), [impression(f"ok-{i}", at(0)) for i in range(5)], "clean.jsonl")
    write_raw(root, "impressions", str(day(3)), [impression("near-3", at(3))])
    write_raw(root, "impressions", str(day(5)), [impression("far-5", at(5), price=9), impression("ok-9", at(5))])
    return DataDir.at(root)


def _run(root: Path, first: dt.date, last: dt.date, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """A run of the core job (landing, staged, facts, the core marts, the warehouse and their checks): rule 5
    lives in the staged step, and the KPI marts and the report would add about 3 s a run and nothing here."""
    return execute_core(root, first, last, instance)


def _land(data: DataDir, offsets: range) -> None:
    for offset in offsets:
        land_partition(data, "impressions", day(offset), buckets=4)


def _staged_quarantine(data: DataDir, offset: int) -> dict[str, str]:
    frame = pl.read_parquet(data.quarantine_file("staged", "impressions", day(offset)))
    return dict(zip(frame["event_id"], frame["reason"], strict=True))


def _staged_ids(data: DataDir, offset: int) -> set[str]:
    return set(pl.read_parquet(data.staged_file("impressions", day(offset)))["event_id"])


def test_copies_five_days_apart_are_both_conflicting(tmp_path: Path) -> None:
    data = _scenario(tmp_path)
    _land(data, range(0, 9))
    stage_days(data, "impressions", [day(i) for i in range(6)], load_reference(data), buckets=4)
    for offset in (0, 5):
        assert _staged_quarantine(data, offset)["far-5"] == "conflicting_duplicate"
        assert "far-5" not in _staged_ids(data, offset)
    assert _staged_quarantine(data, 0)["near-3"] == "conflicting_duplicate"  # the window's own case
    assert _staged_ids(data, 0) == {f"ok-{i}" for i in range(5)}
    assert _staged_ids(data, 5) == {"ok-9"}


def test_far_conflicts_lists_every_copy_confirmed_on_strings(tmp_path: Path) -> None:
    data = _scenario(tmp_path)
    _land(data, range(0, 9))
    far = find_far_conflicts(data, "impressions", [day(5)], buckets=4)
    assert far.copies.rows() == [("far-5", day(0)), ("far-5", day(5))]  # near-3 is the window's
    assert far.ids_on(day(5)).to_list() == ["far-5"]
    assert find_far_conflicts(data, "impressions", [day(9)], buckets=4).copies.height == 0  # nothing in D+6..D+12
    # a run of D1+2 lands arrival days D1+2..D1+5: far-5's copy on D1+5 and near-3's on D1+3 arrive
    # there, and each ties its id to D1, outside the run
    assert find_far_conflicts(data, "impressions", [day(2)], buckets=4).copies.rows() == [
        ("far-5", day(0)),
        ("far-5", day(5)),
        ("near-3", day(0)),
        ("near-3", day(3)),
    ]
    # hash ranges read a chunk at a time give the same answer
    chunked = find_far_conflicts(data, "impressions", [day(5)], buckets=4, chunk_rows=2)
    assert chunked.copies.rows() == far.copies.rows()


def test_far_copies_live_in_a_scratch_file_sorted_by_date_and_read_a_piece_at_a_time(tmp_path: Path) -> None:
    """A producer whose ids restart every day ties every copy of a range together (60 days of 300k ids:
    18M copies, 4 GiB in memory): the copies go to a Parquet file sorted by date, a piece of the staged
    step reads its date's ids of its buckets only, and the file goes with the object."""
    data = _scenario(tmp_path)
    _land(data, range(0, 9))
    with find_far_conflicts(data, "impressions", [day(2)], buckets=4) as far:
        assert far.ids == 2
        rows = pl.read_parquet(far.copies_file)
        assert rows.columns == ["event_id", "event_date", "h"] and rows["event_date"].is_sorted()
        bucket = {i: h % 4 for i, h in rows.select("event_id", "h").unique().iter_rows()}
        for b in range(4):
            expected = sorted(i for i in ("far-5", "near-3") if bucket[i] == b)
            assert sorted(far.ids_on(day(0), [b], 4).to_list()) == expected
        assert far.ids_on(day(3), range(4), 4).to_list() == ["near-3"]
        assert far.ids_on(day(1)).len() == 0
        folder = far.copies_file.parent
        assert folder.parent == data.scratch
    assert not folder.exists()
    stage_days(data, "impressions", [day(5)], load_reference(data), buckets=4)  # finds its own, and removes it
    assert list(data.scratch.iterdir()) == []


def test_a_date_staged_before_the_far_copy_landed_is_reported_stale(tmp_path: Path) -> None:
    data = _scenario(tmp_path)
    ref = load_reference(data)
    _land(data, range(0, 4))  # a daily run of D1: the copy of D1+5 has not landed yet
    stage_days(data, "impressions", [day(0)], ref, buckets=4)
    assert "far-5" in _staged_ids(data, 0)
    _land(data, range(4, 9))  # later runs land it
    far = find_far_conflicts(data, "impressions", [day(5)], buckets=4)
    stage_days(data, "impressions", [day(5)], ref, buckets=4, far=far)
    assert _staged_quarantine(data, 5)["far-5"] == "conflicting_duplicate"
    assert far.stale_dates(data, [day(5)]) == [day(0)]
    stage_days(data, "impressions", [day(0)], ref, buckets=4)  # re-running D1 settles it
    assert _staged_quarantine(data, 0)["far-5"] == "conflicting_duplicate"
    assert far.stale_dates(data, [day(5)]) == []


def test_index_is_written_by_landing_and_rebuilt_when_missing_or_foreign(tmp_path: Path) -> None:
    data = _scenario(tmp_path)
    _land(data, range(0, 2))
    path = data.landing_partition("impressions", day(0)) / INDEX_FILE
    assert is_current(path)
    rows = pl.read_parquet(path)
    assert rows.height == 7 and rows["h"].is_sorted() and set(rows["event_date"]) == {day(0)}
    assert pq.read_schema(data.landing_partition("impressions", day(1)) / INDEX_FILE).metadata  # empty day too
    path.unlink()  # a partition landed before indexes existed
    with duckdb.connect() as con:
        assert id_index(data, "impressions", day(0), con) == path
        assert pl.read_parquet(path).equals(rows)
        # an index hashed by another DuckDB is rebuilt
        pq.write_table(rows.to_arrow().replace_schema_metadata({b"hash_scheme": b"duckdb-0.0.0"}), path)
        assert not is_current(path)
        id_index(data, "impressions", day(0), con)
    assert is_current(path) and pq.read_schema(path).metadata[b"hash_scheme"] == hash_scheme().encode()


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    """The scenario after one run over D1..D1+5: two tests start there. The first only reads it; the
    other runs on in a copy (file times kept, so nothing is landed again; the assets keep no state in
    the Dagster instance, only in the lake)."""
    root = tmp_path_factory.mktemp("scenario_run")
    _scenario(root)
    result = _run(root, day(0), day(5), dg.DagsterInstance.ephemeral())
    assert result.success
    return root, result


def test_one_run_over_the_range_rejects_both_copies_in_the_marts(
    scenario_run: tuple[Path, dg.ExecuteInProcessResult],
) -> None:
    root, result = scenario_run
    assert _staged_metadata(result)["stale_event_dates"] == [] and stale_date_notes(result) == []
    with duckdb.connect(str(DataDir.at(root).warehouse), read_only=True) as con:
        rejected = con.execute(
            "SELECT event_id, event_date, reason FROM quality.quarantine WHERE event_id = 'far-5' ORDER BY 2"
        ).fetchall()
        counts = con.execute(
            "SELECT event_date, event_count FROM marts.revenue_by_stream WHERE stream = 'advertising' ORDER BY 1"
        ).fetchall()
    assert rejected == [("far-5", day(0), "conflicting_duplicate"), ("far-5", day(5), "conflicting_duplicate")]
    assert counts == [(day(0), 5), (day(5), 1)]  # ok-0..4; ok-9


def test_daily_runs_report_the_stale_date_until_it_is_re_run(tmp_path: Path) -> None:
    _scenario(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert _run(tmp_path, day(0), day(0), instance).success
    later = _run(tmp_path, day(5), day(5), instance)
    assert _staged_metadata(later)["stale_event_dates"] == [str(day(0))]
    assert _staged_metadata(later)["far_conflicting_ids"] == 1
    assert stale_date_notes(later) == [
        f"event date {day(0)} holds copies of ids whose other copies this run changed (staged/impressions); "
        f"re-run it to apply rule 5 to them again: revwh run --start {day(0)} --end {day(0)}"
    ]
    ticked = stale_dates_sensor(dg.build_sensor_context(instance=instance))
    assert [r.tags["dagster/asset_partition_range_start"] for r in ticked.run_requests] == [str(day(0))]
    assert _run(tmp_path, day(0), day(0), instance).success
    assert not stale_dates_sensor(dg.build_sensor_context(instance=instance, cursor=ticked.cursor)).run_requests
    with duckdb.connect(str(DataDir.at(tmp_path).warehouse), read_only=True) as con:
        reasons = con.execute("SELECT DISTINCT reason FROM quality.quarantine WHERE event_id = 'far-5'").fetchall()
        ids = con.execute("SELECT count(*) FROM facts.revenue_events WHERE event_id = 'far-5'").fetchall()
    assert reasons == [("conflicting_duplicate",)] and ids == [(0,)]


def _staged_metadata(result: dg.ExecuteInProcessResult) -> dict:
    event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["staged", "impressions"])
    )
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_a_copy_landing_within_three_days_of_a_date_staged_earlier_makes_it_stale(tmp_path: Path) -> None:
    """The daily run of arrival day D1+6 stages D1+3..D1+6: its copy of near-3 on D1+3 meets the one
    on D1, three days away but outside the run, which an earlier run staged as accepted."""
    write_reference(tmp_path, day(-5), day(20))
    write_raw(tmp_path, "impressions", str(day(0)), [impression("near-3", at(0)), impression("ok-0", at(0))])
    instance = dg.DagsterInstance.ephemeral()
    assert run_impressions_to_staged(tmp_path, day(-3), day(0), instance).success
    data = DataDir.at(tmp_path)
    assert "near-3" in _staged_ids(data, 0)
    write_raw(tmp_path, "impressions", str(day(6)), [impression("near-3", at(3))])  # 3 days late: accepted
    later = run_impressions_to_staged(tmp_path, day(3), day(6), instance)
    assert _staged_quarantine(data, 3) == {"near-3": "conflicting_duplicate"}
    assert _staged_metadata(later)["stale_event_dates"] == [str(day(0))]
    assert run_impressions_to_staged(tmp_path, day(0), day(0), instance).success
    assert _staged_quarantine(data, 0) == {"near-3": "conflicting_duplicate"} and _staged_ids(data, 0) == {"ok-0"}


def test_a_date_whose_conflicting_partner_is_removed_is_stale(
    scenario_run: tuple[Path, dg.ExecuteInProcessResult], tmp_path: Path
) -> None:
    """far-5 (D1 and D1+5) and near-3 (D1 and D1+3) are rejected everywhere; when the later copies'
    files are removed and D1+3..D1+5 re-run, D1 still rejects both on the strength of copies that
    are gone, so it is reported stale, and a re-run accepts them."""
    shutil.copytree(scenario_run[0], tmp_path, dirs_exist_ok=True)  # _scenario, run over D1..D1+5
    data = DataDir.at(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert _staged_quarantine(data, 0) == {"far-5": "conflicting_duplicate", "near-3": "conflicting_duplicate"}
    for offset in (3, 5):
        for path in data.raw_partition("impressions", day(offset)).iterdir():
            path.unlink()
    later = run_impressions_to_staged(tmp_path, day(3), day(5), instance)
    assert _staged_metadata(later)["stale_event_dates"] == [str(day(0))]
    assert run_impressions_to_staged(tmp_path, day(0), day(0), instance).success
    assert _staged_ids(data, 0) == {"far-5", "near-3"} | {f"ok-{i}" for i in range(5)}
    again = run_impressions_to_staged(tmp_path, day(3), day(5), instance)
    assert _staged_metadata(again)["stale_event_dates"] == []  # settled: no loop of re-runs


def test_a_date_rejecting_its_own_differing_copies_is_not_stale(tmp_path: Path) -> None:
    """x differs on D1 itself and has a copy on D1+5 too; once that copy is removed, D1 still
    rejects x on its own copies, so it is not reported stale."""
    write_reference(tmp_path, day(-5), day(20))
    write_raw(tmp_path, "impressions", str(day(0)), [impression("x", at(0)), impression("x", at(0), price=7)])
    write_raw(tmp_path, "impressions", str(day(5)), [impression("x", at(5))])
    write_raw(tmp_path, "impressions", str(day(5)), [impression("ok-5", at(5))], "clean.jsonl")
    data = DataDir.at(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert run_impressions_to_staged(tmp_path, day(0), day(5), instance).success
    assert _staged_quarantine(data, 5) == {"x": "conflicting_duplicate"}
    (data.raw_partition("impressions", day(5)) / "part-0.jsonl").unlink()
    later = run_impressions_to_staged(tmp_path, day(3), day(5), instance)
    assert _staged_metadata(later)["stale_event_dates"] == []
    assert _staged_quarantine(data, 0) == {"x": "conflicting_duplicate"}


def _accepted(data: DataDir, offset: int) -> set[str]:
    return _staged_ids(data, offset) if data.staged_file("impressions", day(offset)).exists() else set()


def test_a_copy_landed_for_a_date_the_run_does_not_stage_makes_an_earlier_date_stale(tmp_path: Path) -> None:
    """Daily runs of D1+6 then D1+7: x has a copy on D1+6 (arrives that day) and one on D1+8 that
    arrives on D1+10, so only the second run lands it, for a date neither run stages. The first run
    accepted x on D1+6; the second must report D1+6 (found by a run-order hunt: it reported nothing,
    and D1+6 kept counting x, unlike one run over D1+6..D1+7)."""
    write_reference(tmp_path, day(-5), day(20))
    write_raw(tmp_path, "impressions", str(day(6)), [impression("x", at(6)), impression("ok-6", at(6))])
    write_raw(tmp_path, "impressions", str(day(10)), [impression("x", at(8), price=7)])
    data, instance = DataDir.at(tmp_path), dg.DagsterInstance.ephemeral()
    assert run_impressions_to_staged(tmp_path, day(6), day(6), instance).success
    assert _accepted(data, 6) == {"x", "ok-6"}
    later = run_impressions_to_staged(tmp_path, day(7), day(7), instance)
    assert _staged_metadata(later)["stale_event_dates"] == [str(day(6))]
    assert run_impressions_to_staged(tmp_path, day(6), day(6), instance).success
    assert _accepted(data, 6) == {"ok-6"} and _staged_quarantine(data, 6) == {"x": "conflicting_duplicate"}


def test_a_late_copy_of_an_earlier_date_makes_a_later_staged_date_stale(tmp_path: Path) -> None:
    """The same from the other side: a run of D1+2..D1+6 accepts x on D1+2; a run of D1+1 then lands
    x's copy dated D1 (arriving D1+1), a date it does not stage."""
    write_reference(tmp_path, day(-5), day(20))
    write_raw(tmp_path, "impressions", str(day(2)), [impression("x", at(2)), impression("ok-2", at(2))])
    instance = dg.DagsterInstance.ephemeral()
    assert run_impressions_to_staged(tmp_path, day(2), day(6), instance).success
    write_raw(tmp_path, "impressions", str(day(1)), [impression("x", at(0), price=7)])
    later = run_impressions_to_staged(tmp_path, day(1), day(1), instance)
    assert _staged_metadata(later)["stale_event_dates"] == [str(day(2))]


def test_removing_a_copy_on_a_date_never_staged_makes_its_partners_date_stale(tmp_path: Path) -> None:
    """x on D1+3 (landed by a run of D1, never staged) and on D1+6; a run of D1+6 rejects x. Then
    D1+3's file is removed and D1..D1+3 re-run: D1+6's rejection rested on the copy that is gone, and
    only D1+6's own quarantine remembers x, so it must still be reported."""
    write_reference(tmp_path, day(-5), day(20))
    write_raw(tmp_path, "impressions", str(day(3)), [impression("x", at(3))], "x.jsonl")
    write_raw(tmp_path, "impressions", str(day(6)), [impression("x", at(6), price=7), impression("ok-6", at(6))])
    data, instance = DataDir.at(tmp_path), dg.DagsterInstance.ephemeral()
    assert run_impressions_to_staged(tmp_path, day(0), day(0), instance).success
    assert run_impressions_to_staged(tmp_path, day(6), day(6), instance).success
    assert _staged_quarantine(data, 6) == {"x": "conflicting_duplicate"}
    (data.raw_partition("impressions", day(3)) / "x.jsonl").unlink()
    later = run_impressions_to_staged(tmp_path, day(0), day(3), instance)
    assert _staged_metadata(later)["stale_event_dates"] == [str(day(6))]
    assert run_impressions_to_staged(tmp_path, day(6), day(6), instance).success
    assert _accepted(data, 6) == {"x", "ok-6"}


def _reject_x_then_remove_its_partner(data: DataDir, *, staged: int, removed: int) -> None:
    """Stage D1+``staged``, which rejects x against its differing copy on D1+``removed`` (x.jsonl), then
    remove that copy and land its day again: x's copies left on D1+``staged`` become an orphan."""
    stage_days(data, "impressions", [day(staged)], load_reference(data), buckets=4)
    assert _staged_quarantine(data, staged) == {"x": "conflicting_duplicate"}
    (data.raw_partition("impressions", day(removed)) / "x.jsonl").unlink()
    _land(data, range(removed, removed + 1))


def test_far_copies_and_orphans_found_in_one_call(tmp_path: Path) -> None:
    """y's copies lie 8 days apart (far copies) and x's partner of D1+6 is removed (an orphan) in the
    same run: both are found on one DuckDB connection (the copies' count once left a result open,
    and the orphans' query failed with "connection has an unfinished result")."""
    write_reference(tmp_path, day(-5), day(20))
    write_raw(tmp_path, "impressions", str(day(3)), [impression("x", at(3))], "x.jsonl")
    write_raw(tmp_path, "impressions", str(day(6)), [impression("x", at(6), price=7), impression("ok-6", at(6))])
    write_raw(tmp_path, "impressions", str(day(0)), [impression("y", at(0))])
    write_raw(tmp_path, "impressions", str(day(8)), [impression("y", at(8), price=3)])
    data = DataDir.at(tmp_path)
    _land(data, range(0, 12))
    _reject_x_then_remove_its_partner(data, staged=6, removed=3)
    with find_far_conflicts(data, "impressions", [day(i) for i in range(4)], buckets=4) as far:
        assert far.copies.rows() == [("y", day(0)), ("y", day(8))]
        assert far.orphans.rows() == [("x", day(6))]
        assert far.stale_dates(data, [day(i) for i in range(4)]) == [day(6)]


@pytest.mark.parametrize("probe_share", [0.0, 1.0], ids=["reads-every-index-row", "probes-the-runs-hashes"])
def test_a_run_over_a_long_history_finds_the_same_whether_it_probes_or_reads_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe_share: float
) -> None:
    """A short run over a long history reads from the other arrival days' indexes only the rows of the
    hashes it landed and of the ids its dates rejected before (a probe). Both ways find y's copies 36
    days apart, and x's orphan: D1+1 rejected x against its copy on D1+4, which is gone, and x's copy
    left arrived on D1+1, before the run's arrival days (D1+4..D1+8), so only the probe for rejected
    ids reads it."""
    import pipelines.staged.far_conflicts as far_conflicts

    monkeypatch.setattr(far_conflicts, "PROBE_SHARE", probe_share)
    write_reference(tmp_path, day(-5), day(60))
    write_raw(tmp_path, "impressions", str(day(1)), [impression("x", at(1)), impression("ok-1", at(1))])
    write_raw(tmp_path, "impressions", str(day(4)), [impression("x", at(4), price=7)], "x.jsonl")
    write_raw(tmp_path, "impressions", str(day(4)), [impression("y", at(4))])
    write_raw(tmp_path, "impressions", str(day(40)), [impression("y", at(40), price=3)])
    for offset in range(9, 45):  # the long history: ids of their own, on dates far from the run's
        filler = [impression(f"h{offset}-{i}", at(offset)) for i in range(8)]
        write_raw(tmp_path, "impressions", str(day(offset)), filler, "history.jsonl")
    data = DataDir.at(tmp_path)
    _land(data, range(0, 45))
    _reject_x_then_remove_its_partner(data, staged=1, removed=4)
    run = [day(4), day(5)]
    with find_far_conflicts(data, "impressions", run, buckets=4, chunk_rows=100) as far:
        assert far.copies.rows() == [("y", day(4)), ("y", day(40))]
        assert far.orphans.rows() == [("x", day(1))]
        assert far.stale_dates(data, run) == [day(1)]
