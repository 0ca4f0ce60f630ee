"""A tiny hand-made data directory for the KPI marts, the examples and the report, run once per session.

Every number the KPI tests expect is derived by hand in the comments below from
builders.py's reference tables (USD 1.0, EUR 1.1, JPY 0.0065, BRL 0.2; store
fees ios/android 0.3, web 0.05; referral fees beauty 0.05, electronics 0.02;
creator_usd_per_coin 0.005). US is North America, DE Europe, JP East Asia,
BR Latin America.

One real pipeline run (``execute_range``: landing → staged → facts → marts →
checks → warehouse → report) costs several seconds, so all test modules
share it through ``kpi_pipeline_run``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from tests.builders import coin_purchase, fund_payout, gift, impression, order, write_raw, write_reference

D1 = dt.date(2025, 3, 3)  # a Monday: both days fall in one week
D2 = dt.date(2025, 3, 4)
T1 = "2025-03-03T10:00:00Z"
T2 = "2025-03-04T09:30:00.250Z"


def write_kpi_dataset(root: Path) -> None:
    """Reference tables and raw logs of D1 and D2 (arrival days D1..D2+3)."""
    write_reference(root, D1, D2 + dt.timedelta(days=3))
    a1, a2 = D1.isoformat(), D2.isoformat()

    # --- advertising, D1 -------------------------------------------------------------
    # North America / in_feed: 4 impressions, 2 clicks
    #   i1 cpm 5 USD -> 0.005, i2 cpm 5 USD clicked -> 0.005, i3 cpc 0.5 clicked -> 0.5, i4 cpc 0.5 -> 0
    #   spend 0.51 (cpm 0.01, cpc 0.5), CTR 0.5, eCPM 0.51 / 4 * 1000 = 127.5
    # Europe / topview: 2 impressions, 1 click; cpm 10 EUR = 11 USD -> 0.011 each
    #   spend 0.022, CTR 0.5, eCPM 11.0
    write_raw(
        root,
        "impressions",
        a1,
        [
            impression("i1", T1, user_id="u1"),
            impression("i2", T1, user_id="u2", clicked=True),
            impression("i3", T1, user_id="u1", pricing_model="cpc", price=0.5, clicked=True),
            impression("i4", T1, user_id="u3", pricing_model="cpc", price=0.5),
            impression("i5", T1, user_id="u4", country="DE", ad_format="topview", price=10.0, currency="EUR"),
            impression(
                "i6", T1, user_id="u4", country="DE", ad_format="topview", price=10.0, currency="EUR", clicked=True
            ),
            "{not json",  # quarantine: malformed
        ],
    )
    # D2: one cpm impression of 8 USD that arrives a day late (accepted): spend 0.008, eCPM 8.0, CTR 0
    write_raw(
        root, "impressions", (D2 + dt.timedelta(days=1)).isoformat(), [impression("i7", T2, user_id="u1", price=8.0)]
    )
    # an impression of D1 arriving on D1+4: quarantine late_arrival
    write_raw(root, "impressions", (D1 + dt.timedelta(days=4)).isoformat(), [impression("i8", T1)])

    # --- virtual gifts, D1 -------------------------------------------------------------
    # North America: c1 0.99 ios (fee 0.297), c2 4.99 web (fee 0.2495), c3 9.99 android (fee 2.997)
    #   coins bought 70 + 350 + 700 = 1120, paying users {u1, u2} = 2, coin gross 15.97, fees 3.5435
    #   ARPPU 15.97 / 2 = 7.985
    # Europe: c4 1 EUR = 1.1 USD web (fee 0.055), 100 coins, 1 paying user, ARPPU 1.1
    write_raw(
        root,
        "coin_purchases",
        a1,
        [
            coin_purchase("c1", T1, user_id="u1"),
            coin_purchase("c2", T1, user_id="u1", platform="web", coins=350, amount=4.99),
            coin_purchase("c3", T1, user_id="u2", platform="android", coins=700, amount=9.99),
            coin_purchase("c4", T1, user_id="u4", country="DE", platform="web", coins=100, amount=1.0, currency="EUR"),
        ],
    )
    # D2 North America: c5 0.99 ios by u3 (+ an identical copy in a second file: kept once),
    #   c6 by a 16-year-old: quarantine underage
    write_raw(root, "coin_purchases", a2, [coin_purchase("c5", T2, user_id="u3")])
    write_raw(
        root,
        "coin_purchases",
        a2,
        [coin_purchase("c5", T2, user_id="u3"), coin_purchase("c6", T2, user_id="u9", user_age=16)],
        name="part-1.jsonl",
    )
    # Gifts D1: North America g1 1 coin + g2 10 coins -> cr1: payouts 0.055, coins spent 11,
    #   payout ratio 0.055 / 15.97; Europe g3 1 coin -> cr2: 0.005, ratio 0.005 / 1.1;
    #   East Asia g4 1 coin -> cr2 with no coin purchase: ARPPU and payout ratio NULL.
    #   g5 from an unknown country: quarantine unknown_reference
    write_raw(
        root,
        "gifts",
        a1,
        [
            gift("g1", T1, user_id="u1", creator_id="cr1"),
            gift("g2", T1, user_id="u2", creator_id="cr1", coins=10),
            gift("g3", T1, user_id="u4", country="DE", creator_id="cr2"),
            gift("g4", T1, user_id="u5", country="JP", creator_id="cr2"),
            gift("g5", T1, user_id="u6", country="XX", creator_id="cr2"),
        ],
    )

    # --- ecommerce, D1 -----------------------------------------------------------------
    # North America / beauty (fee 0.05): o1 placed 100 (affiliate cr1 10 %), o2 placed 50,
    #   o3 refund of an older order of 20 (affiliate cr1 10 %)
    #   GMV 150, refunds 20, refund rate 20 / 150, referral 5 + 2.5 - 1 = 6.5, take rate 6.5 / 150,
    #   affiliate GMV 100, commissions 10 - 2 = 8
    # Europe / electronics (fee 0.02): o4 placed 200 EUR = 220 USD (affiliate cr2 5 %)
    #   GMV 220, refund rate 0, referral 4.4, take rate 0.02, affiliate GMV 220, commission 11
    # East Asia / electronics: o5 refund only, 1000 JPY = 6.5 USD: GMV 0 -> refund and take rate NULL,
    #   referral -0.13
    write_raw(
        root,
        "orders",
        a1,
        [
            order("o1", T1, order_id="A", buyer_id="b1", affiliate_creator_id="cr1", affiliate_rate=0.1),
            order("o2", T1, order_id="B", buyer_id="b2", amount=50.0),
            order(
                "o3",
                T1,
                order_id="Z",
                event_type="refunded",
                buyer_id="b1",
                amount=20.0,
                affiliate_creator_id="cr1",
                affiliate_rate=0.1,
            ),
            order(
                "o4",
                T1,
                order_id="C",
                buyer_id="b3",
                country="DE",
                category="electronics",
                amount=200.0,
                currency="EUR",
                affiliate_creator_id="cr2",
                affiliate_rate=0.05,
            ),
            order(
                "o5",
                T1,
                order_id="Y",
                event_type="refunded",
                buyer_id="b4",
                country="JP",
                category="electronics",
                amount=1000.0,
                currency="JPY",
            ),
        ],
    )

    # --- creator fund, D1 ---------------------------------------------------------------
    # cr1 2.5 USD (North America, 1000 views); cr3 10 BRL = 2.0 USD (Latin America, 500 views)
    write_raw(
        root,
        "fund_payouts",
        a1,
        [
            fund_payout("f1", T1, creator_id="cr1"),
            fund_payout("f2", T1, creator_id="cr3", country="BR", qualified_views=500, amount=10.0, currency="BRL"),
        ],
    )


@dataclass(frozen=True)
class PipelineRun:
    root: Path
    result: dg.ExecuteInProcessResult

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"


_RUNS: dict[str, PipelineRun] = {}


def kpi_pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    """The one pipeline run over the KPI dataset, shared by every test module of the session."""
    if "kpi" not in _RUNS:
        from pipelines.runner import execute_range

        root = tmp_path_factory.mktemp("kpi_data")
        write_kpi_dataset(root)
        result = execute_range(root, D1, D2, log_level="WARNING", instance=dg.DagsterInstance.ephemeral())
        _RUNS["kpi"] = PipelineRun(root=root, result=result)
    return _RUNS["kpi"]
