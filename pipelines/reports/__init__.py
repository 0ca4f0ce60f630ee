"""The revenue report: static HTML with matplotlib charts, built from the published warehouse.

It reads ``warehouse.duckdb`` only (never the lake), so it shows exactly what
analysts can query, and it needs no server, CDN or JavaScript to be viewed.
"""

from pipelines.reports.build import Report, build_report

__all__ = ["Report", "build_report"]
