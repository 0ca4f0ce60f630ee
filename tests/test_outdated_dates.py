"""A run over START..END lands arrival days START..END+3, which also hold copies of event dates
outside the run (START-3..START-1 and END+1..END+3). It re-stages only its own dates, so a date
staged earlier whose arrival days were landed again from changed raw files keeps its old numbers:
the run reports it (``outdated_event_dates``) and ``revwh run`` prints the command to re-run it."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.bench.runs import execute_core
from pipelines.lake import DataDir
from pipelines.landing.land import land_partition, read_manifest
from pipelines.reference import load_reference
from pipelines.runner import stale_date_notes
from pipelines.staged.stage import landing_fingerprints, outdated_dates, read_staged_stats, stage_days
from tests.builders import impression, write_raw, write_reference
from tests.cli_helpers import run_impressions_to_staged

D1 = dt.date(2025, 3, 1)


def day(offset: int) -> dt.date:
    return D1 + dt.timedelta(days=offset)


def at(offset: int, hour: int = 10) -> str:
    return f"{day(offset)}T{hour:02d}:00:00Z"


def _write_data(root: Path) -> DataDir:
    write_reference(root, day(-5), day(12))
    for offset in range(5):
        write_raw(root, "impressions", str(day(offset)), [impression(f"on-{offset}", at(offset))])
    return DataDir.at(root)


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    return _write_data(tmp_path)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data after a run over days 0..4, whose result reports nothing outdated: both run tests start
    there. Made once; each test runs on in a copy (file times kept, so nothing is landed again, and the
    pipeline keeps no state in the Dagster instance: only the lake)."""
    data = _write_data(tmp_path_factory.mktemp("first_run"))
    assert _outdated(_run(data, 0, 4, dg.DagsterInstance.ephemeral())) == []
    return data.root


def _copy(root: Path, target: Path) -> DataDir:
    shutil.copytree(root, target, dirs_exist_ok=True)
    return DataDir.at(target)


