"""The KPI marts against numbers computed by hand (see tests/kpi_data.py), after one real pipeline run.

Each expectation is written as the arithmetic a person would do on paper, so a
reader can check the test without running the code.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest

from pipelines.defs.kpi_checks import KPI_CHECKS
from pipelines.marts.build import mart_names
from pipelines.quality.kpi_reconcile import KPI_MARTS
from tests.kpi_data import D1, D2, PipelineRun, kpi_pipeline_run

approx = pytest.approx


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    return kpi_pipeline_run(tmp_path_factory)


@pytest.fixture(scope="module")
def con(run: PipelineRun):
    connection = duckdb.connect(str(run.warehouse), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def by_key(con: duckdb.DuckDBPyConnection, table: str, *keys: str) -> dict[tuple, dict]:
    return {tuple(r[k] for k in keys): r for r in rows(con, f"SELECT * FROM marts.{table}")}


def test_run_succeeds_and_every_kpi_check_passes(run: PipelineRun) -> None:
    assert run.result.success
    evaluations = [
        e.event_specific_data for e in run.result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    kpi = {
        (ev.asset_check_key.asset_key.path[-1], ev.asset_check_key.name): ev.passed
        for ev in evaluations
        if ev.asset_check_key.asset_key.path[-1] in KPI_MARTS
    }
    assert set(kpi) == {(m, c) for m in KPI_MARTS for c in ("reconciles_with_facts", "ratios_are_consistent")}
    assert all(kpi.values()), kpi


def test_every_kpi_mart_has_a_sql_file_and_two_checks() -> None:
    assert set(KPI_MARTS) <= set(mart_names())
    assert len(KPI_CHECKS) == 2 * len(KPI_MARTS)
    blocking = {
        spec.key.name: spec.blocking for check in KPI_CHECKS for spec in check.check_specs
    }  # name -> blocking (same for every mart)
    assert blocking == {"reconciles_with_facts": True, "ratios_are_consistent": False}


def test_ads_by_format(con: duckdb.DuckDBPyConnection) -> None:
    ads = by_key(con, "ads_by_format", "event_date", "region", "ad_format")
    assert set(ads) == {(D1, "North America", "in_feed"), (D1, "Europe", "topview"), (D2, "North America", "in_feed")}
    na = ads[(D1, "North America", "in_feed")]
    assert (na["impressions"], na["clicks"]) == (4, 2)
    assert na["ctr"] == approx(2 / 4)
    assert na["spend_usd"] == approx(5 / 1000 + 5 / 1000 + 0.5)
    assert na["cpm_spend_usd"] == approx(0.01)
    assert na["cpc_spend_usd"] == approx(0.5)
    assert na["ecpm_usd"] == approx(0.51 / 4 * 1000)  # 127.5
    eu = ads[(D1, "Europe", "topview")]
    assert (eu["impressions"], eu["clicks"], eu["ctr"]) == (2, 1, approx(0.5))
    assert eu["spend_usd"] == approx(2 * 10 * 1.1 / 1000)
    assert eu["ecpm_usd"] == approx(11.0)
    late = ads[(D2, "North America", "in_feed")]  # arrived a day late, still accepted
    assert (late["impressions"], late["clicks"], late["ctr"]) == (1, 0, 0.0)
    assert late["ecpm_usd"] == approx(8.0)


def test_gifts_by_region(con: duckdb.DuckDBPyConnection) -> None:
    gifts = by_key(con, "gifts_by_region", "event_date", "region")
    assert set(gifts) == {(D1, "North America"), (D1, "Europe"), (D1, "East Asia"), (D2, "North America")}
    na = gifts[(D1, "North America")]
    assert (na["coins_bought"], na["coins_spent"], na["paying_users"], na["gifters"]) == (1120, 11, 2, 2)
    assert (na["coin_purchases"], na["gifts_sent"]) == (3, 2)
    assert na["coin_gross_usd"] == approx(0.99 + 4.99 + 9.99)
    assert na["store_fees_usd"] == approx(0.99 * 0.3 + 4.99 * 0.05 + 9.99 * 0.3)  # 3.5435
    assert na["gift_payouts_usd"] == approx(11 * 0.005)
    assert na["net_revenue_usd"] == approx(15.97 - 3.5435 - 0.055)
    assert na["arppu_usd"] == approx(15.97 / 2)
    assert na["creator_payout_ratio"] == approx(0.055 / 15.97)
    eu = gifts[(D1, "Europe")]
    assert (eu["coins_bought"], eu["paying_users"]) == (100, 1)
    assert eu["arppu_usd"] == approx(1.1)
    assert eu["store_fees_usd"] == approx(1.1 * 0.05)
    assert eu["creator_payout_ratio"] == approx(0.005 / 1.1)
    asia = gifts[(D1, "East Asia")]  # gifts but no purchase: ratios NULL, not 0 or infinity
    assert (asia["paying_users"], asia["coin_gross_usd"], asia["gift_payouts_usd"]) == (0, 0.0, approx(0.005))
    assert asia["arppu_usd"] is None
    assert asia["creator_payout_ratio"] is None
    d2 = gifts[(D2, "North America")]  # the duplicate copy of c5 counts once, the underage c6 not at all
    assert (d2["coin_purchases"], d2["coins_bought"], d2["paying_users"]) == (1, 70, 1)
    assert d2["arppu_usd"] == approx(0.99)


def test_ecommerce_by_category(con: duckdb.DuckDBPyConnection) -> None:
    shop = by_key(con, "ecommerce_by_category", "event_date", "region", "category")
    assert set(shop) == {
        (D1, "North America", "beauty"),
        (D1, "Europe", "electronics"),
        (D1, "East Asia", "electronics"),
    }
    na = shop[(D1, "North America", "beauty")]
    assert (na["orders_placed"], na["orders_refunded"]) == (2, 1)
    assert na["gmv_usd"] == approx(150.0)
    assert na["refunds_usd"] == approx(20.0)
    assert na["refund_rate"] == approx(20 / 150)
    assert na["referral_revenue_usd"] == approx(100 * 0.05 + 50 * 0.05 - 20 * 0.05)  # 6.5
    assert na["take_rate"] == approx(6.5 / 150)
    assert na["affiliate_gmv_usd"] == approx(100.0)
    assert na["affiliate_commissions_usd"] == approx(100 * 0.1 - 20 * 0.1)  # the refund reverses 2
    eu = shop[(D1, "Europe", "electronics")]
    assert eu["gmv_usd"] == approx(220.0)
    assert eu["refund_rate"] == 0.0
    assert eu["take_rate"] == approx(0.02)
    assert eu["affiliate_gmv_usd"] == approx(220.0)
    assert eu["affiliate_commissions_usd"] == approx(220 * 0.05)
    asia = shop[(D1, "East Asia", "electronics")]  # only a refund of an older order
    assert (asia["gmv_usd"], asia["refunds_usd"]) == (0.0, approx(6.5))
    assert asia["refund_rate"] is None
    assert asia["take_rate"] is None
    assert asia["referral_revenue_usd"] == approx(-6.5 * 0.02)


def test_creator_earnings(con: duckdb.DuckDBPyConnection) -> None:
    earnings = by_key(con, "creator_earnings", "event_date", "creator_id")
    assert set(earnings) == {(D1, "cr1"), (D1, "cr2"), (D1, "cr3")}
    cr1 = earnings[(D1, "cr1")]
    assert cr1["gift_payouts_usd"] == approx(0.005 + 0.05)
    assert cr1["fund_payouts_usd"] == approx(2.5)
    assert cr1["affiliate_commissions_usd"] == approx(10.0 - 2.0)
    assert cr1["total_earnings_usd"] == approx(0.055 + 2.5 + 8.0)
    assert (cr1["gifts_received"], cr1["coins_received"], cr1["qualified_views"], cr1["affiliate_order_events"]) == (
        2,
        11,
        1000,
        2,
    )
    cr2 = earnings[(D1, "cr2")]  # gifts from Europe and East Asia, one affiliate order
    assert cr2["gift_payouts_usd"] == approx(0.01)
    assert cr2["fund_payouts_usd"] == 0.0
    assert cr2["affiliate_commissions_usd"] == approx(11.0)
    assert cr2["total_earnings_usd"] == approx(11.01)
    cr3 = earnings[(D1, "cr3")]
    assert (cr3["fund_payouts_usd"], cr3["total_earnings_usd"], cr3["qualified_views"]) == (
        approx(2.0),
        approx(2.0),
        500,
    )


def test_kpis_by_region(con: duckdb.DuckDBPyConnection) -> None:
    kpis = by_key(con, "kpis_by_region", "event_date", "region")
    assert set(kpis) == {
        (D1, "North America"),
        (D1, "Europe"),
        (D1, "East Asia"),
        (D1, "Latin America"),
        (D2, "North America"),
    }
    na = kpis[(D1, "North America")]
    streams = {"advertising": 0.51, "virtual_gifts": 15.97 - 3.5435 - 0.055, "ecommerce": 6.5, "creator_fund": -2.5}
    net = sum(streams.values())  # 16.8815
    for stream, value in streams.items():
        assert na[f"{stream}_net_usd"] == approx(value), stream
        assert na[f"{stream}_share"] == approx(value / net), stream
    assert na["net_revenue_usd"] == approx(16.8815)
    assert na["gross_revenue_usd"] == approx(0.51 + 15.97 + 6.5)
    # users u1 u2 u3 (impressions, coins, gifts) + buyers b1 b2 (orders); fund payouts have none
    assert na["active_users"] == 5
    assert na["net_revenue_per_active_user_usd"] == approx(16.8815 / 5)
    assert na["event_count"] == 4 + 3 + 2 + 3 + 1
    eu = kpis[(D1, "Europe")]
    assert eu["net_revenue_usd"] == approx(0.022 + (1.1 - 0.055 - 0.005) + 4.4)
    assert eu["creator_fund_net_usd"] == 0.0
    assert eu["active_users"] == 2  # u4 in three logs, buyer b3
    assert eu["net_revenue_per_active_user_usd"] == approx(5.462 / 2)
    asia = kpis[(D1, "East Asia")]
    assert asia["net_revenue_usd"] == approx(-0.005 - 0.13)
    assert asia["net_revenue_per_active_user_usd"] == approx(-0.135 / 2)
    latam = kpis[(D1, "Latin America")]  # only a creator-fund payout: no active user
    assert latam["creator_fund_net_usd"] == approx(-2.0)
    assert latam["creator_fund_share"] == approx(1.0)
    assert latam["advertising_share"] == 0.0
    assert latam["active_users"] == 0
    assert latam["net_revenue_per_active_user_usd"] is None
    d2 = kpis[(D2, "North America")]
    assert d2["net_revenue_usd"] == approx(0.008 + 0.99 - 0.297)
    assert d2["active_users"] == 2  # u1 (late impression), u3 (coins)
    assert d2["net_revenue_per_active_user_usd"] == approx(0.701 / 2)


def test_kpi_marts_reconcile_with_the_core_marts(con: duckdb.DuckDBPyConnection) -> None:
    """Where a KPI mart overlaps revenue_by_region, the published tables agree per date and region."""
    core = {
        (r["event_date"], r["region"], r["stream"]): r
        for r in rows(
            con,
            "SELECT event_date, region, stream, sum(gross_revenue_usd) AS gross, sum(platform_fees_usd) AS fees, "
            "sum(creator_payouts_usd) AS payouts, sum(net_revenue_usd) AS net "
            "FROM marts.revenue_by_region GROUP BY ALL",
        )
    }

    def core_value(day: dt.date, region: str, stream: str, measure: str) -> float:
        row = core.get((day, region, stream))
        return row[measure] if row else 0.0

    for r in rows(con, "SELECT event_date, region, sum(spend_usd) AS spend FROM marts.ads_by_format GROUP BY ALL"):
        assert r["spend"] == approx(core_value(r["event_date"], r["region"], "advertising", "gross"))
    for r in rows(con, "SELECT * FROM marts.gifts_by_region"):
        day, region = r["event_date"], r["region"]
        assert r["coin_gross_usd"] == approx(core_value(day, region, "virtual_gifts", "gross"))
        assert r["store_fees_usd"] == approx(core_value(day, region, "virtual_gifts", "fees"))
        assert r["gift_payouts_usd"] == approx(core_value(day, region, "virtual_gifts", "payouts"))
    for r in rows(
        con,
        "SELECT event_date, region, sum(referral_revenue_usd) AS referral "
        "FROM marts.ecommerce_by_category GROUP BY ALL",
    ):
        assert r["referral"] == approx(core_value(r["event_date"], r["region"], "ecommerce", "gross"))
    for r in rows(con, "SELECT * FROM marts.kpis_by_region"):
        for stream in ("advertising", "virtual_gifts", "ecommerce", "creator_fund"):
            assert r[f"{stream}_net_usd"] == approx(core_value(r["event_date"], r["region"], stream, "net"))
    payouts = rows(
        con,
        "SELECT (SELECT sum(gift_payouts_usd + fund_payouts_usd) FROM marts.creator_earnings) AS mart, "
        "(SELECT sum(creator_payouts_usd) FROM marts.revenue_by_stream) AS core",
    )[0]
    assert payouts["mart"] == approx(payouts["core"])


def test_report_asset_materialised_with_its_path(run: PipelineRun) -> None:
    """The unpartitioned report runs inside the partitioned job's ranged run, after the warehouse."""
    materialisations = [
        e.event_specific_data.materialization
        for e in run.result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key == dg.AssetKey(["reports", "revenue_report"])
    ]
    assert len(materialisations) == 1
    metadata = materialisations[0].metadata
    assert metadata["path"].value == str(run.root / "reports" / "revenue_report.html")
    assert (run.root / "reports" / "revenue_report.html").exists()
    assert "CTR" in metadata["preview"].value
