"""The daily schedule and the raw-files sensor: which partitions each tick requests, and when not.

Ticks are evaluated with Dagster's own ``build_schedule_context`` /
``build_sensor_context`` on hand-built data directories; no run is launched
here (tests/test_webserver.py launches one through the webserver).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipelines.definitions import PIPELINE_JOB, build_definitions
from pipelines.defs.automation import (
    ARRIVAL_DAYS_TAG,
    DAILY_CRON,
    PIPELINE_JOB_NAME,
    SETTLE_SECONDS,
    SOURCE_TAG,
    RawCursor,
    build_raw_files_sensor,
    daily_revenue_pipeline,
    evaluate_raw_changes,
    last_complete_day,
    raw_files_sensor,
)
from pipelines.defs.common import DAILY, DataDirResource
from pipelines.defs.warehouse import warehouse
from pipelines.lake import DataDir
from pipelines.landing.land import land_partition
from tests.builders import impression, order, write_raw, write_reference
from tests.tiny_data import backdate_raw

REPO = Path(__file__).resolve().parents[1]
D = dt.date.fromisoformat


# --------------------------------------------------------------------------- helpers


def make_data(root: Path, arrivals: dict[str, list[str]]) -> Path:
    """A data dir with reference tables and one impressions file per (arrival day, name)."""
    write_reference(root, D("2024-12-20"), D("2025-04-30"))
    for day, names in arrivals.items():
        for name in names:
            write_raw(root, "impressions", day, [impression(f"{day}-{name}", f"{day}T08:00:00Z")], name=name)
    backdate_raw(root)
    return root


def resources(root: Path) -> dict[str, object]:
    return {"revwh": DataDirResource(data_dir=str(root))}


def tick(root: Path, cursor: str | None, sensor: dg.SensorDefinition | None = None) -> dg.SensorResult:
    """One evaluation of the sensor the way the daemon calls it (settle time 0 unless a sensor is given)."""
    sensor = sensor or build_raw_files_sensor("test_sensor", settle_seconds=0)
    # No instance: the sensor never touches one, and a SQLite test instance costs a second per tick.
    result = sensor(dg.build_sensor_context(cursor=cursor, resources=resources(root)))
    assert isinstance(result, dg.SensorResult)
    return result


def requested_range(result: dg.SensorResult) -> tuple[str, str]:
    assert len(result.run_requests) == 1, result
    tags = result.run_requests[0].tags
    return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]


def cursor_days(result: dg.SensorResult) -> dict[str, str]:
    return json.loads(result.cursor)["days"]


def touch_back(path: Path, seconds: float = 3600) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_data(
        tmp_path / "data",
        {"2025-03-01": ["a.jsonl"], "2025-03-02": ["a.jsonl"], "2025-03-05": ["a.jsonl", "b.jsonl.gz"]},
    )


# --------------------------------------------------------------------------- wiring


def test_definitions_register_schedule_and_sensor_on_the_pipeline_job() -> None:
    defs = build_definitions("data/unused")
    assert PIPELINE_JOB_NAME == PIPELINE_JOB
    schedule = defs.resolve_schedule_def("daily_revenue_pipeline")
    sensor = defs.resolve_sensor_def("raw_files_sensor")
    assert schedule.job_name == sensor.job_name == PIPELINE_JOB
    assert schedule.cron_schedule == DAILY_CRON and schedule.execution_timezone == "UTC"
    # `make ui` runs the daemon: both tick without anyone switching them on.
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 60


def test_every_asset_backfills_as_one_run() -> None:
    """A backfill launched from the UI over a date range must become ONE run, like `revwh run`."""
    graph = build_definitions("data/unused").resolve_asset_graph()
    # Unpartitioned assets (e.g. the report) run once per run anyway; the policy matters for the daily ones.
    policies = {n.key.to_user_string(): n.backfill_policy for n in graph.asset_nodes if n.is_partitioned}
    assert policies, "no assets"
    wrong = {k: p for k, p in policies.items() if p != dg.BackfillPolicy.single_run()}
    assert not wrong, f"assets without BackfillPolicy.single_run: {wrong}"


def test_last_complete_day_is_dagsters_last_daily_partition() -> None:
    assert last_complete_day(dt.datetime.now(dt.UTC)).isoformat() == DAILY.get_last_partition_key()


def test_dagster_yaml_template_queues_one_run_at_a_time(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # validates the file against Dagster's schema
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 1


def test_dagster_yaml_template_limits_the_warehouse_pool_to_one_writer(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity.value == "op"
        # the daemon frees slots that ended runs still hold (pipelines/pool_slots.py covers killed CLI runs)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60
    finally:
        instance.dispose()
    assert warehouse.op.pool == "warehouse"  # the step that writes warehouse.duckdb holds that pool


# --------------------------------------------------------------------------- schedule


def schedule_tick(root: Path, when: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    return daily_revenue_pipeline(dg.build_schedule_context(scheduled_execution_time=when, resources=resources(root)))


def test_schedule_lands_yesterday_and_rebuilds_the_four_event_dates_it_can_change(data: Path) -> None:
    request = schedule_tick(data, dt.datetime(2025, 3, 6, 1, 0, tzinfo=dt.UTC))
    assert isinstance(request, dg.RunRequest)
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2025-03-02"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2025-03-05"
    assert request.tags[SOURCE_TAG] == "schedule"
    assert request.run_key == "daily-2025-03-05"
    # The range is a valid range of the job's daily partitions.
    keys = DAILY.get_partition_keys_in_range(dg.PartitionKeyRange("2025-03-02", "2025-03-05"))
    assert keys == ["2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05"]


def test_schedule_uses_the_utc_date_of_the_tick(data: Path) -> None:
    # 01:00 UTC on 2025-03-06 is still 2025-03-05 in New York: the UTC date decides.
    when = dt.datetime(2025, 3, 6, 1, 0, tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    request = schedule_tick(data, when)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2025-03-05"


def test_schedule_skips_a_day_without_arrivals(data: Path) -> None:
    result = schedule_tick(data, dt.datetime(2025, 3, 5, 1, 0, tzinfo=dt.UTC))  # nothing arrived on 03-04
    assert isinstance(result, dg.SkipReason)
    assert "2025-03-04" in (result.skip_message or "")


def test_schedule_skips_without_reference_tables(data: Path) -> None:
    shutil.rmtree(data / "reference")
    result = schedule_tick(data, dt.datetime(2025, 3, 6, 1, 0, tzinfo=dt.UTC))
    assert isinstance(result, dg.SkipReason)
    assert "reference" in (result.skip_message or "")


def test_schedule_range_starts_no_earlier_than_the_first_partition(tmp_path: Path) -> None:
    root = make_data(tmp_path / "data", {"2025-01-01": ["a.jsonl"]})
    request = schedule_tick(root, dt.datetime(2025, 1, 2, 1, 0, tzinfo=dt.UTC))
    assert isinstance(request, dg.RunRequest)
    assert requested_range(dg.SensorResult(run_requests=[request])) == ("2025-01-01", "2025-01-01")


# --------------------------------------------------------------------------- sensor


def test_first_tick_requests_every_arrival_day_in_one_run(data: Path) -> None:
    result = tick(data, None)
    # arrival days 03-01, 03-02, 03-05 -> event dates 02-26..03-05, unchanged days in between included
    assert requested_range(result) == ("2025-02-26", "2025-03-05")
    request = result.run_requests[0]
    assert request.tags[SOURCE_TAG] == "sensor"
    assert request.tags[ARRIVAL_DAYS_TAG] == "2025-03-01,2025-03-02,2025-03-05"
    assert request.run_key and request.run_key.startswith("raw-1-")
    assert sorted(cursor_days(result)) == ["2025-03-01", "2025-03-02", "2025-03-05"]


def test_a_repeated_tick_requests_nothing(data: Path) -> None:
    first = tick(data, None)
    second = tick(data, first.cursor)
    assert second.run_requests == []
    assert second.skip_reason is not None and "no new or changed" in (second.skip_reason.skip_message or "")
    assert second.cursor == first.cursor
    assert tick(data, second.cursor).run_requests == []


def test_same_cursor_gives_the_same_run_key(data: Path) -> None:
    """A tick retried after a crash re-submits the same run key, which Dagster de-duplicates."""
    assert tick(data, None).run_requests[0].run_key == tick(data, None).run_requests[0].run_key


def test_new_file_in_an_old_day_is_requested_once(data: Path) -> None:
    cursor = tick(data, None).cursor
    touch_back(
        write_raw(data, "orders", "2025-03-01", [order("late-order", "2025-02-27T09:00:00Z")], name="redelivery.jsonl")
    )
    result = tick(data, cursor)
    assert requested_range(result) == ("2025-02-26", "2025-03-01")
    assert result.run_requests[0].tags[ARRIVAL_DAYS_TAG] == "2025-03-01"
    assert tick(data, result.cursor).run_requests == []


def test_changed_file_size_is_requested_again(data: Path) -> None:
    cursor = tick(data, None).cursor
    path = data / "raw" / "impressions" / "dt=2025-03-02" / "a.jsonl"
    stat = path.stat()
    with path.open("a") as f:
        f.write(json.dumps(impression("extra", "2025-03-02T09:00:00Z")) + "\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the size alone must tell
    result = tick(data, cursor)
    assert requested_range(result) == ("2025-02-27", "2025-03-02")
    assert tick(data, result.cursor).run_requests == []


def test_touched_file_counts_as_changed(data: Path) -> None:
    """Landing's skip uses the same fingerprint, so a re-written file with a new mtime is re-landed too."""
    cursor = tick(data, None).cursor
    touch_back(data / "raw" / "impressions" / "dt=2025-03-05" / "a.jsonl", seconds=120)
    assert requested_range(tick(data, cursor)) == ("2025-03-02", "2025-03-05")


