"""stale_dates_sensor: one run per event date that staged materialisations report stale, once."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import PIPELINE_JOB, build_definitions
from pipelines.defs.automation import SOURCE_TAG
from pipelines.defs.stale_dates_sensor import stale_dates_sensor


def _report(instance: dg.DagsterInstance, log: str, stale: list[str] | None) -> None:
    metadata = {"dagster/row_count": 1} | (
        {"stale_event_dates": dg.MetadataValue.json(stale)} if stale is not None else {}
    )
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["staged", log], metadata=metadata))


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    return stale_dates_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def _ranges(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests or []
    ]


def test_requests_one_run_per_stale_date_and_each_report_once() -> None:
    with dg.instance_for_test() as instance:
        _report(instance, "impressions", ["2025-03-01"])
        _report(instance, "orders", ["2025-03-01", "2025-03-04"])
        _report(instance, "gifts", [])
        _report(instance, "fund_payouts", None)  # materialised before the metadata existed
        first = _tick(instance, None)
        assert _ranges(first) == [("2025-03-01", "2025-03-01"), ("2025-03-04", "2025-03-04")]
        assert {r.tags[SOURCE_TAG] for r in first.run_requests} == {"stale_dates_sensor"}
        again = _tick(instance, first.cursor)
        assert not again.run_requests and again.cursor == first.cursor
        _report(instance, "impressions", [])  # the re-run found the date consistent
        _report(instance, "coin_purchases", ["2025-02-20"])
        later = _tick(instance, again.cursor)
        assert _ranges(later) == [("2025-02-20", "2025-02-20")]
        assert int(later.cursor) > int(first.cursor)


def test_registered_on_the_pipeline_job_and_running_by_default() -> None:
    sensor = build_definitions("/tmp/unused").resolve_sensor_def("stale_dates_sensor")
    assert sensor.job_name == PIPELINE_JOB
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
