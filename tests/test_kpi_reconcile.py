"""The KPI checks catch what they are meant to catch: tampered marts fail, honest ones (even empty) pass."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.facts.revenue import FACT_SCHEMA
from pipelines.lake import DataDir
from pipelines.marts.build import build_mart_partition
from pipelines.quality.kpi_reconcile import (
    KPI_MARTS,
    _connection,
    distinct_counts,
    expected_frame,
    kpi_ratio_problems,
    kpi_reconcile_problems,
    ratio_problems,
    reconcile_frames,
)
from pipelines.quality.reconcile import mart_problems
from tests.kpi_data import D1, PipelineRun, kpi_pipeline_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    return kpi_pipeline_run(tmp_path_factory)


def frames(run: PipelineRun, mart: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    data = DataDir.at(run.root)
    return pl.read_parquet(data.mart_file(mart, D1)), pl.read_parquet(data.facts_file(D1))


@pytest.mark.parametrize("mart", sorted(KPI_MARTS))
def test_published_marts_pass_both_checks(run: PipelineRun, mart: str) -> None:
    data = DataDir.at(run.root)
    assert kpi_reconcile_problems(data, mart, D1) == []
    assert kpi_ratio_problems(data, mart, D1) == []


def test_ads_spend_off_by_a_cent_fails(run: PipelineRun) -> None:
    mart, facts = frames(run, "ads_by_format")
    tampered = mart.with_columns(
        pl.when(pl.col("ad_format") == "topview").then(pl.col("spend_usd") + 0.01).otherwise(pl.col("spend_usd"))
    )
    problems = reconcile_frames("ads_by_format", tampered, facts)
    assert any("advertising gross_revenue_usd" in p for p in problems), problems  # the day total
    assert any("ad_format=topview] spend_usd" in p for p in problems), problems  # the row
    assert any("spend_usd" in p and "its parts" in p for p in problems), problems  # cpm + cpc != spend


def test_a_dropped_row_fails(run: PipelineRun) -> None:
    mart, facts = frames(run, "gifts_by_region")
    problems = reconcile_frames("gifts_by_region", mart.filter(pl.col("region") != "Europe"), facts)
    assert any("region=Europe]: in the facts but not in the mart" in p for p in problems), problems


def test_creator_total_must_equal_its_parts(run: PipelineRun) -> None:
    mart, facts = frames(run, "creator_earnings")
    tampered = mart.with_columns(pl.col("total_earnings_usd") + 1.0)
    problems = reconcile_frames("creator_earnings", tampered, facts)
    assert any("total_earnings_usd" in p and "its parts" in p for p in problems), problems


def test_a_wrong_paying_user_count_fails(run: PipelineRun) -> None:
    mart, facts = frames(run, "gifts_by_region")
    problems = reconcile_frames("gifts_by_region", mart.with_columns(pl.col("paying_users") + 1), facts)
    assert any("paying_users" in p for p in problems), problems


def test_ratio_checks(run: PipelineRun) -> None:
    spec = KPI_MARTS["ecommerce_by_category"]
    mart, _ = frames(run, "ecommerce_by_category")
    assert ratio_problems(spec, mart) == []
    # a zero where the denominator is 0 must be NULL; a ratio off its definition is reported
    zero_not_null = mart.with_columns(pl.col("take_rate").fill_null(0.0))
    assert any("take_rate=0.0 but gmv_usd is 0" in p for p in ratio_problems(spec, zero_not_null))
    doubled = mart.with_columns(pl.col("refund_rate") * 2)
    assert any("refund_rate=" in p and "expected" in p for p in ratio_problems(spec, doubled))


def test_shares_must_add_up_to_one(run: PipelineRun) -> None:
    spec = KPI_MARTS["kpis_by_region"]
    mart, _ = frames(run, "kpis_by_region")
    tampered = mart.with_columns(pl.col("advertising_share") + 0.1)
    problems = ratio_problems(spec, tampered)
    assert any("shares add up to" in p for p in problems), problems


@pytest.mark.parametrize("mart", sorted(KPI_MARTS))
def test_an_empty_day_builds_and_passes(tmp_path, mart: str) -> None:
    """A day without accepted events: every KPI mart is empty, and the checks agree."""
    data = DataDir.at(tmp_path)
    day = D1
    data.facts_file(day).parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(schema=FACT_SCHEMA).write_parquet(data.facts_file(day))
    assert build_mart_partition(data, mart, day) == 0
    assert kpi_reconcile_problems(data, mart, day) == []
    assert kpi_ratio_problems(data, mart, day) == []


def test_a_missing_partition_is_a_problem(tmp_path) -> None:
    assert kpi_reconcile_problems(DataDir.at(tmp_path), "ads_by_format", D1) == [f"facts {D1} missing"]


def test_distinct_counts_by_hand(tmp_path) -> None:
    """Distinct users per region, NULLs not counted, each count over its own rows (hand-computed):
    Europe: u1 bought twice and sent once, u2 sent, a NULL user bought -> 1 paying user, 2 gifters;
    Asia: u3 only sent -> 0 paying users (the row is there: the region has gift-stream facts), 1 gifter;
    the impression of u4 is not in the gift stream and counts nowhere."""
    facts = pl.DataFrame(
        {
            "event_date": [D1] * 7,
            "region": ["Europe", "Europe", "Europe", "Europe", "Europe", "Asia", "Asia"],
            "user_id": ["u1", "u1", "u1", "u2", None, "u3", "u4"],
            "log": ["coin_purchases", "coin_purchases", "gifts", "gifts", "coin_purchases", "gifts", "impressions"],
            "stream": ["virtual_gifts"] * 6 + ["advertising"],
        }
    )
    spec = KPI_MARTS["gifts_by_region"]
    want = {("Asia", 0, 1), ("Europe", 1, 2)}
    con = _connection(None)
    got = distinct_counts(spec, facts, con).select("region", "paying_users", "gifters")
    assert set(got.iter_rows()) == want
    path = tmp_path / "facts.parquet"
    facts.write_parquet(path)
    from_file = distinct_counts(spec, path, con).select("region", "paying_users", "gifters")
    assert set(from_file.iter_rows()) == want
    active = distinct_counts(KPI_MARTS["kpis_by_region"], facts, con).select("region", "active_users")
    assert set(active.iter_rows()) == {("Europe", 2), ("Asia", 2)}


def test_the_file_and_the_frame_give_the_same_expectation(run: PipelineRun) -> None:
    data = DataDir.at(run.root)
    path = data.facts_file(D1)
    for name, spec in KPI_MARTS.items():
        from_file = expected_frame(spec, path).sort(spec.keys, nulls_last=True)
        from_frame = expected_frame(spec, pl.read_parquet(path)).sort(spec.keys, nulls_last=True)
        # the same sums, added in another order: equal to the last bits
        assert_frame_equal(from_file, from_frame, rel_tol=1e-12, abs_tol=1e-12)
        assert from_file.height, name


@pytest.mark.parametrize(("mart", "column"), [("gifts_by_region", "gifters"), ("kpis_by_region", "active_users")])
def test_a_wrong_distinct_count_fails(run: PipelineRun, mart: str, column: str) -> None:
    mart_frame, facts = frames(run, mart)
    problems = reconcile_frames(mart, mart_frame.with_columns(pl.col(column) - 1), facts)
    assert any(f"] {column}: mart" in p for p in problems), problems


def test_large_amounts_that_cancel_publish_the_exact_sum_and_pass_every_check(run: PipelineRun, tmp_path) -> None:
    """Five more orders of one day: 2e17 USD placed and refunded beside three of 20 USD, fee 5 %.
    Their fees of 1e16 cancel and leave 3.0 USD, which polars' DOUBLE sums lose (1e16 + 1.0 is 1e16 in
    a double): the marts' usd_sum is exact, and the checks allow for their own rounding."""
    _, facts = frames(run, "ecommerce_by_category")
    order = facts.filter(pl.col("log") == "orders", pl.col("order_event_type") == "placed").head(1)
    amounts = [2e17, 20.0, -2e17, 20.0, 20.0]
    extra = pl.concat(
        order.with_columns(
            pl.lit(f"cancel-{i}").alias("event_id"),
            pl.lit("placed" if usd > 0 else "refunded").alias("order_event_type"),
            pl.lit(abs(usd)).alias("amount_usd"),
            pl.lit(usd * 0.05).alias("gross_revenue_usd"),
            pl.lit(usd * 0.05).alias("net_revenue_usd"),
            pl.lit(0.0).alias("affiliate_commission_usd"),
        )
        for i, usd in enumerate(amounts)
    )
    data = DataDir.at(tmp_path)
    data.facts_file(D1).parent.mkdir(parents=True, exist_ok=True)
    pl.concat([facts, extra]).write_parquet(data.facts_file(D1))
    assert pl.concat([facts, extra])["gross_revenue_usd"].sum() != facts["gross_revenue_usd"].sum() + 3.0
    for mart in ("revenue_by_stream", "revenue_by_region", *sorted(KPI_MARTS)):
        build_mart_partition(data, mart, D1)
    for mart in ("revenue_by_stream", "revenue_by_region"):
        assert mart_problems(data, mart, D1) == [], mart
    for mart in sorted(KPI_MARTS):
        assert kpi_reconcile_problems(data, mart, D1) == [], mart
    by_stream = pl.read_parquet(data.mart_file("revenue_by_stream", D1)).filter(stream="ecommerce")
    before = pl.read_parquet(DataDir.at(run.root).mart_file("revenue_by_stream", D1)).filter(stream="ecommerce")
    assert by_stream["gross_revenue_usd"].item() == pytest.approx(before["gross_revenue_usd"].item() + 3.0, abs=1e-9)
    assert by_stream["event_count"].item() == before["event_count"].item() + 5
    # the checks still see a cent on such a day, beside the groups holding the large amounts
    whole = pl.read_parquet(data.mart_file("revenue_by_stream", D1))
    whole.with_columns(
        pl.when(pl.col("stream") == "ecommerce").then(pl.col("gross_revenue_usd") + 0.01).otherwise("gross_revenue_usd")
    ).write_parquet(data.mart_file("revenue_by_stream", D1))
    assert any("gross_revenue_usd" in p for p in mart_problems(data, "revenue_by_stream", D1))
    creators = pl.read_parquet(data.mart_file("creator_earnings", D1))
    one = creators.get_column("creator_id")[0]
    tampered = creators.with_columns(
        pl.when(pl.col("creator_id") == one).then(pl.col(c) + 0.01).otherwise(pl.col(c)).alias(c)
        for c in ("fund_payouts_usd", "total_earnings_usd")
    )
    problems = reconcile_frames("creator_earnings", tampered, data.facts_file(D1))
    assert any(f"creator_id={one}] fund_payouts_usd" in p for p in problems), problems


def test_amounts_in_local_currency_do_not_loosen_the_checks(run: PipelineRun) -> None:
    """Only USD columns bound a sum's rounding: a day of 2.5 million VND orders (100 USD) still fails
    on a cent."""
    mart, facts = frames(run, "gifts_by_region")
    facts = facts.with_columns(pl.lit(2_500_000.0).alias("amount_local"))
    tampered = mart.with_columns(pl.col("coin_gross_usd") + 0.01, pl.col("net_revenue_usd") + 0.01)
    problems = reconcile_frames("gifts_by_region", tampered, facts)
    assert any("coin_gross_usd" in p for p in problems), problems