def test_removed_files_are_requested_and_a_vanished_day_is_forgotten(data: Path) -> None:
    cursor = tick(data, None).cursor
    (data / "raw" / "impressions" / "dt=2025-03-05" / "b.jsonl.gz").unlink()
    result = tick(data, cursor)
    assert requested_range(result) == ("2025-03-02", "2025-03-05")
    shutil.rmtree(data / "raw" / "impressions" / "dt=2025-03-02")
    result = tick(data, result.cursor)
    assert requested_range(result) == ("2025-02-27", "2025-03-02")  # re-lands the day empty, once
    assert "2025-03-02" not in cursor_days(result)
    assert tick(data, result.cursor).run_requests == []


def test_a_day_that_returns_to_an_earlier_state_gets_a_new_run_key(data: Path) -> None:
    """Dagster skips a run key it has seen; the cursor's sequence keeps A -> B -> A from being lost."""
    first = tick(data, None)
    extra = write_raw(data, "impressions", "2025-03-01", [impression("x", "2025-03-01T01:00:00Z")], name="x.jsonl")
    touch_back(extra)
    second = tick(data, first.cursor)
    extra.unlink()
    third = tick(data, second.cursor)
    keys = [r.run_requests[0].run_key for r in (first, second, third)]
    assert len(set(keys)) == 3, keys
    assert cursor_days(third)["2025-03-01"] == cursor_days(first)["2025-03-01"]


