"""stale_dates_sensor: re-runs the event dates a later run found conflicting copies on.

Rule 5 rejects every copy of an id whose copies differ, however far apart their event dates
lie. A run that stages a copy of an id already accepted on a date outside the run rejects its
own copy but cannot rewrite that date: the ``staged/<log>`` materialisation lists it under
``stale_event_dates`` (see ``pipelines.staged.far_conflicts``). Scheduled runs have nobody
reading their warnings, so this sensor reads that metadata and requests one run per date.
The cursor is the storage id of the last materialisation read, so each is acted on once; a
re-run finds the date consistent and reports nothing, so requests never loop.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipelines.contract import LOGS
from pipelines.defs.automation import PIPELINE_JOB_NAME, range_tags
from pipelines.defs.staged import staged_key

SOURCE = "stale_dates_sensor"
PAGE = 1000


def stale_dates_since(instance: dg.DagsterInstance, after: int) -> tuple[dict[dt.date, set[str]], int]:
    """Stale dates reported by staged materialisations with storage id > ``after`` (and by which
    assets), and the newest storage id read."""
    stale: dict[dt.date, set[str]] = {}
    newest = after
    for log in LOGS:
        records_filter = dg.AssetRecordsFilter(asset_key=staged_key(log), after_storage_id=after)
        cursor = None
        while True:
            page = instance.fetch_materializations(records_filter, limit=PAGE, cursor=cursor, ascending=True)
            for record in page.records:
                newest = max(newest, record.storage_id)
                value = record.asset_materialization.metadata.get("stale_event_dates")
                for day in value.value if value is not None else []:
                    stale.setdefault(dt.date.fromisoformat(day), set()).add(f"staged/{log}")
            if not page.has_more:
                break
            cursor = page.cursor
    return stale, newest


@dg.sensor(
    name=SOURCE,
    job_name=PIPELINE_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every minute: reads the `stale_event_dates` of new staged materialisations (dates outside a "
        "run whose rule 5 outcome that run changed: a new copy of one of their ids on another date, or "
        "the removal of the copies they conflicted with) and requests one run per date."
    ),
)
def stale_dates_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    after = int(context.cursor or 0)
    stale, newest = stale_dates_since(context.instance, after)
    requests = [
        dg.RunRequest(run_key=f"stale-{day.isoformat()}-{newest}", tags=range_tags(day, day, SOURCE))
        for day in sorted(stale)
    ]
    for day in sorted(stale):
        context.log.info(f"re-running event date {day}: {', '.join(sorted(stale[day]))} reported it stale")
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no stale event dates reported"), cursor=str(newest))
    return dg.SensorResult(run_requests=requests, cursor=str(newest))
