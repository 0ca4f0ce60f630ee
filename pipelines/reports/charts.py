"""The report's charts: matplotlib figures rendered by Agg to PNG files.

The charts use ``matplotlib.figure.Figure`` directly, never ``pyplot``: a bare
Figure renders with the Agg canvas, needs no display and no global figure
registry, so the same code runs in a Dagster step, in CI and on a laptop
without leaking figures or depending on the MPLBACKEND of the environment.
Each chart is a pure function of ``ReportData``; ``render_charts`` writes
them and keeps the bytes for embedding in the HTML.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from pipelines.lake import temp_sibling
from pipelines.reports.data import STREAMS, ReportData

# One colour per stream, the same in every chart.
STREAM_COLORS: dict[str, str] = {
    "advertising": "#1f77b4",
    "virtual_gifts": "#e377c2",
    "ecommerce": "#2ca02c",
    "creator_fund": "#ff7f0e",
}
DPI = 110
USD = FuncFormatter(lambda v, _pos: f"${v:,.0f}" if abs(v) >= 100 or v == 0 else f"${v:,.2f}")


@dataclass(frozen=True)
class Chart:
    """One rendered chart: a stable name (file stem), a title and the PNG."""

    name: str
    title: str
    path: Path
    png: bytes
    width: int
    height: int


def _label(stream: str) -> str:
    return stream.replace("_", " ")


def _no_data(ax: Axes, text: str = "no data published yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#888", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _date_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=10))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.tick_params(axis="x", labelrotation=30)


def _pivot(frame: pl.DataFrame, index: str, value: str) -> tuple[list, dict[str, list[float]]]:
    """(sorted index values, stream -> values aligned on them, 0 where a stream had no row)."""
    keys = sorted(frame[index].unique().to_list()) if frame.height else []
    cells = {(r[index], r["stream"]): r[value] or 0.0 for r in frame.iter_rows(named=True)}
    return keys, {s: [cells.get((k, s), 0.0) for k in keys] for s in STREAMS}


def revenue_by_stream_chart(data: ReportData) -> Figure:
    """Daily net revenue per stream, stacked (creator fund below zero: it is a cost), and the total."""
    fig = Figure(figsize=(10, 4.6))
    ax = fig.subplots()
    days, values = _pivot(data.stream_daily, "event_date", "net_revenue_usd")
    if not days:
        _no_data(ax)
    else:
        pos, neg = [0.0] * len(days), [0.0] * len(days)
        for stream in STREAMS:
            v = values[stream]
            base = [n if x < 0 else p for x, p, n in zip(v, pos, neg, strict=True)]
            ax.bar(days, v, bottom=base, color=STREAM_COLORS[stream], label=_label(stream), width=0.8)
            pos = [p + x if x >= 0 else p for x, p in zip(v, pos, strict=True)]
            neg = [n + x if x < 0 else n for x, n in zip(v, neg, strict=True)]
        total = [sum(values[s][i] for s in STREAMS) for i in range(len(days))]
        ax.plot(days, total, color="black", marker="o", linewidth=1.5, label="net total")
        ax.axhline(0, color="#444", linewidth=0.8)
        ax.yaxis.set_major_formatter(USD)
        _date_axis(ax)
        ax.legend(loc="upper left", ncols=5, fontsize=8, frameon=False)
    ax.set_title("Net revenue by stream per day (USD)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def revenue_by_region_chart(data: ReportData) -> Figure:
    """Net revenue of the period per region, one bar segment per stream (costs to the left of zero)."""
    fig = Figure(figsize=(10, 4.6))
    ax = fig.subplots()
    frame = data.region_streams
    if frame.is_empty():
        _no_data(ax)
    else:
        totals = frame.group_by("region").agg(pl.col("net_revenue_usd").sum()).sort("net_revenue_usd")
        regions = totals["region"].to_list()
        _, values = _pivot(frame, "region", "net_revenue_usd")
        order = sorted(frame["region"].unique().to_list())
        aligned = {s: [values[s][order.index(r)] for r in regions] for s in STREAMS}
        pos, neg = [0.0] * len(regions), [0.0] * len(regions)
        for stream in STREAMS:
            v = aligned[stream]
            base = [n if x < 0 else p for x, p, n in zip(v, pos, neg, strict=True)]
            ax.barh(regions, v, left=base, color=STREAM_COLORS[stream], label=_label(stream))
            pos = [p + x if x >= 0 else p for x, p in zip(v, pos, strict=True)]
            neg = [n + x if x < 0 else n for x, n in zip(v, neg, strict=True)]
        for y, total in enumerate(totals["net_revenue_usd"].to_list()):
            ax.annotate(
                f"net ${total:,.0f}",
                (max(pos[y], 0), y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.axvline(0, color="#444", linewidth=0.8)
        ax.xaxis.set_major_formatter(USD)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("Net revenue by region and stream, whole period (USD)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def stream_mix_chart(data: ReportData) -> Figure:
    """Share of each stream in the day's gross revenue (gross, not net: the creator fund has no gross,
    and shares of a net that mixes revenue and costs are hard to read as a 100 % bar)."""
    fig = Figure(figsize=(10, 4.0))
    ax = fig.subplots()
    days, values = _pivot(data.stream_daily, "event_date", "gross_revenue_usd")
    earning = [s for s in STREAMS if any(v > 0 for v in values.get(s, []))]
    if not days or not earning:
        _no_data(ax)
    else:
        clipped = {s: [max(v, 0.0) for v in values[s]] for s in earning}
        totals = [sum(clipped[s][i] for s in earning) for i in range(len(days))]
        bottom = [0.0] * len(days)
        for stream in earning:
            share = [v / t if t else 0.0 for v, t in zip(clipped[stream], totals, strict=True)]
            ax.bar(days, share, bottom=bottom, color=STREAM_COLORS[stream], label=_label(stream), width=0.8)
            bottom = [b + s for b, s in zip(bottom, share, strict=True)]
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, 1)
        _date_axis(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title("Stream mix: share of daily gross revenue")
    fig.tight_layout()
    return fig


_KPI_PANELS: tuple[tuple[str, str, str], ...] = (
    ("ctr", "CTR (clicks / impressions)", "pct"),
    ("ecpm_usd", "eCPM (ad spend per 1,000 impressions)", "usd"),
    ("arppu_usd", "ARPPU (coin gross / paying users)", "usd"),
    ("take_rate", "Shop take rate (referral revenue / GMV)", "pct"),
    ("refund_rate", "Refund rate (refunds / GMV)", "pct"),
    ("net_per_active_user_usd", "Net revenue per active user", "usd"),
)


def kpis_chart(data: ReportData) -> Figure:
    """Six daily KPIs as small multiples; a day whose denominator was 0 is a gap, not a zero."""
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 3)
    frame = data.kpi_daily
    for ax, (column, title, unit) in zip(axes.flat, _KPI_PANELS, strict=True):
        points = [(d, v) for d, v in zip(frame["event_date"], frame[column], strict=True) if v is not None]
        if not points:
            _no_data(ax, "no data")
        else:
            days: list[dt.date] = [d for d, _ in points]
            ax.plot(days, [v for _, v in points], marker="o", color="#3b5b92", linewidth=1.5)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None) if unit == "pct" else USD)
            _date_axis(ax)
            ax.grid(alpha=0.3)
        ax.set_title(title, fontsize=10)
    fig.suptitle("Daily KPIs", fontsize=12)
    fig.tight_layout()
    return fig


CHARTS: tuple[tuple[str, str, Callable[[ReportData], Figure]], ...] = (
    ("revenue_by_stream", "Net revenue by stream over time", revenue_by_stream_chart),
    ("revenue_by_region", "Net revenue by region", revenue_by_region_chart),
    ("stream_mix", "Stream mix (share of gross revenue)", stream_mix_chart),
    ("kpis", "Daily KPIs", kpis_chart),
)


def render_charts(data: ReportData, out_dir: Path, prefix: str = "") -> list[Chart]:
    """Render every chart to ``out_dir/<prefix><name>.png`` and keep the bytes for embedding.

    Each file is written beside its final name and renamed, so a browser or a
    copy job never reads a half-written PNG of a report being rebuilt.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = []
    for name, title, draw in CHARTS:
        path = out_dir / f"{prefix}{name}.png"
        tmp = temp_sibling(path)
        with warnings.catch_warnings():
            # A region named with an emoji or a script the bundled font lacks is drawn as a box, and
            # matplotlib would warn once per glyph on the run's stderr; the HTML tables show the name.
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
            fig = draw(data)
            fig.savefig(tmp, dpi=DPI, format="png", facecolor="white")
        os.replace(tmp, path)
        width, height = (round(x) for x in fig.get_size_inches() * DPI)
        charts.append(Chart(name=name, title=title, path=path, png=path.read_bytes(), width=width, height=height))
    return charts