def test_two_changed_days_make_one_run_over_the_span(data: Path) -> None:
    cursor = tick(data, None).cursor
    for day in ("2025-03-01", "2025-03-05"):
        touch_back(write_raw(data, "orders", day, [order(f"o-{day}", f"{day}T09:00:00Z")]))
    result = tick(data, cursor)
    assert requested_range(result) == ("2025-02-26", "2025-03-05")
    assert result.run_requests[0].tags[ARRIVAL_DAYS_TAG] == "2025-03-01,2025-03-05"


def test_files_landing_does_not_read_and_odd_folders_are_ignored(data: Path) -> None:
    cursor = tick(data, None).cursor
    folder = data / "raw" / "impressions" / "dt=2025-03-01"
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-1.jsonl.tmp").write_text("{}\n")
    (data / "raw" / "impressions" / "dt=not-a-date").mkdir()
    touch_back(write_raw(data, "impressions", "20250302", [impression("odd", "2025-03-02T01:00:00Z")]))
    (data / "raw" / "impressions" / "dt=2024-12-31").mkdir()  # before the first partition
    touch_back(write_raw(data, "impressions", "2024-12-31", [impression("old", "2024-12-31T01:00:00Z")]))
    (data / "raw" / "unknown_log" / "dt=2025-03-01").mkdir(parents=True)
    (data / "raw" / "unknown_log" / "dt=2025-03-01" / "x.jsonl").write_text("{}\n")
    assert tick(data, cursor).run_requests == []


def test_without_cursor_days_already_landed_as_they_are_are_not_requested(data: Path) -> None:
    """Starting the sensor on a data dir that `revwh run` processed must not rerun everything."""
    dd = DataDir.at(data)
    for day in ("2025-03-01", "2025-03-02"):
        land_partition(dd, "impressions", D(day))
    result = tick(data, None)
    assert requested_range(result) == ("2025-03-02", "2025-03-05")
    assert result.run_requests[0].tags[ARRIVAL_DAYS_TAG] == "2025-03-05"
    assert sorted(cursor_days(result)) == ["2025-03-01", "2025-03-02", "2025-03-05"]


