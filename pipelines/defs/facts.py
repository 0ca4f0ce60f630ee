"""facts/revenue_events: one row per accepted event with stream, region and USD measures."""

import dagster as dg

from pipelines.contract import LOGS
from pipelines.defs.common import DAILY, DataDirResource, key, partition_dates
from pipelines.defs.schema_metadata import facts_schema
from pipelines.defs.staged import staged_key
from pipelines.facts.revenue import build_facts
from pipelines.parallel import thread_map
from pipelines.quality.reconcile import facts_problems

FACTS_KEY = dg.AssetKey(["facts", "revenue_events"])


@dg.asset(
    key=FACTS_KEY,
    partitions_def=DAILY,
    group_name="facts",
    kinds={"polars", "parquet"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[staged_key(log) for log in LOGS],
    description=(
        "Revenue attribution (SPEC §3): every accepted event of the date with its stream, country, region, "
        "FX-converted amount and gross revenue, platform fees, creator payouts and net revenue in USD."
    ),
    metadata={"dagster/column_schema": facts_schema()},
)
def revenue_events(context: dg.AssetExecutionContext, revwh: DataDirResource) -> dg.MaterializeResult:
    data, ref = revwh.data(), revwh.reference()
    rows = 0
    days = partition_dates(context)
    counts = thread_map(lambda day: build_facts(data, day, ref), days)  # days in parallel: both cores
    for day, n in zip(days, counts, strict=True):
        rows += n
        context.log.info(f"facts {day}: {n} revenue events")
        context.log_event(
            dg.AssetObservation(asset_key=FACTS_KEY, partition=key(day), metadata={"dagster/row_count": n})
        )
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


@dg.asset_check(
    asset=FACTS_KEY,
    name="one_fact_per_staged_event",
    blocking=True,
    description="Facts have exactly one row per staged event of every log, each with a region and net revenue.",
)
def facts_match_staged(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
    problems = [p for day in partition_dates(context) for p in facts_problems(revwh.data(), day)]
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": dg.MetadataValue.json(problems)})


FACTS = [revenue_events, facts_match_staged]
