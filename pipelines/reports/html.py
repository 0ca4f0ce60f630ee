"""The report as one static HTML page: inline CSS, charts as base64 data URIs, plain tables.

Everything is inside the one file (no CDN, no JavaScript, no linked assets),
so it opens offline, survives being mailed or attached to a ticket, and
renders the same in any browser. Every value is HTML-escaped: region,
category and creator names come from data the platform does not control.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Callable, Sequence

import polars as pl

from pipelines.reports.charts import Chart
from pipelines.reports.data import ReportData


def fmt_usd(value: float | None) -> str:
    if value is None:
        return "–"
    cents = round(value, 2)
    return f"-${-cents:,.2f}" if cents < 0 else f"${abs(cents):,.2f}"  # abs: no "$-0.00"


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:,.2f} %"


def fmt_int(value: float | None) -> str:
    return "–" if value is None else f"{int(value):,}"


def fmt_text(value: object) -> str:
    return "–" if value is None else str(value)


FORMATS: dict[str, Callable] = {"usd": fmt_usd, "pct": fmt_pct, "int": fmt_int, "text": fmt_text}

# (summary key, label, format): the KPI cards at the top of the page.
SUMMARY_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("gross_revenue_usd", "Gross revenue", "usd"),
    ("platform_fees_usd", "Store fees", "usd"),
    ("creator_payouts_usd", "Creator payouts", "usd"),
    ("net_revenue_usd", "Net revenue", "usd"),
    ("active_users", "Active users", "int"),
    ("net_per_active_user_usd", "Net revenue per active user", "usd"),
    ("paying_users", "Paying users (coins)", "int"),
    ("arppu_usd", "ARPPU", "usd"),
    ("ctr", "CTR", "pct"),
    ("ecpm_usd", "eCPM", "usd"),
    ("take_rate", "Shop take rate", "pct"),
    ("refund_rate", "Refund rate", "pct"),
    ("accepted_events", "Accepted events", "int"),
    ("quarantined_rows", "Quarantined copies (by arrival day)", "int"),
)

Column = tuple[str, str, str]  # (frame column, header, format)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1320px; color: #222; background: #fff; }
h1 { margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #666; margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px; background: #fafafa; }
.card .label { color: #666; font-size: 12px; } .card .value { font-size: 20px; font-weight: 600; }
figure { margin: 16px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; } th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #a15c00; }
"""


