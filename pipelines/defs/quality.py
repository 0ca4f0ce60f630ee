"""quality/quarantine: every rejected copy with its reason, per day (landing + staged)."""

import dagster as dg
import polars as pl

from pipelines.contract import LOGS, Reason
from pipelines.defs.common import DAILY, DataDirResource, key, partition_dates
from pipelines.defs.landing import landing_key
from pipelines.defs.staged import staged_key

QUARANTINE_KEY = dg.AssetKey(["quality", "quarantine"])


def quarantine_counts(revwh: DataDirResource, day) -> dict[str, int]:
    """Rejected copies of the day, 'log/reason' → count: landing rejects that arrived that day
    plus staged rejects of that event date."""
    data = revwh.data()
    files = [data.quarantine_file("landing", log, day) for log in LOGS]
    files += [data.quarantine_file("staged", log, day) for log in LOGS]
    files = [f for f in files if f.exists()]
    if not files:
        return {}
    counts = pl.scan_parquet(files, glob=False).group_by("log", "reason").len().collect().sort("log", "reason")
    return {f"{log}/{reason}": int(n) for log, reason, n in counts.iter_rows()}


@dg.asset(
    key=QUARANTINE_KEY,
    partitions_def=DAILY,
    group_name="quality",
    kinds={"duckdb", "parquet"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[landing_key(log) for log in LOGS] + [staged_key(log) for log in LOGS],
    description=(
        "quality.quarantine (SPEC §5): one row per rejected copy with log, event_id, arrival_date, the reason "
        "of the first rule of SPEC §4 it failed, and the raw line. Never silently dropped."
    ),
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn("log", "VARCHAR"),
                dg.TableColumn("event_id", "VARCHAR"),
                dg.TableColumn("arrival_date", "DATE"),
                dg.TableColumn("reason", "VARCHAR", description=", ".join(r.value for r in Reason)),
                dg.TableColumn("raw", "VARCHAR"),
                dg.TableColumn("event_date", "DATE"),
                dg.TableColumn("stage", "VARCHAR", description="landing (rules 1–4) or staged (rules 5–9)"),
                dg.TableColumn("source_file", "VARCHAR"),
            ]
        )
    },
)
def quarantine(context: dg.AssetExecutionContext, revwh: DataDirResource) -> dg.MaterializeResult:
    total: dict[str, int] = {}
    for day in partition_dates(context):
        counts = quarantine_counts(revwh, day)
        for k, n in counts.items():
            total[k] = total.get(k, 0) + n
        context.log_event(
            dg.AssetObservation(
                asset_key=QUARANTINE_KEY,
                partition=key(day),
                metadata={
                    "dagster/row_count": sum(counts.values()),
                    "by_log_reason": dg.MetadataValue.json(counts),
                },
            )
        )
    return dg.MaterializeResult(
        metadata={"dagster/row_count": sum(total.values()), "by_log_reason": dg.MetadataValue.json(total)}
    )


@dg.asset_check(
    asset=QUARANTINE_KEY,
    name="reasons_are_known",
    blocking=True,
    description="Every quarantine row carries one of the nine reasons of SPEC §4.",
)
def reasons_are_known(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
    known = {r.value for r in Reason}
    unknown = sorted(
        {
            k
            for day in partition_dates(context)
            for k in quarantine_counts(revwh, day)
            if k.split("/", 1)[1] not in known
        }
    )
    return dg.AssetCheckResult(passed=not unknown, metadata={"unknown": dg.MetadataValue.json(unknown)})


QUALITY = [quarantine, reasons_are_known]