def test_nothing_new_on_an_already_landed_dir_stores_a_baseline_cursor(tmp_path: Path) -> None:
    root = make_data(tmp_path / "data", {"2025-03-01": ["a.jsonl"]})
    land_partition(DataDir.at(root), "impressions", D("2025-03-01"))
    result = tick(root, None)
    assert result.run_requests == []
    assert cursor_days(result) == {"2025-03-01": RawCursor.parse(result.cursor).days["2025-03-01"]}


def test_files_still_being_written_wait_for_a_later_tick(data: Path) -> None:
    cursor = tick(data, None).cursor
    fresh = write_raw(data, "orders", "2025-03-02", [order("fresh", "2025-03-02T09:00:00Z")], name="fresh.jsonl")
    waiting = tick(data, cursor, sensor=raw_files_sensor)  # the real sensor: SETTLE_SECONDS
    assert waiting.run_requests == []
    assert "settle" in (waiting.skip_reason.skip_message or "")
    assert waiting.cursor == cursor  # not recorded, so not lost
    touch_back(fresh, SETTLE_SECONDS + 1)
    assert requested_range(tick(data, waiting.cursor, sensor=raw_files_sensor)) == ("2025-02-27", "2025-03-02")


def test_todays_arrivals_rebuild_the_complete_event_dates_only(tmp_path: Path) -> None:
    """Arrival day A = today: event date A has no partition yet; A-3..A-1 are requested, landing
    picks up today's folder as a look-ahead day, and tomorrow's schedule run closes event date A."""
    root = make_data(tmp_path / "data", {"2025-03-10": ["a.jsonl"]})
    now = dt.datetime(2025, 3, 10, 15, 0, tzinfo=dt.UTC)
    decision = evaluate_raw_changes(DataDir.at(root), None, now=now, settle_seconds=0)
    assert decision.run_request is not None
    tags = decision.run_request.tags
    assert (tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]) == ("2025-03-07", "2025-03-09")


def test_arrival_days_without_any_event_date_partition_wait(tmp_path: Path) -> None:
    root = make_data(tmp_path / "data", {"2025-03-20": ["a.jsonl"]})
    now = dt.datetime(2025, 3, 10, 15, 0, tzinfo=dt.UTC)  # 03-20 - 3 > 03-09, the last partition
    decision = evaluate_raw_changes(DataDir.at(root), None, now=now, settle_seconds=0)
    assert decision.run_request is None
    assert "no event-date partition yet" in decision.reason
    assert json.loads(decision.cursor)["days"] == {}
    later = evaluate_raw_changes(DataDir.at(root), decision.cursor, now=now + dt.timedelta(days=10), settle_seconds=0)
    assert later.run_request is not None


def test_missing_reference_tables_defer_the_request(data: Path) -> None:
    shutil.move(data / "reference", data / "reference.off")
    result = tick(data, None)
    assert result.run_requests == []
    assert "reference" in (result.skip_reason.skip_message or "")
    shutil.move(data / "reference.off", data / "reference")
    assert requested_range(tick(data, result.cursor)) == ("2025-02-26", "2025-03-05")


def test_missing_data_dir_is_a_skip_not_an_error(tmp_path: Path) -> None:
    result = tick(tmp_path / "nowhere", None)
    assert result.run_requests == []


@pytest.mark.parametrize("cursor", [json.dumps({"v": 0, "whatever": True}), "not json", "[1, 2]", '{"v": 1}'])
def test_unknown_cursor_layout_restarts_from_the_lake(data: Path, cursor: str) -> None:
    result = tick(data, cursor)
    assert requested_range(result) == ("2025-02-26", "2025-03-05")


def test_sensor_tick_through_dagster_resolves_against_the_job(data: Path) -> None:
    """evaluate_tick is what the daemon calls: the request must target revenue_pipeline."""
    touch_back(data / "raw" / "impressions" / "dt=2025-03-01" / "a.jsonl")
    with dg.instance_for_test() as instance:
        # Resolved while a live instance exists: Dagster looks up definitions state through it.
        defs = build_definitions(data)
        sensor = defs.resolve_sensor_def("raw_files_sensor")
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=resources(data))
        tick_data = sensor.evaluate_tick(context)
    assert len(tick_data.run_requests) == 1
    request = tick_data.run_requests[0]
    assert request.job_name in (None, PIPELINE_JOB)
    assert request.partition_key_range == dg.PartitionKeyRange("2025-02-26", "2025-03-05")
    assert tick_data.cursor is not None