def _table(frame: pl.DataFrame, columns: Sequence[Column], table_id: str) -> str:
    if frame.is_empty():
        return f'<p id="{table_id}" class="empty">No rows.</p>'
    head = "".join(f"<th>{html.escape(header)}</th>" for _, header, _ in columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = []
        for col, _, kind in columns:
            css = "" if kind == "text" else ' class="num"'
            cells.append(f"<td{css}>{html.escape(FORMATS[kind](row.get(col)))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cards(summary: dict) -> str:
    cards = [
        f'<div class="card" data-kpi="{key}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(FORMATS[kind](summary.get(key)))}</div></div>'
        for key, label, kind in SUMMARY_ITEMS
    ]
    return '<div class="cards">' + "".join(cards) + "</div>"


def _figure(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    title = html.escape(chart.title)
    return (
        f'<figure id="chart-{chart.name}"><img class="chart" data-chart="{chart.name}" alt="{title}" '
        f'width="{chart.width}" height="{chart.height}" src="data:image/png;base64,{data}">'
        f"<figcaption>{title} · also saved as {html.escape(chart.path.name)}</figcaption></figure>"
    )


def _stream_period(data: ReportData) -> pl.DataFrame:
    if data.stream_daily.is_empty():
        return data.stream_daily
    return (
        data.stream_daily.group_by("stream")
        .agg(pl.col(c).sum() for c in data.stream_daily.columns if c not in ("event_date", "stream"))
        .sort("net_revenue_usd", descending=True)
    )


_MONEY = (
    ("gross_revenue_usd", "Gross (USD)", "usd"),
    ("platform_fees_usd", "Store fees (USD)", "usd"),
    ("creator_payouts_usd", "Creator payouts (USD)", "usd"),
    ("net_revenue_usd", "Net (USD)", "usd"),
)


def render_html(data: ReportData, charts: Sequence[Chart], generated_at: dt.datetime) -> str:
    """The whole page as a string."""
    charts_by_name = {c.name: c for c in charts}
    period = f"event dates {data.first_day} to {data.last_day}" if data.first_day else "no event date published yet"
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in data.notes)
    region_period = (
        data.region_streams.group_by("region")
        .agg(pl.col("gross_revenue_usd").sum(), pl.col("net_revenue_usd").sum())
        .sort("net_revenue_usd", descending=True)
        if not data.region_streams.is_empty()
        else data.region_streams
    )
    sections = [
        "<h2>Key figures</h2>",
        _cards(data.summary),
        '<p class="meta">Ratios are computed from period sums (e.g. eCPM = total ad spend / total impressions '
        "× 1000) and shown as – when their denominator is 0. Distinct users are counted over the whole "
        "period from facts.revenue_events.</p>",
        "<h2>Revenue by stream</h2>",
        _figure(charts_by_name["revenue_by_stream"]) if "revenue_by_stream" in charts_by_name else "",
        _table(
            _stream_period(data),
            [("stream", "Stream", "text"), *_MONEY, ("event_count", "Events", "int")],
            "table-streams",
        ),
        _figure(charts_by_name["stream_mix"]) if "stream_mix" in charts_by_name else "",
        "<h2>Revenue by region</h2>",
        _figure(charts_by_name["revenue_by_region"]) if "revenue_by_region" in charts_by_name else "",
        _table(
            region_period,
            [("region", "Region", "text"), ("gross_revenue_usd", "Gross (USD)", "usd"), _MONEY[3]],
            "table-regions",
        ),
        "<h2>KPIs</h2>",
        _figure(charts_by_name["kpis"]) if "kpis" in charts_by_name else "",
        _table(
            data.kpi_daily,
            [
                ("event_date", "Event date", "text"),
                ("net_revenue_usd", "Net (USD)", "usd"),
                ("active_users", "Active users", "int"),
                ("ctr", "CTR", "pct"),
                ("ecpm_usd", "eCPM", "usd"),
                ("arppu_usd", "ARPPU", "usd"),
                ("take_rate", "Take rate", "pct"),
                ("refund_rate", "Refund rate", "pct"),
                ("net_per_active_user_usd", "Net / active user", "usd"),
            ],
            "table-kpis",
        ),
        "<h2>Advertising by format</h2>",
        _table(
            data.ads_formats,
            [
                ("ad_format", "Ad format", "text"),
                ("impressions", "Impressions", "int"),
                ("clicks", "Clicks", "int"),
                ("ctr", "CTR", "pct"),
                ("spend_usd", "Spend (USD)", "usd"),
                ("ecpm_usd", "eCPM", "usd"),
            ],
            "table-ads",
        ),
        "<h2>Shop by category</h2>",
        _table(
            data.categories,
            [
                ("category", "Category", "text"),
                ("gmv_usd", "GMV (USD)", "usd"),
                ("refunds_usd", "Refunds (USD)", "usd"),
                ("refund_rate", "Refund rate", "pct"),
                ("referral_revenue_usd", "Referral revenue (USD)", "usd"),
                ("take_rate", "Take rate", "pct"),
                ("affiliate_commissions_usd", "Affiliate commissions (USD)", "usd"),
            ],
            "table-categories",
        ),
        "<h2>Top creators by earnings</h2>",
        _table(
            data.top_creators,
            [
                ("creator_id", "Creator", "text"),
                ("gift_payouts_usd", "Gifts (USD)", "usd"),
                ("fund_payouts_usd", "Creator fund (USD)", "usd"),
                ("affiliate_commissions_usd", "Affiliate (USD)", "usd"),
                ("total_earnings_usd", "Total (USD)", "usd"),
            ],
            "table-creators",
        ),
        "<h2>Data quality: quarantine</h2>",
        '<p class="meta">Rejected copies by the day they arrived, from the first date of the window on: '
        "the runs of these event dates also landed the three arrival days after the last one.</p>",
        _table(
            data.quarantine,
            [("log", "Log", "text"), ("reason", "Reason", "text"), ("rows", "Rejected copies", "int")],
            "table-quarantine",
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Revenue report</title><style>{_CSS}</style></head><body>"
        f'<h1>Revenue report</h1><p class="meta">{html.escape(period)} · generated '
        f"{html.escape(generated_at.strftime('%Y-%m-%d %H:%M UTC'))} from warehouse.duckdb</p>"
        f"{notes}{''.join(sections)}</body></html>\n"
    )
