"""Tiny hand-made data directories for tests: reference tables and raw JSONL lines."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

COUNTRIES = [
    ("US", "United States", "North America", "USD"),
    ("DE", "Germany", "Europe", "EUR"),
    ("JP", "Japan", "East Asia", "JPY"),
    ("BR", "Brazil", "Latin America", "BRL"),
]
RATES = {"USD": 1.0, "EUR": 1.1, "JPY": 0.0065, "BRL": 0.2}
STORE_FEES = [("ios", 0.3), ("android", 0.3), ("web", 0.05)]
GIFTS = [("rose", 1), ("lion", 29999)]
CATEGORIES = [("beauty", 0.05), ("electronics", 0.02)]
CREATOR_USD_PER_COIN = 0.005


def write_reference(root: Path, first: dt.date, last: dt.date, rates: dict[str, float] | None = None) -> None:
    ref = root / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    rates = RATES if rates is None else rates
    (ref / "countries.csv").write_text(
        "country,country_name,region,currency\n" + "".join(f"{c},{n},{r},{cur}\n" for c, n, r, cur in COUNTRIES)
    )
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    (ref / "fx_rates.csv").write_text(
        "date,currency,usd_per_unit\n" + "".join(f"{d},{c},{r}\n" for d in days for c, r in rates.items())
    )
    (ref / "store_fees.csv").write_text("platform,fee_rate\n" + "".join(f"{p},{f}\n" for p, f in STORE_FEES))
    (ref / "gift_catalog.csv").write_text("gift_type,coins\n" + "".join(f"{g},{c}\n" for g, c in GIFTS))
    (ref / "shop_categories.csv").write_text(
        "category,referral_fee_rate\n" + "".join(f"{c},{r}\n" for c, r in CATEGORIES)
    )
    (ref / "parameters.csv").write_text(f"name,value\ncreator_usd_per_coin,{CREATOR_USD_PER_COIN}\n")


def write_raw(root: Path, log: str, arrival: str, lines: list, name: str = "part-0.jsonl") -> Path:
    """Write lines (dicts are JSON-encoded, strings written as they are) to raw/<log>/dt=<arrival>/<name>."""
    folder = root / "raw" / log / f"dt={arrival}"
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    path = folder / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def impression(event_id: str, time: str, **overrides) -> dict:
    row = {
        "event_id": event_id,
        "event_time": time,
        "user_id": "u1",
        "country": "US",
        "ad_format": "in_feed",
        "advertiser_id": "adv1",
        "campaign_id": "c1",
        "pricing_model": "cpm",
        "price": 5.0,
        "currency": "USD",
        "clicked": False,
    }
    return row | overrides


def coin_purchase(event_id: str, time: str, **overrides) -> dict:
    row = {
        "event_id": event_id,
        "event_time": time,
        "user_id": "u1",
        "user_age": 30,
        "country": "US",
        "platform": "ios",
        "coins": 70,
        "amount": 0.99,
        "currency": "USD",
    }
    return row | overrides


def gift(event_id: str, time: str, **overrides) -> dict:
    row = {
        "event_id": event_id,
        "event_time": time,
        "user_id": "u1",
        "user_age": 30,
        "country": "US",
        "creator_id": "cr1",
        "live_id": "l1",
        "gift_type": "rose",
        "coins": 1,
    }
    return row | overrides


def order(event_id: str, time: str, **overrides) -> dict:
    row = {
        "event_id": event_id,
        "event_time": time,
        "order_id": "o1",
        "event_type": "placed",
        "buyer_id": "b1",
        "seller_id": "s1",
        "country": "US",
        "category": "beauty",
        "channel": "live",
        "amount": 100.0,
        "currency": "USD",
        "affiliate_creator_id": None,
        "affiliate_rate": 0.0,
    }
    return row | overrides


def fund_payout(event_id: str, time: str, **overrides) -> dict:
    row = {
        "event_id": event_id,
        "event_time": time,
        "creator_id": "cr1",
        "country": "US",
        "qualified_views": 1000,
        "amount": 2.5,
        "currency": "USD",
    }
    return row | overrides
