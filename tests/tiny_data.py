"""A tiny, hand-computed data directory for the end-to-end tests (webserver, browser, concurrency).

Every event date gets the same events, so the expected marts are one small
table per day: the tests can check the numbers a run published, not only that
it succeeded. Raw files are back-dated an hour so that the raw-files sensor,
which waits for files to settle, treats them as complete.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from tests.builders import coin_purchase, fund_payout, gift, impression, order, write_raw, write_reference

# stream -> (gross_revenue_usd, platform_fees_usd, creator_payouts_usd, net_revenue_usd, event_count), per day
EXPECTED_BY_STREAM: dict[str, tuple[float, float, float, float, int]] = {
    # cpm 5 USD -> 0.005 twice (one arrives a day late), cpc clicked 0.4 EUR * 1.1 -> 0.44
    "advertising": (0.45, 0.0, 0.0, 0.45, 3),
    # 0.99 USD on ios (store fee 30 %), one rose gift = 1 coin * 0.005 USD to the creator
    "virtual_gifts": (0.99, 0.297, 0.005, 0.688, 2),
    # 100 USD of beauty at a 5 % referral fee
    "ecommerce": (5.0, 0.0, 0.0, 5.0, 1),
    "creator_fund": (0.0, 0.0, 2.5, -2.5, 1),
}


def write_tiny_dataset(root: Path, first: dt.date, days: int) -> list[dt.date]:
    """Reference tables plus raw logs for event dates first..first+days-1; returns those dates.

    Arrival day D holds D's events and one malformed line; arrival day D+1
    also holds one late impression of D (so the last date's copies arrive a
    day after it, as they do in production).
    """
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    write_reference(root, first - dt.timedelta(days=3), dates[-1] + dt.timedelta(days=4))
    for day in dates:
        d = day.isoformat()
        t = f"{d}T10:00:00Z"
        write_raw(
            root,
            "impressions",
            d,
            [
                impression(f"imp-{d}-1", t),
                impression(f"imp-{d}-2", t, pricing_model="cpc", price=0.4, currency="EUR", clicked=True),
                "{not json",
            ],
        )
        write_raw(
            root,
            "impressions",
            (day + dt.timedelta(days=1)).isoformat(),
            [impression(f"imp-{d}-late", t)],
            name=f"late-{d}.jsonl",
        )
        write_raw(root, "coin_purchases", d, [coin_purchase(f"cp-{d}", t)])
        write_raw(root, "gifts", d, [gift(f"g-{d}", t)])
        write_raw(root, "orders", d, [order(f"o-{d}", t)])
        write_raw(root, "fund_payouts", d, [fund_payout(f"fp-{d}", t)])
    backdate_raw(root)
    return dates


def backdate_raw(root: Path, seconds: float = 3600) -> None:
    """Set every raw file's mtime ``seconds`` into the past (the sensor's settle time has passed)."""
    when = time.time() - seconds
    for path in (root / "raw").rglob("*.jsonl*"):
        os.utime(path, (when, when))
