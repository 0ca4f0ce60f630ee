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

import dagster as dg

from pipelines.defs.common import DataDirResource, partition_dates
from pipelines.defs.marts import mart_key
from pipelines.marts.build import mart_names
from pipelines.quality.kpi_reconcile import KPI_MARTS, kpi_ratio_problems, kpi_reconcile_problems


def build_kpi_checks(name: str) -> list[dg.AssetChecksDefinition]:
    """The two checks of one KPI mart."""

    @dg.asset_check(
        asset=mart_key(name),
        name="reconciles_with_facts",
        blocking=True,
        description=(
            "Day totals equal the core marts' (revenue_by_stream / revenue_by_region) and every row equals an "
            "independent polars recomputation from the facts, to the cent; composite columns equal their parts."
        ),
    )
    def _reconcile(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
        days = partition_dates(context)
        problems = [p for day in days for p in kpi_reconcile_problems(revwh.data(), name, day)]
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"days": len(days), "problems": dg.MetadataValue.json(problems[:50])},
        )

    @dg.asset_check(
        asset=mart_key(name),
        name="ratios_are_consistent",
        blocking=False,
        description=(
            "Every ratio equals numerator / denominator from the row's own sums and is NULL exactly when the "
            "denominator is 0 (warning only)."
        ),
    )
    def _ratios(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
        days = partition_dates(context)
        problems = [p for day in days for p in kpi_ratio_problems(revwh.data(), name, day)]
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"days": len(days), "problems": dg.MetadataValue.json(problems[:50])},
        )

    return [_reconcile, _ratios]


# Only marts whose SQL file exists get checks, so removing a SQL file cannot break the code location.
KPI_CHECKS: list[dg.AssetChecksDefinition] = [
    check for name in mart_names() if name in KPI_MARTS for check in build_kpi_checks(name)
]
