"""Valid input with extreme numbers publishes instead of failing the run.

SPEC §2 bounds money only below (``> 0``) and coins only below (``int > 0``), so a
producer may send an amount of 1e20 or two gifts of 2^62 coins. The marts' exact
DECIMAL sums cannot hold such totals: a group holding an amount of 1e9 USD or more
is summed exactly from the values' binary parts instead (and large amounts that cancel
leave the small ones beside them), the KPI marts' coin totals that exceed BIGINT are NULL,
and a JSON number too large for a double (1e400) is ``invalid_value`` (rule 6: an
amount must be a finite number above 0). Bounds are checked on the number as a double
reads it, as JSON readers do (Python's among them): 1e-400 reads as 0, not above 0, and
an affiliate rate of 0.99999999999999999 reads as 1, not below 1; both are
``invalid_value``. Values are hand-computed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.lake import DataDir
from pipelines.runner import execute_range
from tests.builders import coin_purchase, fund_payout, gift, impression, order, write_raw, write_reference
from tests.reference_impl import published_marts, reference_run

DAY = dt.date(2025, 3, 5)
T = "2025-03-05T10:00:00Z"
TWO_TO_62 = 2**62


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("extreme")


@pytest.fixture(scope="module")
def warehouse(root: Path):
    write_reference(root, dt.date(2025, 2, 20), dt.date(2025, 3, 20))
    day = DAY.isoformat()
    infinite_price = json.dumps(impression("inf-price", T)).replace('"price": 5.0', '"price": 1e400')
    underflow_price = json.dumps(impression("tiny-price", T)).replace('"price": 5.0', '"price": 1e-400')
    write_raw(root, "impressions", day, [impression("huge-cpm", T, price=1e300), infinite_price, underflow_price])
    rounded_rate = json.dumps(order("rate-to-1", T, affiliate_creator_id="cr9", affiliate_rate=0.5)).replace(
        '"affiliate_rate": 0.5', '"affiliate_rate": 0.99999999999999999'
    )
    assert "0.99999999999999999" in rounded_rate
    # two orders of 2e17 USD, one of them refunded, beside three of 20 USD, at beauty's 5 %: the fees
    # of 1e16 cancel and leave 3.0 USD, which a DOUBLE sum lost (1e16 + 1.0 is 1e16 in a double)
    cancelling = [
        order("huge-placed", T, amount=2e17),
        order("small-1", T, amount=20.0),
        order("huge-refund", T, amount=2e17, event_type="refunded"),
        order("small-2", T, amount=20.0),
        order("small-3", T, amount=20.0),
    ]
    write_raw(root, "orders", day, [rounded_rate, *cancelling])
    write_raw(root, "coin_purchases", day, [coin_purchase("big", T, amount=1e20), coin_purchase("small", T)])
    payouts = [fund_payout("f1", T, amount=6e19), fund_payout("f2", T, amount=6e19)]
    write_raw(root, "fund_payouts", day, [*payouts, fund_payout("views-2^63", T, qualified_views=2**63)])
    write_raw(root, "gifts", day, [gift("g1", T, coins=TWO_TO_62), gift("g2", T, coins=TWO_TO_62)])
    result = execute_range(root, DAY, DAY, log_level="ERROR", instance=dg.DagsterInstance.ephemeral())
    con = duckdb.connect(str(DataDir.at(root).warehouse), read_only=True)
    yield result, con
    con.close()


def test_the_run_succeeds_with_every_check_passing(warehouse) -> None:
    result, _ = warehouse
    assert result.success
    failed = [
        e.asset_check_key
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed == []


def test_an_amount_too_large_for_a_double_is_invalid_value(warehouse) -> None:
    _, con = warehouse
    rows = con.execute("SELECT log, event_id, reason FROM quality.quarantine").fetchall()
    assert sorted(rows) == [
        ("fund_payouts", "views-2^63", "schema_violation"),  # beyond 64 bits: the README's decision
        ("impressions", "inf-price", "invalid_value"),
        ("impressions", "tiny-price", "invalid_value"),  # 1e-400 reads as 0.0
        ("orders", "rate-to-1", "invalid_value"),  # 0.99999999999999999 reads as 1.0
    ]


def test_the_independent_implementation_rejects_the_same_copies(warehouse, root: Path) -> None:
    assert published_marts(root)[2] == reference_run(root, DAY, DAY)[2]


def test_revenue_by_stream_sums_large_amounts(warehouse) -> None:
    _, con = warehouse
    rows = con.execute(
        """SELECT stream, gross_revenue_usd, platform_fees_usd, creator_payouts_usd, net_revenue_usd, event_count
           FROM marts.revenue_by_stream ORDER BY stream"""
    ).fetchall()
    got = {r[0]: r[1:] for r in rows}
    payout = 2 * TWO_TO_62 * 0.005
    want = {
        "advertising": (1e297, 0.0, 0.0, 1e297, 1),  # cpm: 1e300 / 1000
        "creator_fund": (0.0, 0.0, 1.2e20, -1.2e20, 2),  # 2 × 6e19 would overflow DECIMAL(38, 18)
        "ecommerce": (3.0, 0.0, 0.0, 3.0, 5),  # 0.05 × (2e17 + 3 × 20 − 2e17)
        "virtual_gifts": (1e20 + 0.99, (1e20 + 0.99) * 0.3, payout, (1e20 + 0.99) * 0.7 - payout, 4),
    }
    assert set(got) == set(want)
    assert got["ecommerce"] == want["ecommerce"]  # exactly
    for stream, values in want.items():
        assert got[stream][:4] == pytest.approx(values[:4], rel=1e-12), stream
        assert got[stream][4] == values[4], stream


def test_small_totals_stay_exact_beside_large_ones(warehouse) -> None:
    """Only the groups holding a large amount give up the exact sum."""
    _, con = warehouse
    exact = con.execute(
        "SELECT coin_gross_usd, gift_payouts_usd FROM marts.gifts_by_region WHERE event_date = ?", [DAY]
    ).fetchone()
    assert exact == pytest.approx((1e20 + 0.99, 2 * TWO_TO_62 * 0.005), rel=1e-12)


def test_coin_totals_beyond_bigint_are_null(warehouse) -> None:
    _, con = warehouse
    bought, spent = con.execute("SELECT coins_bought, coins_spent FROM marts.gifts_by_region").fetchone()
    assert (bought, spent) == (140, None)  # 70 + 70 coins; 2 × 2^62 does not fit a BIGINT
    received = con.execute("SELECT coins_received FROM marts.creator_earnings WHERE creator_id = 'cr1'").fetchone()
    assert received == (None,)
