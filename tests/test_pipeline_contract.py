"""SPEC §3–5 end to end: one Dagster run over a hand-built data directory.

Every number below was computed by hand from the lines written here and the
reference tables of tests/builders.py (USD 1, EUR 1.1, JPY 0.0065, BRL 0.2;
ios/android 30 %, web 5 %; beauty 5 %, electronics 2 %; 0.005 USD per coin).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.lake import DataDir
from pipelines.marts.build import mart_names
from pipelines.runner import execute_range
from pipelines.warehouse.query import connect_read_only
from tests.builders import coin_purchase, fund_payout, gift, impression, order, write_raw, write_reference

D3, D4, D5 = "2025-03-03", "2025-03-04", "2025-03-05"
START, END = dt.date(2025, 3, 3), dt.date(2025, 3, 5)


def t(day: str, clock: str = "10:00:00") -> str:
    return f"{day}T{clock}Z"


def build_scenario(root: Path) -> None:
    write_reference(root, dt.date(2025, 2, 20), dt.date(2025, 3, 20))
    # --- the clean, hand-computed revenue of 2025-03-05 (SPEC §3) ---
    write_raw(
        root,
        "impressions",
        D5,
        [
            impression("cpm-us", t(D5), price=5),  # 5/1000 = 0.005
            impression("cpc-de", t(D5), country="DE", pricing_model="cpc", price=0.5, currency="EUR", clicked=True),
            impression("cpc-noclick", t(D5), pricing_model="cpc", price=0.5, clicked=False),  # 0, still counted
        ],
    )
    write_raw(
        root,
        "coin_purchases",
        D5,
        [
            coin_purchase("ios", t(D5), amount=0.99),  # gross 0.99, fees 0.297
            coin_purchase("web-jp", t(D5), country="JP", platform="web", amount=1000, currency="JPY"),  # 6.5, 0.325
        ],
    )
    write_raw(root, "gifts", D5, [gift("g100", t(D5), coins=100, gift_type="lion")])  # payout 0.5
    write_raw(
        root,
        "orders",
        D5,
        [
            order("placed", t(D5), amount=100, affiliate_creator_id="cr2", affiliate_rate=0.1),  # +5.0
            order(
                "refund-de",
                t(D5),
                event_type="refunded",
                country="DE",
                category="electronics",
                amount=40,
                currency="EUR",
            ),  # -(40*1.1*0.02) = -0.88
        ],
    )
    write_raw(
        root,
        "fund_payouts",
        D5,
        [
            fund_payout("fp-us", t(D5), amount=2.5),  # payout 2.5
            fund_payout("fp-br", t(D5), country="BR", amount=10, currency="BRL"),  # payout 2.0
        ],
    )
    # --- rule 5: duplicates, 2025-03-03 and 2025-03-04 ---
    same = impression("dup-same", t(D3), price=1000)
    write_raw(root, "impressions", D3, [same, same], "a.jsonl")  # same day twice
    write_raw(
        root,
        "impressions",
        D4,
        [same | {"event_time": "2025-03-03T10:00:00+00:00", "price": 1000.0}],
        "b.jsonl",
    )  # a later day, written differently but identical in value → one event worth 1.0
    write_raw(
        root,
        "impressions",
        D3,
        [impression("dup-conflict", t(D3)), impression("dup-conflict", t(D3), price=6)],
        "c.jsonl",
    )
    write_raw(root, "impressions", D3, [impression("dup-date", t(D3))], "d.jsonl")
    write_raw(root, "impressions", D4, [impression("dup-date", t(D4))], "e.jsonl")  # other event date: conflict
    write_raw(
        root,
        "impressions",
        D3,
        [impression("dup-invalid", t(D3)), impression("dup-invalid", t(D3), price=-1)],
        "f.jsonl",
    )
    write_raw(root, "impressions", D4, [impression("same-invalid", t(D4), ad_format="banner")] * 2, "g.jsonl")
    # a copy rejected by rule 4 is not seen by rule 5: the on-time copy stands alone
    write_raw(root, "impressions", D3, [impression("late-copy", "2025-03-03T09:00:00Z", price=2000)], "h.jsonl")
    write_raw(
        root,
        "impressions",
        "2025-03-07",
        [impression("late-copy", "2025-03-03T09:00:00Z", price=1)],
        "i.jsonl",
    )
    # 3 days late is kept (arrives 2025-03-07 for 2025-03-04), 4 days late is not
    write_raw(root, "impressions", "2025-03-07", [impression("lag3", t(D4), price=3000)], "j.jsonl")
    write_raw(root, "impressions", "2025-03-08", [impression("lag4", t(D4), price=3000)], "k.jsonl")
    # --- rules 6–9 on 2025-03-04 ---
    write_raw(
        root,
        "coin_purchases",
        D4,
        [
            coin_purchase("bad-platform", t(D4), platform="console"),  # enum → invalid_value
            coin_purchase("age-131", t(D4), user_age=131),
            coin_purchase("age-neg", t(D4), user_age=-1),
            coin_purchase("zero-amount", t(D4), amount=0),
            coin_purchase("unknown-country", t(D4), country="ZZ", user_age=17),  # rule 7 before rule 9
            coin_purchase("chf", t(D4), currency="CHF"),
            coin_purchase("minor", t(D4), user_age=17),
            coin_purchase("adult-18", t(D4), user_age=18, amount=2),  # kept: gross 2, fees 0.6
        ],
    )
    write_raw(
        root,
        "gifts",
        D4,
        [
            gift("dragon", t(D4), gift_type="dragon"),
            gift("zero-coins", t(D4), coins=0),
            gift("minor-gift", t(D4), user_age=13),
            gift("invalid-and-unknown", t(D4), coins=0, gift_type="dragon"),  # rule 6 first
        ],
    )
    write_raw(
        root,
        "orders",
        D4,
        [
            order("weapons", t(D4), category="weapons"),
            order("rate-1", t(D4), affiliate_rate=1.0),
            order("cancelled", t(D4), event_type="cancelled"),
            order("tv", t(D4), channel="tv"),
        ],
    )
    write_raw(
        root,
        "fund_payouts",
        D4,
        [
            fund_payout("neg-views", t(D4), qualified_views=-1),
            fund_payout("no-fx-day", "2025-03-04T23:59:59Z"),
        ],
    )
    write_raw(
        root,
        "impressions",
        D4,
        [impression("cpa", t(D4), pricing_model="cpa"), impression("zero-price", t(D4), price=0)],
        "l.jsonl",
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("contract")
    build_scenario(root)
    # fund payout on a day with no EUR/BRL… rate: drop BRL for 2025-03-04 only
    fx = root / "reference" / "fx_rates.csv"
    fx.write_text("\n".join(line for line in fx.read_text().splitlines() if line != "2025-03-04,BRL,0.2") + "\n")
    write_raw(root, "fund_payouts", D4, [fund_payout("brl-no-rate", t(D4), country="BR", currency="BRL")], "z.jsonl")
    result = execute_range(root, START, END, log_level="ERROR", instance=dg.DagsterInstance.ephemeral())
    con = duckdb.connect(str(DataDir.at(root).warehouse), read_only=True)
    yield root, result, con
    con.close()


def quarantined(con, log: str | None = None) -> dict[str, str]:
    sql = "SELECT event_id, reason FROM quality.quarantine" + (f" WHERE log = '{log}'" if log else "")
    return dict(con.execute(sql).fetchall())


def test_run_succeeds_with_every_check_passing(warehouse) -> None:
    _, result, _ = warehouse
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert evaluations, "asset checks ran"
    failed = [e.asset_check_key for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert failed == []


def test_revenue_by_stream_hand_computed(warehouse) -> None:
    _, _, con = warehouse
    rows = con.execute(
        "SELECT stream, gross_revenue_usd, platform_fees_usd, creator_payouts_usd, net_revenue_usd, event_count "
        "FROM marts.revenue_by_stream WHERE event_date = DATE '2025-03-05' ORDER BY stream"
    ).fetchall()
    expected = [
        ("advertising", 0.555, 0.0, 0.0, 0.555, 3),
        ("creator_fund", 0.0, 0.0, 4.5, -4.5, 2),
        ("ecommerce", 4.12, 0.0, 0.0, 4.12, 2),
        ("virtual_gifts", 7.49, 0.622, 0.5, 6.368, 3),
    ]
    assert [r[0] for r in rows] == [e[0] for e in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got[1:5] == pytest.approx(want[1:5], abs=1e-9), got[0]
        assert got[5] == want[5]


def test_revenue_by_region_hand_computed(warehouse) -> None:
    _, _, con = warehouse
    rows = con.execute(
        "SELECT region, country, stream, net_revenue_usd, event_count FROM marts.revenue_by_region "
        "WHERE event_date = DATE '2025-03-05' ORDER BY region, country, stream"
    ).fetchall()
    assert rows == [
        ("East Asia", "JP", "virtual_gifts", pytest.approx(6.175), 1),
        ("Europe", "DE", "advertising", pytest.approx(0.55), 1),
        ("Europe", "DE", "ecommerce", pytest.approx(-0.88), 1),
        ("Latin America", "BR", "creator_fund", pytest.approx(-2.0), 1),
        ("North America", "US", "advertising", pytest.approx(0.005), 2),
        ("North America", "US", "creator_fund", pytest.approx(-2.5), 1),
        ("North America", "US", "ecommerce", pytest.approx(5.0), 1),
        ("North America", "US", "virtual_gifts", pytest.approx(0.99 - 0.297 - 0.5), 2),
    ]


def test_rule5_duplicates(warehouse) -> None:
    _, _, con = warehouse
    q = quarantined(con, "impressions")
    assert "dup-same" not in q  # identical copies collapse, on the same day and across days
    adv = con.execute(
        "SELECT gross_revenue_usd, event_count FROM marts.revenue_by_stream "
        "WHERE event_date = DATE '2025-03-03' AND stream = 'advertising'"
    ).fetchall()
    assert adv == [(pytest.approx(1.0 + 2.0), 2)]  # dup-same once (1.0) + late-copy's on-time copy (2.0)
    n = dict(con.execute("SELECT event_id, count(*) FROM quality.quarantine GROUP BY 1").fetchall())
    assert q["dup-conflict"] == "conflicting_duplicate" and n["dup-conflict"] == 2  # every copy
    assert q["dup-date"] == "conflicting_duplicate" and n["dup-date"] == 2  # across event dates
    assert q["dup-invalid"] == "conflicting_duplicate"  # rule 5 before rule 6
    assert q["same-invalid"] == "invalid_value" and n["same-invalid"] == 1  # collapsed, then rejected once
    assert q["late-copy"] == "late_arrival" and n["late-copy"] == 1


def test_rule4_three_days_late_kept_four_not(warehouse) -> None:
    _, _, con = warehouse
    assert quarantined(con)["lag4"] == "late_arrival"
    ids = {r[0] for r in con.execute("SELECT event_id FROM facts.revenue_events").fetchall()}
    assert "lag3" in ids and "lag4" not in ids


def test_rules_6_to_9(warehouse) -> None:
    _, _, con = warehouse
    q = quarantined(con)
    expected = {
        "bad-platform": "invalid_value",
        "age-131": "invalid_value",
        "age-neg": "invalid_value",
        "zero-amount": "invalid_value",
        "unknown-country": "unknown_reference",
        "chf": "missing_fx_rate",
        "minor": "underage",
        "dragon": "unknown_reference",
        "zero-coins": "invalid_value",
        "minor-gift": "underage",
        "invalid-and-unknown": "invalid_value",
        "weapons": "unknown_reference",
        "rate-1": "invalid_value",
        "cancelled": "invalid_value",
        "tv": "invalid_value",
        "neg-views": "invalid_value",
        "brl-no-rate": "missing_fx_rate",
        "cpa": "invalid_value",
        "zero-price": "invalid_value",
    }
    assert {k: q.get(k) for k in expected} == expected
    ids = {r[0] for r in con.execute("SELECT event_id FROM facts.revenue_events").fetchall()}
    assert {"adult-18", "no-fx-day"} <= ids


def test_quarantine_counts_per_log_and_reason(warehouse) -> None:
    _, _, con = warehouse
    rows = dict(
        ((log, reason), n)
        for log, reason, n in con.execute(
            "SELECT log, reason, count(*) FROM quality.quarantine GROUP BY ALL"
        ).fetchall()
    )
    assert rows == {
        ("impressions", "conflicting_duplicate"): 6,  # dup-conflict, dup-date, dup-invalid: 2 copies each
        ("impressions", "late_arrival"): 2,  # late-copy, lag4
        ("impressions", "invalid_value"): 3,  # same-invalid (once), cpa, zero-price
        ("coin_purchases", "invalid_value"): 4,
        ("coin_purchases", "unknown_reference"): 1,
        ("coin_purchases", "missing_fx_rate"): 1,
        ("coin_purchases", "underage"): 1,
        ("gifts", "unknown_reference"): 1,
        ("gifts", "invalid_value"): 2,
        ("gifts", "underage"): 1,
        ("orders", "unknown_reference"): 1,
        ("orders", "invalid_value"): 3,
        ("fund_payouts", "invalid_value"): 1,
        ("fund_payouts", "missing_fx_rate"): 1,
    }


def test_rerun_is_idempotent(warehouse) -> None:
    """Re-running the range replaces every partition: identical tables, no doubled rows."""
    root, _, _ = warehouse
    tables = [f"marts.{name}" for name in mart_names()] + ["quality.quarantine", "facts.revenue_events"]

    def snapshot() -> dict[str, list]:
        # connect_read_only ATTACHes the file there now (a plain connect could reuse a cached instance)
        con = connect_read_only(root)
        try:
            return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
        finally:
            con.close()

    before = snapshot()
    published = DataDir.at(root).warehouse.stat().st_ino
    result = execute_range(root, START, END, log_level="ERROR", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert DataDir.at(root).warehouse.stat().st_ino != published, "the warehouse was republished"
    after = snapshot()
    assert after == before
    assert all(before[t] for t in ("marts.revenue_by_stream", "quality.quarantine"))


def test_a_package_without_its_mart_sql_fails_to_load_instead_of_publishing_no_marts(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of pipelines/ without sql/ (a non-editable install) used to load with no marts at all."""
    from pipelines.marts import build

    monkeypatch.setattr(build, "MARTS_SQL_DIR", tmp_path / "sql" / "marts")
    with pytest.raises(build.MartSqlMissing, match="revenue_by_stream, revenue_by_region"):
        build.mart_names()
