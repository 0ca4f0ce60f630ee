"""Asset checks of the KPI marts (ads_by_format, gifts_by_region, ecommerce_by_category,
creator_earnings, kpis_by_region); the arithmetic is in ``pipelines.quality.kpi_reconcile``.

Two checks per mart, with different stakes:

- ``reconciles_with_facts`` is blocking: money that does not add up to the
  core marts' totals must not reach ``warehouse.duckdb`` (the warehouse asset
  depends on every mart, so a failure stops the publish, as for the core marts);
- ``ratios_are_consistent`` only warns: a ratio is derived from sums that are
  already reconciled, so a wrong ratio is worth a look but not worth holding
  back the day's revenue numbers.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg

from pipelines.defs.common import DataDirResource, partition_dates
from pipelines.defs.marts import mart_key
from pipelines.lake import DataDir
from pipelines.marts.build import mart_names
from pipelines.quality.kpi_reconcile import KPI_MARTS, kpi_ratio_problems, kpi_reconcile_problems

ProblemsOfDay = Callable[[DataDir, str, dt.date], list[str]]


def _day_by_day_check(
    name: str, check: str, *, blocking: bool, description: str, problems_of: ProblemsOfDay
) -> dg.AssetChecksDefinition:
    """A check of mart ``name`` that passes when ``problems_of`` finds nothing on any day of the run."""
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN

    @dg.asset_check(asset=mart_key(name), name=check, blocking=blocking, description=description)
    def _check(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
        days = partition_dates(context)
        problems = [p for day in days for p in problems_of(revwh.data(), name, day)]
        return dg.AssetCheckResult(
            passed=not problems,
            severity=severity,
            metadata={"days": len(days), "problems": dg.MetadataValue.json(problems[:50])},
        )

    return _check


def build_kpi_checks(name: str) -> list[dg.AssetChecksDefinition]:
    """The two checks of one KPI mart."""
    return [
        _day_by_day_check(
            name,
            "reconciles_with_facts",
            blocking=True,
            description=(
                "Day totals equal the core marts' (revenue_by_stream / revenue_by_region) and every row equals an "
                "independent polars recomputation from the facts, to the cent; composite columns equal their parts."
            ),
            problems_of=kpi_reconcile_problems,
        ),
        _day_by_day_check(
            name,
            "ratios_are_consistent",
            blocking=False,
            description=(
                "Every ratio equals numerator / denominator from the row's own sums and is NULL exactly when the "
                "denominator is 0 (warning only)."
            ),
            problems_of=kpi_ratio_problems,
        ),
    ]


# Only marts whose SQL file exists get checks, so removing a SQL file cannot break the code location.
KPI_CHECKS: list[dg.AssetChecksDefinition] = [
    check for name in mart_names() if name in KPI_MARTS for check in build_kpi_checks(name)
]
