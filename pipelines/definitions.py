"""The Dagster code location: every asset, check, job, schedule and sensor of the warehouse."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
from dagster_celery import celery_executor

from pipelines.defs.automation import SCHEDULES, SENSORS
from pipelines.defs.common import DEFAULT_DATA_DIR, DataDirResource
from pipelines.defs.facts import FACTS
from pipelines.defs.kpi_checks import KPI_CHECKS
from pipelines.defs.landing import LANDING
from pipelines.defs.marts import MARTS
from pipelines.defs.quality import QUALITY
from pipelines.defs.reference_sensor import reference_tables_sensor
from pipelines.defs.reports import REPORTS
from pipelines.defs.staged import STAGED
from pipelines.defs.stale_dates_sensor import stale_dates_sensor
from pipelines.defs.warehouse import WAREHOUSE
from pipelines.distributed import CELERY_JOB, celery_executor_config
from pipelines.locked_executor import writer_locked

PIPELINE_JOB = "revenue_pipeline"

# One freshness policy for everything analysts read: a day older than 36 hours is stale.
MART_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=36), warn_window=dt.timedelta(hours=26))

ALL = LANDING + STAGED + FACTS + MARTS + QUALITY + WAREHOUSE + KPI_CHECKS + REPORTS


def _with_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.group_name in ("marts", "warehouse"):
        return spec.replace_attributes(freshness_policy=MART_FRESHNESS)
    return spec


def pipeline_jobs(data_dir: str) -> list[dg.UnresolvedAssetJobDefinition]:
    """The pipeline's two jobs; their runs hold ``data_dir``'s writer lock (pipelines.locked_executor)."""
    return [
        dg.define_asset_job(
            PIPELINE_JOB,
            selection=dg.AssetSelection.all(include_sources=False),
            description="Land, stage, attribute and publish every log for a range of event dates, in one run.",
            executor_def=writer_locked(dg.in_process_executor, data_dir),
        ),
        # The same selection with every step sent to Celery workers over Redis (docs/distributed.md):
        # run it with `revwh run --executor celery` or launch it from the UI while workers are up.
        dg.define_asset_job(
            CELERY_JOB,
            selection=dg.AssetSelection.all(include_sources=False),
            description="revenue_pipeline with each step executed by a Celery worker (broker: REVWH_CELERY_BROKER).",
            executor_def=writer_locked(celery_executor, data_dir).configured(
                celery_executor_config(), name="revwh_celery"
            ),
        ),
    ]


def build_definitions(
    data_dir: str | os.PathLike[str] | None = None, *, loggers: dict[str, dg.LoggerDefinition] | None = None
) -> dg.Definitions:
    """Definitions bound to one data directory (REVWH_DATA_DIR, else data/demo); loggers replace Dagster's
    default console logger for every job (the CLI's shorter failures, pipelines.console_log)."""
    data_dir = str(data_dir or os.environ.get("REVWH_DATA_DIR", DEFAULT_DATA_DIR))
    defs = dg.Definitions(
        assets=[d for d in ALL if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in ALL if isinstance(d, dg.AssetChecksDefinition)],
        jobs=pipeline_jobs(data_dir),
        schedules=SCHEDULES,
        sensors=[*SENSORS, reference_tables_sensor, stale_dates_sensor],
        resources={"revwh": DataDirResource(data_dir=data_dir)},
        # What the UI's Materialize and backfills run (Dagster's implicit asset job): in-process, like
        # revenue_pipeline. The multiprocess default spawns a process per step (1-10 s each, 55 steps),
        # and the steps already use both cores with threads. Its runs hold the writer lock too.
        executor=writer_locked(dg.in_process_executor, data_dir),
        loggers=loggers,
    )
    return defs.map_asset_specs(func=_with_freshness)


defs = build_definitions()
