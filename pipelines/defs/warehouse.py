"""warehouse: publish warehouse.duckdb (marts and quarantine tables, facts and staged views) atomically."""

import dagster as dg

from pipelines.defs.common import DAILY, DataDirResource, partition_dates
from pipelines.defs.marts import MART_KEYS
from pipelines.defs.quality import QUARANTINE_KEY
from pipelines.warehouse.publish import PublishScope, publish_warehouse

WAREHOUSE_KEY = dg.AssetKey(["warehouse"])


@dg.asset(
    key=WAREHOUSE_KEY,
    partitions_def=DAILY,
    group_name="warehouse",
    kinds={"duckdb"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    # One writer of warehouse.duckdb at a time (DuckDB locks the file), also when steps run in
    # parallel processes or runs overlap: a Dagster concurrency pool, limited to 1 by dagster.yaml
    # (concurrency.pools.default_limit).
    pool="warehouse",
    deps=[*MART_KEYS, QUARANTINE_KEY],
    description=(
        "`<data>/warehouse.duckdb`, updated from the lake and swapped in with an atomic rename after the "
        "marts pass their checks, so analysts never read a half-written or unreconciled partition: only the "
        "run's own event dates (and their arrival days, for the landing quarantine) are published. "
        "Schemas: marts and quality.quarantine (tables), facts.revenue_events and staged.* (views over Parquet)."
    ),
)
def warehouse(context: dg.AssetExecutionContext, revwh: DataDirResource) -> dg.MaterializeResult:
    # Only the partitions this run wrote and checked: a failed or killed run's files of other dates stay
    # unpublished until a run of those dates passes its checks.
    path = publish_warehouse(
        revwh.data(), scope=PublishScope.of_run(partition_dates(context)), on_note=context.log.warning
    )
    context.log.info(f"published {path}")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path))})


WAREHOUSE = [warehouse]
