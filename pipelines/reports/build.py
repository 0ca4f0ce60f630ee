"""Build the revenue report of a data directory: read the warehouse, draw, write HTML + PNGs."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.lake import DataDir, temp_sibling
from pipelines.reports.charts import Chart, render_charts
from pipelines.reports.data import ReportData, load_report_data
from pipelines.reports.html import FORMATS, SUMMARY_ITEMS, render_html
from pipelines.warehouse.query import moved_lake_hint

REPORT_NAME = "revenue_report"


class ReportError(Exception):
    """The report cannot be built (no warehouse yet); the message says what to run first."""


@dataclass(frozen=True)
class Report:
    """Where the report was written and what it shows."""

    html_path: Path
    charts: list[Chart]
    data: ReportData

    def markdown(self) -> str:
        """A short preview for the Dagster UI: the period, the KPI table and the chart files."""
        period = f"{self.data.first_day} – {self.data.last_day}" if self.data.first_day else "no data yet"
        lines = [f"**Revenue report**, event dates {period}", "", "| KPI | value |", "| --- | ---: |"]
        lines += [f"| {label} | {FORMATS[kind](self.data.summary.get(key))} |" for key, label, kind in SUMMARY_ITEMS]
        lines += ["", "Charts: " + ", ".join(f"`{c.path.name}`" for c in self.charts)]
        return "\n".join(lines)


def default_report_path(data: DataDir) -> Path:
    return data.root / "reports" / f"{REPORT_NAME}.html"


def build_report(data_dir: str | os.PathLike[str], out: Path | None = None, days: int | None = None) -> Report:
    """Write the report of ``data_dir``'s published warehouse to ``out`` (default
    ``<data>/reports/revenue_report.html``), with the chart PNGs beside it as ``<stem>_<chart>.png``.

    The PNGs are also embedded in the HTML, so the page alone is enough to view the report.
    ``days``: the window of event dates (0: all history; default $REVWH_REPORT_DAYS or 7).
    """
    data = DataDir.at(data_dir)
    if not data.warehouse.exists():
        raise ReportError(f"no warehouse at {data.warehouse}: run `revwh run --data-dir {data_dir} ...` first")
    html_path = (out or default_report_path(data)).resolve()
    try:  # the output folder first: a bad --out is found before any work
        html_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # "File exists" for /a/file/r.html: name the file that stands where a folder is needed
        blocking = next((p for p in html_path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocking} is a file, not a folder" if blocking is not None else exc.strerror or str(exc)
        raise ReportError(f"cannot write the report to {html_path}: {why}") from exc
    try:
        report_data = load_report_data(data.warehouse, days)
    except duckdb.Error as exc:  # not a DuckDB file, or not one this pipeline published, or its views' files gone
        first = str(exc).splitlines()[0]
        raise ReportError(f"cannot read {data.warehouse}: {first}{moved_lake_hint(Path(data_dir), first)}") from exc
    try:
        charts = render_charts(report_data, html_path.parent, prefix=f"{html_path.stem}_")
        page = render_html(report_data, charts, dt.datetime.now(dt.UTC))
        tmp = temp_sibling(html_path)
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, html_path)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {html_path}: {exc.strerror or exc}") from exc
    return Report(html_path=html_path, charts=charts, data=report_data)
