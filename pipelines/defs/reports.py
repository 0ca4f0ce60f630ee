"""reports/revenue_report: the static HTML report, rebuilt after every warehouse publish.

Unpartitioned on purpose: the report covers a window of event dates (the last 7
by default, $REVWH_REPORT_DAYS; 0 = all history), not one day. The window keeps a
daily run's cost the same however long the history is. Dagster runs an
unpartitioned asset once in a ranged run of the partitioned job, so `revwh run`
refreshes it after publishing, whatever range it ran. It reads only ``warehouse.duckdb`` (read-only), never the lake.
"""

import dagster as dg

from pipelines.defs.common import DataDirResource
from pipelines.defs.warehouse import WAREHOUSE_KEY

REPORT_KEY = dg.AssetKey(["reports", "revenue_report"])


@dg.asset(
    key=REPORT_KEY,
    group_name="reports",
    kinds={"html", "matplotlib"},
    deps=[WAREHOUSE_KEY],
    description=(
        "`<data>/reports/revenue_report.html` over the last $REVWH_REPORT_DAYS (7) event dates: one static page "
        "(no JS, no CDN, charts embedded as PNG data "
        "URIs, also written beside it) with revenue by stream over time, by region, the stream mix, daily "
        "KPIs (CTR, eCPM, ARPPU, take rate, refund rate, net per active user) and KPI tables."
    ),
)
def revenue_report(context: dg.AssetExecutionContext, revwh: DataDirResource) -> dg.MaterializeResult:
    from pipelines.reports.build import build_report  # matplotlib: imported when the report runs, not on load

    report = build_report(revwh.data().root)
    context.log.info(f"wrote {report.html_path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(report.html_path)),
            "preview": dg.MetadataValue.md(report.markdown()),
            "charts": dg.MetadataValue.json([str(c.path) for c in report.charts]),
            "first_event_date": str(report.data.first_day),
            "last_event_date": str(report.data.last_day),
        }
    )


REPORTS = [revenue_report]
