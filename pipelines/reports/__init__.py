"""The revenue report: static HTML with matplotlib charts, built from the published warehouse.

It reads ``warehouse.duckdb`` only (never the lake), so it shows exactly what
analysts can query, and it needs no server, CDN or JavaScript to be viewed.
``build_report`` lives in ``pipelines.reports.build``: this package imports
nothing, so that ``revwh`` (whose parser registers ``revwh report``) does not
load matplotlib, about a second, for every command.
"""
