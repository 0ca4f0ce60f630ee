"""marts/<name>: one asset per SQL file in sql/marts, partitioned by event date."""

import dagster as dg

from pipelines.defs.common import DAILY, DataDirResource, key, partition_dates
from pipelines.defs.facts import FACTS_KEY
from pipelines.defs.schema_metadata import MartSchemaProbe
from pipelines.duck import compute_connection
from pipelines.marts.build import (
    MARTS_SQL_DIR,
    MartSqlInvalid,
    build_mart_partition,
    mart_description,
    mart_names,
)
from pipelines.quality.reconcile import MEASURES, mart_problems

# Marts whose measures must add up to the facts' totals (SPEC §5), and the columns that check sums.
RECONCILED_MARTS = ("revenue_by_stream", "revenue_by_region")
RECONCILED_COLUMNS = (*MEASURES, "event_count")


def mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def _checked_schema(name: str, probe: MartSchemaProbe) -> dg.TableSchema | None:
    """The mart's columns; it must keep ``event_date``, the key the warehouse replaces its partitions by,
    and a reconciled mart the measures its check sums."""
    schema = probe.schema(name)
    if schema is None:
        return None
    columns = {column.name for column in schema.columns}
    if "event_date" not in columns:
        raise MartSqlInvalid(
            f"{MARTS_SQL_DIR / f'{name}.sql'}: the mart has no event_date column; every mart keeps the event "
            "date of its rows (select event_date and group by it), so that a run can replace its dates in the warehouse"
        )
    missing = [c for c in RECONCILED_COLUMNS if c not in columns] if name in RECONCILED_MARTS else []
    if missing:
        raise MartSqlInvalid(
            f"{MARTS_SQL_DIR / f'{name}.sql'}: the mart is in RECONCILED_MARTS (pipelines/defs/marts.py) but has no "
            f"{', '.join(missing)} column{'s' if len(missing) > 1 else ''}; its reconciles_with_facts check sums "
            f"{', '.join(RECONCILED_COLUMNS)} against the facts"
        )
    return schema


def build_mart_asset(name: str, probe: MartSchemaProbe | None = None) -> list:
    """The mart's asset, and its reconciliation check for the marts SPEC §5 sums."""
    if probe is None:
        with MartSchemaProbe() as own:
            return build_mart_asset(name, own)
    schema = _checked_schema(name, probe)

    @dg.asset(
        key=mart_key(name),
        partitions_def=DAILY,
        group_name="marts",
        kinds={"duckdb", "sql", "parquet"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[FACTS_KEY],
        description=mart_description(name),
        metadata={
            "sql_file": dg.MetadataValue.path(str(MARTS_SQL_DIR / f"{name}.sql")),
            **({"dagster/column_schema": schema} if schema else {}),
        },
    )
    def _mart(context: dg.AssetExecutionContext, revwh: DataDirResource) -> dg.MaterializeResult:
        data = revwh.data()
        rows = 0
        with compute_connection(data) as con:
            counts = [(day, build_mart_partition(data, name, day, con)) for day in partition_dates(context)]
        for day, n in counts:
            rows += n
            context.log_event(
                dg.AssetObservation(asset_key=mart_key(name), partition=key(day), metadata={"dagster/row_count": n})
            )
        return dg.MaterializeResult(metadata={"dagster/row_count": rows})

    defs: list = [_mart]
    if name in RECONCILED_MARTS:

        @dg.asset_check(
            asset=mart_key(name),
            name="reconciles_with_facts",
            blocking=True,
            description="Every measure and event_count sums to the facts' total for the date, to the cent.",
        )
        def _reconcile(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
            problems = [p for day in partition_dates(context) for p in mart_problems(revwh.data(), name, day)]
            return dg.AssetCheckResult(passed=not problems, metadata={"problems": dg.MetadataValue.json(problems)})

        defs.append(_reconcile)
    return defs


def _build_marts() -> list:
    with MartSchemaProbe() as probe:
        return [d for name in mart_names() for d in build_mart_asset(name, probe)]


MARTS = _build_marts()
MART_KEYS = [mart_key(name) for name in mart_names()]
