"""Staged D reads what landed on arrival days D..D+3. A run that materialises staged without landing
(a backfill of the staged group alone, a partition picked in the UI) must not publish a date whose
arrival day holds raw files that were never landed: those copies would be missing without a word."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.definitions import build_definitions
from pipelines.defs.staged import staged_key
from pipelines.lake import DataDir
from pipelines.landing.land import CHANGED_SINCE_LANDED, NOT_LANDED, land_partition, landing_lag
from tests.builders import impression, write_raw, write_reference

D1 = dt.date(2025, 3, 1)


def day(offset: int) -> dt.date:
    return D1 + dt.timedelta(days=offset)


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    write_reference(tmp_path, day(-5), day(12))
    for offset in range(4):
        write_raw(tmp_path, "impressions", str(day(offset)), [impression(f"on-{offset}", f"{day(0)}T10:00:00Z")])
    return DataDir.at(tmp_path)


def _stage_alone(data: DataDir) -> dg.ExecuteInProcessResult:
    job = build_definitions(data.root).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        partition_key=str(day(0)),
        asset_selection=[staged_key("impressions")],
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_landing_lag_tells_never_landed_from_changed_since(data: DataDir) -> None:
    assert landing_lag(data, "impressions", day(0)) == NOT_LANDED
    assert landing_lag(data, "impressions", day(9)) is None  # no raw folder, nothing to land
    land_partition(data, "impressions", day(0))
    assert landing_lag(data, "impressions", day(0)) is None
    write_raw(data.root, "impressions", str(day(0)), [impression("later", f"{day(0)}T11:00:00Z")], name="late.jsonl")
    assert landing_lag(data, "impressions", day(0)) == CHANGED_SINCE_LANDED
    land_partition(data, "impressions", day(0))
    assert landing_lag(data, "impressions", day(0)) is None
    for path in data.raw_partition("impressions", day(0)).iterdir():  # the folder emptied after landing
        path.unlink()
    assert landing_lag(data, "impressions", day(0)) == CHANGED_SINCE_LANDED


def test_staging_a_date_whose_arrival_day_was_never_landed_fails_and_says_what_to_run(data: DataDir) -> None:
    for offset in (0, 1, 3):  # day 2 is never landed
        land_partition(data, "impressions", day(offset))
    result = _stage_alone(data)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert f"arrival day {day(2)} {NOT_LANDED}" in message
    assert f"revwh run --data-dir {data.root} --start {day(0)} --end {day(0)}" in message
    assert not data.staged_file("impressions", day(0)).exists()


def test_an_arrival_day_changed_since_landing_is_staged_as_landed_and_reported(data: DataDir) -> None:
    for offset in range(4):
        land_partition(data, "impressions", day(offset))
    write_raw(data.root, "impressions", str(day(1)), [impression("new", f"{day(0)}T12:00:00Z")], name="new.jsonl")
    result = _stage_alone(data)
    assert result.success
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == staged_key("impressions"))
    assert event.materialization.metadata["arrival_days_changed_since_landed"].value == [str(day(1))]
    assert event.materialization.metadata["dagster/row_count"].value == 4  # the four landed copies, not "new"


def _advertising_events(data: DataDir) -> int:
    with duckdb.connect(str(data.warehouse), read_only=True) as con:
        sql = "SELECT event_count FROM marts.revenue_by_stream WHERE stream = 'advertising' AND event_date = ?"
        return con.execute(sql, [day(0)]).fetchone()[0]


def test_a_file_written_while_the_run_works_does_not_fail_its_landing_check(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer still appending to a look-ahead arrival day (today's folder, for the daily schedule) after
    landing read it: the landing check used to recount the file as it is now and fail the run as if lines were
    lost. The day is reported instead, the run keeps what it landed, and the next run lands the new lines."""
    import pipelines.defs.landing as landing_defs
    from pipelines.runner import execute_range, failure_messages, stale_date_notes

    land = landing_defs.land_days
    raw = data.raw_partition("impressions", day(3)) / "part-0.jsonl"

    def land_then_append(data_, log, days):
        landed = land(data_, log, days)
        if log == "impressions":
            with raw.open("a") as fh:  # after landing read it, before the check recounts it
                fh.write('{"not": "finished yet"}\n')
                fh.write(json.dumps(impression("appended", f"{day(0)}T11:00:00Z")) + "\n")
        return landed

    monkeypatch.setattr(landing_defs, "land_days", land_then_append)
    result = execute_range(data.root, day(0), day(0), log_level="CRITICAL", instance=dg.DagsterInstance.ephemeral())
    assert result.success, failure_messages(result)
    notes = stale_date_notes(result)
    assert any(
        n.startswith(f"arrival day {day(3)} changed after this run landed it (landing/impressions")
        and n.endswith(f"revwh run --start {day(0)} --end {day(3)}")
        for n in notes
    ), notes
    assert _advertising_events(data) == 4  # the four copies landed, not the appended one

    monkeypatch.setattr(landing_defs, "land_days", land)
    result = execute_range(data.root, day(0), day(0), log_level="CRITICAL", instance=dg.DagsterInstance.ephemeral())
    assert result.success and not stale_date_notes(result)
    assert _advertising_events(data) == 5