def _run(data: DataDir, first: int, last: int, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """A run of the core job (landing to the core marts and the warehouse, with their checks): the KPI
    marts and the report would add about 3 s a run and nothing to these cases."""
    result = execute_core(data.root, day(first), day(last), instance)
    assert result.success
    return result


def _run_staged(data: DataDir, first: int, last: int, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Landing and staging of impressions only: for the cases that look at nothing past the staged layer."""
    result = run_impressions_to_staged(data.root, day(first), day(last), instance)
    assert result.success
    return result


def _outdated(result: dg.ExecuteInProcessResult) -> list[str]:
    event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["staged", "impressions"])
    )
    return event.materialization.metadata["outdated_event_dates"].value


def _advertising_events(data: DataDir) -> dict[dt.date, int]:
    with duckdb.connect(str(data.warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT event_date, event_count FROM marts.revenue_by_stream WHERE stream = 'advertising'"
        ).fetchall()
    return dict(rows)


def test_staging_records_the_landings_it_read(data: DataDir) -> None:
    for offset in range(4):
        land_partition(data, "impressions", day(offset))
    [stats] = stage_days(data, "impressions", [day(0)], load_reference(data))
    assert stats.landings == landing_fingerprints(data, "impressions", day(0))
    assert sorted(stats.landings) == [str(day(0))]  # arrival days 1..3 hold copies of other dates only
    assert read_staged_stats(data, "impressions", day(0)).landings == stats.landings
    assert outdated_dates(data, "impressions", [day(0), day(1)]) == []  # day 1: never staged
    write_raw(data.root, "impressions", str(day(2)), [impression("late-0", at(0))], "late.jsonl")
    land_partition(data, "impressions", day(2))
    assert outdated_dates(data, "impressions", [day(0)]) == [day(0)]
    stage_days(data, "impressions", [day(0)], load_reference(data))
    assert outdated_dates(data, "impressions", [day(0)]) == []


def test_a_date_staged_before_fingerprints_were_recorded_is_not_reported(data: DataDir) -> None:
    land_partition(data, "impressions", day(0))
    stage_days(data, "impressions", [day(0)], load_reference(data))
    path = data.manifest_file("staged", "impressions", day(0))
    manifest = json.loads(path.read_text())
    del manifest["landings"]  # as written before the fingerprints were recorded
    path.write_text(json.dumps(manifest))
    write_raw(data.root, "impressions", str(day(1)), [impression("late-0", at(0))], "late.jsonl")
    land_partition(data, "impressions", day(1))
    assert outdated_dates(data, "impressions", [day(0)]) == []


def test_a_narrow_run_reports_later_dates_whose_copies_it_landed(first_run: Path, tmp_path: Path) -> None:
    data, instance = _copy(first_run, tmp_path), dg.DagsterInstance.ephemeral()
    assert _advertising_events(data)[day(3)] == 1
    # a late copy of day 3 arrives on day 4; a run over days 0..1 lands arrival days 0..4
    write_raw(data.root, "impressions", str(day(4)), [impression("late-3", at(3, 20))], "late.jsonl")
    narrow = _run(data, 0, 1, instance)
    # arrival day 4 changed: it holds copies of days 3 and 4 (of day 4, unchanged ones: the fingerprint is
    # per arrival day); day 2's window holds it too, but none of day 2's copies
    assert _outdated(narrow) == [str(day(3)), str(day(4))]
    assert stale_date_notes(narrow) == [
        f"event date {d} was staged before its arrival days were landed again from changed raw files "
        f"(staged/impressions); re-run it to publish what they hold now: revwh run --start {d} --end {d}"
        for d in (day(3), day(4))
    ]
    # revwh run passes the directory as the user gave it, so the command can be pasted as it is
    assert stale_date_notes(narrow, "/data/eu 2025")[0].endswith(
        f"revwh run --data-dir '/data/eu 2025' --start {day(3)} --end {day(3)}"
    )
    assert _advertising_events(data)[day(3)] == 1  # the run did not rewrite it
    again = _run(data, 2, 4, instance)
    assert _outdated(again) == [] and stale_date_notes(again) == []
    assert _advertising_events(data)[day(3)] == 2


def test_a_run_reports_earlier_dates_whose_copies_it_landed(first_run: Path, tmp_path: Path) -> None:
    data, instance = _copy(first_run, tmp_path), dg.DagsterInstance.ephemeral()
    write_raw(data.root, "impressions", str(day(3)), [impression("late-1", at(1))], "late.jsonl")
    later = _run(data, 3, 4, instance)
    # arrival day 3 changed and now holds a copy of day 1 (days 0..2 are outside the run; 0 and 2 have no
    # copies there)
    assert _outdated(later) == [str(day(1))]
    _run(data, 0, 2, instance)
    assert _advertising_events(data)[day(1)] == 2
    assert _outdated(_run(data, 3, 4, instance)) == []


def test_landing_an_empty_arrival_day_for_the_first_time_outdates_nothing(tmp_path: Path) -> None:
    """Only arrival days 0 and 1 have raw folders. A run over day 0 lands 0..1 and stages day 0; a later
    run over day 2 lands day 2 (no folder: an empty partition) inside day 0's window. Day 0 can read
    nothing new, so nothing is reported."""
    write_reference(tmp_path, day(-5), day(12))
    for offset in range(2):
        write_raw(tmp_path, "impressions", str(day(offset)), [impression(f"on-{offset}", at(offset))])
    data, instance = DataDir.at(tmp_path), dg.DagsterInstance.ephemeral()
    assert _outdated(_run_staged(data, 0, 0, instance)) == []
    later = _run_staged(data, 2, 2, instance)
    assert _outdated(later) == [] and stale_date_notes(later) == []


def test_an_arrival_day_that_loses_a_dates_copies_outdates_it(data: DataDir) -> None:
    write_raw(data.root, "impressions", str(day(1)), [impression("late-0", at(0))], "late.jsonl")
    for offset in range(4):
        land_partition(data, "impressions", day(offset))
    stage_days(data, "impressions", [day(0)], load_reference(data))
    assert sorted(read_staged_stats(data, "impressions", day(0)).landings) == [str(day(0)), str(day(1))]
    (data.raw_partition("impressions", day(1)) / "late.jsonl").unlink()
    land_partition(data, "impressions", day(1))  # now holds copies of day 1 only
    assert outdated_dates(data, "impressions", [day(0)]) == [day(0)]


def test_a_date_that_recorded_arrival_days_without_its_copies_stays_quiet_while_they_do(data: DataDir) -> None:
    """Staged manifests written before landing_fingerprints left out days without the date's copies list
    every landed day of the window: unchanged, they report nothing; changed, they still do."""
    for offset in range(4):
        land_partition(data, "impressions", day(offset))
    stage_days(data, "impressions", [day(0)], load_reference(data))
    path = data.manifest_file("staged", "impressions", day(0))
    manifest = json.loads(path.read_text())
    manifest["landings"] = {
        str(day(i)): read_manifest(data, "impressions", day(i)).fingerprint for i in range(4)
    }  # as an older version recorded them
    path.write_text(json.dumps(manifest))
    assert outdated_dates(data, "impressions", [day(0)]) == []
    write_raw(data.root, "impressions", str(day(2)), [impression("more-2", at(2))], "more.jsonl")
    land_partition(data, "impressions", day(2))
    assert outdated_dates(data, "impressions", [day(0)]) == [day(0)]
