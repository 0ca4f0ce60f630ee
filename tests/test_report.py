"""The revenue report: numbers from hand-computed data, a self-contained page, the CLI and the empty case."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import re
import warnings
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.lake import DataDir
from pipelines.reports.build import Report, build_report
from pipelines.reports.charts import CHARTS, render_charts
from pipelines.reports.html import render_html
from pipelines.warehouse.publish import publish_warehouse
from tests.kpi_data import D1, D2, PipelineRun, kpi_pipeline_run

approx = pytest.approx
IMG = re.compile(
    r'<img class="chart" data-chart="(\w+)"[^>]* width="(\d+)" height="(\d+)" src="data:image/png;base64,([^"]+)"'
)

# Period sums of tests/kpi_data.py
NET_D1 = 16.8815 + 5.462 - 0.135 - 2.0  # North America + Europe + East Asia + Latin America
NET_D2 = 0.008 + 0.99 - 0.297
GMV, REFUNDS, REFERRAL = 150.0 + 220.0, 20.0 + 6.5, 6.5 + 4.4 - 0.13


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    run = kpi_pipeline_run(tmp_path_factory)
    assert run.result.success
    return run


@pytest.fixture(scope="module")
def report(run: PipelineRun, tmp_path_factory: pytest.TempPathFactory) -> Report:
    return build_report(run.root, tmp_path_factory.mktemp("report") / "kpi_report.html")


def test_period_kpis(report: Report) -> None:
    s = report.data.summary
    assert s["net_revenue_usd"] == approx(NET_D1 + NET_D2)
    assert s["active_users"] == 9  # u1..u5 and buyers b1..b4; u6 and u9 were quarantined
    assert s["paying_users"] == 4  # u1, u2, u4 on D1, u3 on D2
    assert s["arppu_usd"] == approx((15.97 + 1.1 + 0.99) / 4)
    assert s["ctr"] == approx(3 / 7)
    assert s["ecpm_usd"] == approx((0.51 + 0.022 + 0.008) / 7 * 1000)
    assert s["take_rate"] == approx(REFERRAL / GMV)
    assert s["refund_rate"] == approx(REFUNDS / GMV)
    assert s["net_per_active_user_usd"] == approx((NET_D1 + NET_D2) / 9)
    assert s["quarantined_rows"] == 4
    assert (report.data.first_day, report.data.last_day) == (D1, D2)


def test_window_keeps_only_the_last_event_dates(run: PipelineRun, tmp_path: Path) -> None:
    """--days 1: only D2 (the latest event date); the user counts come from D2's facts alone."""
    one_day = build_report(run.root, tmp_path / "last_day.html", days=1)
    s = one_day.data.summary
    assert (one_day.data.first_day, one_day.data.last_day) == (D2, D2)
    assert s["net_revenue_usd"] == approx(NET_D2)
    assert s["active_users"] == 2
    assert s["paying_users"] == 1  # u3
    assert one_day.data.kpi_daily.get_column("event_date").to_list() == [D2]
    assert any("last 1 event dates" in note for note in one_day.data.notes)
    everything = build_report(run.root, tmp_path / "all.html", days=0)
    assert (everything.data.first_day, everything.data.last_day) == (D1, D2)
    assert not any("event dates" in note for note in everything.data.notes)
    beyond_the_calendar = build_report(run.root, tmp_path / "far.html", days=100_000_000)  # was an OverflowError
    assert (beyond_the_calendar.data.first_day, beyond_the_calendar.data.last_day) == (D1, D2)


def test_report_days_must_not_be_negative(run: PipelineRun, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--data-dir", str(run.root), "--days", "-1"])
    assert "--days" in capsys.readouterr().err


def test_daily_kpis(report: Report) -> None:
    daily = {r["event_date"]: r for r in report.data.kpi_daily.iter_rows(named=True)}
    assert daily[D1]["ctr"] == approx(3 / 6)
    assert daily[D1]["ecpm_usd"] == approx(0.532 / 6 * 1000)
    assert daily[D1]["arppu_usd"] == approx((15.97 + 1.1) / 3)
    assert daily[D1]["net_per_active_user_usd"] == approx(NET_D1 / 9)
    assert daily[D2]["ctr"] == 0.0
    assert daily[D2]["arppu_usd"] == approx(0.99)
    assert daily[D2]["take_rate"] is None  # no order on D2: a gap in the chart, not a zero
    assert daily[D2]["net_per_active_user_usd"] == approx(NET_D2 / 2)


def test_page_is_self_contained_with_valid_charts(report: Report) -> None:
    page = report.html_path.read_text()
    images = IMG.findall(page)
    assert [name for name, *_ in images] == ["revenue_by_stream", "stream_mix", "revenue_by_region", "kpis"]
    for name, width, height, data in images:
        png = Image.open(io.BytesIO(base64.b64decode(data)))
        assert png.format == "PNG"
        assert png.size == (int(width), int(height))
        colors = png.convert("RGB").getcolors(maxcolors=1 << 20)  # None only beyond 2**20 colours
        assert colors is None or len(colors) > 20, f"{name} looks blank"
        assert (report.html_path.parent / f"kpi_report_{name}.png").read_bytes() == base64.b64decode(data)
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"https?://", page), "the page must not need the network"
    assert "42.86 %" in page  # the period CTR card, 3 / 7
    assert 'id="table-creators"' in page and "cr2" in page


def test_values_are_html_escaped(report: Report) -> None:
    evil = dataclasses.replace(
        report.data, top_creators=report.data.top_creators.with_columns(pl.lit("<b>x</b>").alias("creator_id"))
    )
    page = render_html(evil, report.charts, dt.datetime(2025, 3, 5, tzinfo=dt.UTC))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_a_region_name_the_font_cannot_draw_gives_no_warning(report: Report, tmp_path: Path) -> None:
    data = dataclasses.replace(
        report.data, region_streams=report.data.region_streams.with_columns(pl.lit("🌹 Rosaland").alias("region"))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        charts = render_charts(data, tmp_path)
    assert len(charts) == len(CHARTS)


def test_cli_writes_the_report(run: PipelineRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "r.html"
    assert main(["report", "--data-dir", str(run.root), "--out", str(out)]) == 0
    assert out.exists()
    assert sorted(p.name for p in out.parent.glob("*.png")) == sorted(f"r_{name}.png" for name, *_ in CHARTS)
    assert str(out) in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--data-dir", str(tmp_path)]) == 2
    assert "no warehouse" in capsys.readouterr().err
    assert main(["report", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r.png")]) == 2
    assert "--out must name an .html file" in capsys.readouterr().err


def test_empty_warehouse_renders_a_placeholder_report(tmp_path: Path) -> None:
    """Before the first run has published a day, the report still renders (every mart empty)."""
    publish_warehouse(DataDir.at(tmp_path))
    report = build_report(tmp_path)
    assert report.html_path == tmp_path / "reports" / "revenue_report.html"
    assert report.data.empty
    assert len(report.charts) == len(CHARTS)
    assert "no event date published yet" in report.html_path.read_text()
