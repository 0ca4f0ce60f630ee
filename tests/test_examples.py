"""Every analyst example in sql/examples runs on a warehouse published by a real pipeline run.

The warehouse is the one of tests/kpi_data.py, so a few answers are also
checked against numbers computed by hand there.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.marts.build import SQL_DIR
from tests.kpi_data import D1, D2, PipelineRun, kpi_pipeline_run

EXAMPLES_DIR = SQL_DIR / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.sql"))

# The columns each example promises; an example missing here is still run and must return rows.
EXPECTED_COLUMNS: dict[str, list[str]] = {
    "top_creators_by_earnings": [
        "creator_id",
        "gift_payouts_usd",
        "fund_payouts_usd",
        "affiliate_commissions_usd",
        "total_earnings_usd",
        "share_of_all_creators",
        "earning_days",
    ],
    "revenue_mix_by_region_over_time": [
        "week_start",
        "region",
        "advertising_net_usd",
        "virtual_gifts_net_usd",
        "ecommerce_net_usd",
        "creator_fund_net_usd",
        "net_revenue_usd",
        "advertising_share",
        "virtual_gifts_share",
        "ecommerce_share",
        "creator_fund_share",
    ],
    "week_over_week_growth": [
        "week_start",
        "stream",
        "days_in_week",
        "net_revenue_usd",
        "previous_week_net_usd",
        "wow_growth",
    ],
    "ecpm_by_format": ["ad_format", "impressions", "clicks", "ctr", "spend_usd", "ecpm_usd", "cpc_share_of_spend"],
    "refund_rate_by_category": [
        "category",
        "orders_placed",
        "orders_refunded",
        "gmv_usd",
        "refunds_usd",
        "refund_rate",
    ],
    "take_rate_by_category": [
        "category",
        "region",
        "gmv_usd",
        "referral_revenue_usd",
        "take_rate",
        "affiliate_gmv_share",
        "affiliate_commissions_usd",
        "commission_rate",
    ],
    "quarantine_by_reason": [
        "log",
        "reason",
        "rejected_copies",
        "share_of_log_rejects",
        "first_arrival_date",
        "last_arrival_date",
        "busiest_arrival_date",
    ],
    "arppu_trend": ["event_date", "paying_users", "coin_gross_usd", "arppu_usd", "paying_users_7d", "arppu_7d_usd"],
    "creator_payout_ratio_by_region": [
        "region",
        "coins_bought",
        "coins_spent",
        "coin_gross_usd",
        "gift_payouts_usd",
        "payout_ratio",
        "store_fee_rate",
        "net_revenue_usd",
    ],
    "daily_scorecard": [
        "event_date",
        "gross_revenue_usd",
        "net_revenue_usd",
        "events",
        "active_users",
        "net_per_active_user_usd",
    ],
    "top_countries_by_net_revenue": ["country", "region", "net_revenue_usd", "gross_revenue_usd", "top_stream"],
}


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):
    run: PipelineRun = kpi_pipeline_run(tmp_path_factory)
    assert run.result.success
    connection = duckdb.connect(str(run.warehouse), read_only=True)  # as analysts do: read-only
    yield connection
    connection.close()


def answer(con: duckdb.DuckDBPyConnection, name: str) -> list[dict]:
    cur = con.execute((EXAMPLES_DIR / f"{name}.sql").read_text())
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_there_are_at_least_eight_examples() -> None:
    assert len(EXAMPLES) >= 8
    assert set(EXPECTED_COLUMNS) <= {p.stem for p in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_says_what_it_answers_and_returns_rows(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    text = path.read_text()
    header = [line for line in text.splitlines() if line.startswith("--")]
    assert header and header[0].startswith("-- question:"), f"{path.name} must start with '-- question: ...'"
    assert any(line.startswith("-- source:") for line in header), f"{path.name} must name its source tables"
    cur = con.execute(text)
    columns = [d[0] for d in cur.description]
    result = cur.fetchall()
    assert result, f"{path.name} returned no rows"
    if path.stem in EXPECTED_COLUMNS:
        assert columns == EXPECTED_COLUMNS[path.stem]


def test_top_creators(con: duckdb.DuckDBPyConnection) -> None:
    top = answer(con, "top_creators_by_earnings")
    assert [r["creator_id"] for r in top] == ["cr2", "cr1", "cr3"]  # 11.01 > 10.555 > 2.0
    assert top[0]["total_earnings_usd"] == pytest.approx(11.01)
    assert sum(r["share_of_all_creators"] for r in top) == pytest.approx(1.0)


def test_ecpm_by_format_rolls_up_sums_not_ratios(con: duckdb.DuckDBPyConnection) -> None:
    by_format = {r["ad_format"]: r for r in answer(con, "ecpm_by_format")}
    in_feed = by_format["in_feed"]  # D1: 4 impressions, 0.51 spend; D2: 1 impression, 0.008 spend
    assert (in_feed["impressions"], in_feed["clicks"]) == (5, 2)
    assert in_feed["ecpm_usd"] == pytest.approx((0.51 + 0.008) / 5 * 1000)
    assert in_feed["ctr"] == pytest.approx(2 / 5)
    assert by_format["topview"]["ecpm_usd"] == pytest.approx(11.0)


def test_refund_rate_by_category(con: duckdb.DuckDBPyConnection) -> None:
    rates = {r["category"]: r["refund_rate"] for r in answer(con, "refund_rate_by_category")}
    assert rates["beauty"] == pytest.approx(20 / 150)
    assert rates["electronics"] == pytest.approx(6.5 / 220)  # the JPY refund over the EUR order's GMV


def test_quarantine_by_reason(con: duckdb.DuckDBPyConnection) -> None:
    got = {(r["log"], r["reason"]): r["rejected_copies"] for r in answer(con, "quarantine_by_reason")}
    assert got == {
        ("impressions", "malformed"): 1,
        ("impressions", "late_arrival"): 1,
        ("coin_purchases", "underage"): 1,
        ("gifts", "unknown_reference"): 1,
    }


def test_arppu_trend(con: duckdb.DuckDBPyConnection) -> None:
    trend = {r["event_date"]: r for r in answer(con, "arppu_trend")}
    assert trend[D1]["arppu_usd"] == pytest.approx((15.97 + 1.1) / 3)  # u1, u2 in the US, u4 in Germany
    assert trend[D2]["arppu_usd"] == pytest.approx(0.99)
    assert trend[D2]["paying_users_7d"] == 4
    assert trend[D2]["arppu_7d_usd"] == pytest.approx((15.97 + 1.1 + 0.99) / 4)


def test_week_over_week_growth_first_week_has_no_growth(con: duckdb.DuckDBPyConnection) -> None:
    rows = answer(con, "week_over_week_growth")
    assert {r["stream"] for r in rows} == {"advertising", "virtual_gifts", "ecommerce", "creator_fund"}
    assert all(r["wow_growth"] is None and r["previous_week_net_usd"] is None for r in rows)
    ads = next(r for r in rows if r["stream"] == "advertising")
    assert (ads["days_in_week"], ads["net_revenue_usd"]) == (2, pytest.approx(0.51 + 0.022 + 0.008))
