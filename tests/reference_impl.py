"""An independent, deliberately naive implementation of SPEC §3–5 for tests.

Plain Python, one line at a time, sharing no code with the pipeline: it is the
"second opinion" the marts are compared with, cell by cell, as the external
checker does. Slow on purpose-free grounds (clarity over speed); use it on
small data only.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

LOGS = ("impressions", "coin_purchases", "gifts", "orders", "fund_payouts")
S, ID, NUM, INT, BOOL, TIME, NSTR = "str", "id", "num", "int", "bool", "time", "nullable_str"
FIELDS = {
    "impressions": dict(
        user_id=ID,
        country=S,
        ad_format=S,
        advertiser_id=ID,
        campaign_id=ID,
        pricing_model=S,
        price=NUM,
        currency=S,
        clicked=BOOL,
    ),
    "coin_purchases": dict(user_id=ID, user_age=INT, country=S, platform=S, coins=INT, amount=NUM, currency=S),
    "gifts": dict(user_id=ID, user_age=INT, country=S, creator_id=ID, live_id=ID, gift_type=S, coins=INT),
    "orders": dict(
        order_id=ID,
        event_type=S,
        buyer_id=ID,
        seller_id=ID,
        country=S,
        category=S,
        channel=S,
        amount=NUM,
        currency=S,
        affiliate_creator_id=NSTR,  # SPEC §2: "string or null" (and optional)
        affiliate_rate=NUM,
    ),
    "fund_payouts": dict(creator_id=ID, country=S, qualified_views=INT, amount=NUM, currency=S),
}
STREAM = {
    "impressions": "advertising",
    "coin_purchases": "virtual_gifts",
    "gifts": "virtual_gifts",
    "orders": "ecommerce",
    "fund_payouts": "creator_fund",
}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")


def _as_float(value: int | float) -> float:
    """A JSON number as a double: an integer literal too large for one is infinite (as 1e400 parses)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _reject_constant(_: str) -> None:
    raise ValueError("not JSON")


def _type_ok(kind: str, value: object) -> bool:
    if kind == S:
        return isinstance(value, str)
    if kind == ID:
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    if kind == NSTR:
        return value is None or isinstance(value, str)
    if kind == NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == INT:  # the README: integers must fit in 64 bits (RFC 8259 §6 lets a reader limit the range)
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if kind == BOOL:
        return isinstance(value, bool)
    raise AssertionError(kind)


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not TIME_RE.fullmatch(value):  # match's $ would allow a final "\n"
        return None
    text = value.replace("Z", "+00:00")
    head, _, tail = text.partition(".")
    if tail:  # Python keeps at most 6 fraction digits
        digits = tail[: tail.index("+")]
        text = f"{head}.{(digits + '000000')[:6]}+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _beyond_microseconds(value: str) -> str:
    """The fraction digits a datetime drops (7th on), without trailing zeros: part of the instant."""
    _, _, tail = value.partition(".")
    return tail.removesuffix("Z").removesuffix("+00:00")[6:].rstrip("0")


def _read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a reference table; blanks around names and values and lines of blanks do not count
    (the README's contract decisions)."""
    with path.open(newline="") as f:
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]
    return [row for row in rows if any(row.values())]


def _lines(folder: Path):
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):  # hidden: a file still being written (the README's decision)
            continue
        if path.name.endswith(".jsonl"):
            data = path.read_bytes()
        elif path.name.endswith(".jsonl.gz"):
            data = gzip.decompress(path.read_bytes())
        else:
            continue
        data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark opening the file (RFC 8259 §8.1)
        for raw in data.splitlines():  # LF, CRLF or a lone CR, as Python's universal newlines
            if raw.strip(b" \t\r"):
                yield path.name, raw


def reference_run(root: Path, start: dt.date, end: dt.date):
    """Returns (revenue_by_stream, revenue_by_region, quarantine counts per (log, reason))."""
    countries = {r["country"]: r for r in _read_csv(root / "reference" / "countries.csv")}
    fx = {(r["date"], r["currency"]): float(r["usd_per_unit"]) for r in _read_csv(root / "reference" / "fx_rates.csv")}
    fees = {r["platform"]: float(r["fee_rate"]) for r in _read_csv(root / "reference" / "store_fees.csv")}
    gifts = {r["gift_type"] for r in _read_csv(root / "reference" / "gift_catalog.csv")}
    cats = {r["category"]: float(r["referral_fee_rate"]) for r in _read_csv(root / "reference" / "shop_categories.csv")}
    per_coin = float(
        {r["name"]: r["value"] for r in _read_csv(root / "reference" / "parameters.csv")}["creator_usd_per_coin"]
    )
    quarantine: Counter = Counter()
    by_stream: dict = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    by_region: dict = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    n_days = (end - start).days + 4
    arrivals = [start + dt.timedelta(days=i) for i in range(n_days)]
    for log in LOGS:
        fields = FIELDS[log]
        copies: dict[str, list] = defaultdict(list)
        for arrival in arrivals:
            for _name, raw in _lines(root / "raw" / log / f"dt={arrival}"):
                try:
                    obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
                except ValueError:
                    quarantine[(log, "malformed")] += 1
                    continue
                if not isinstance(obj, dict):
                    quarantine[(log, "malformed")] += 1
                    continue
                ts = _parse_time(obj.get("event_time"))
                ok = isinstance(obj.get("event_id"), str) and obj["event_id"] != "" and ts is not None
                for f, kind in fields.items():
                    if kind == NSTR:
                        ok = ok and _type_ok(kind, obj.get(f))
                    else:
                        ok = ok and f in obj and obj[f] is not None and _type_ok(kind, obj[f])
                if not ok:
                    quarantine[(log, "schema_violation")] += 1
                    continue
                day = ts.date()
                if day > arrival:
                    quarantine[(log, "future_event")] += 1
                    continue
                if (arrival - day).days > 3:
                    quarantine[(log, "late_arrival")] += 1
                    continue
                identity = (ts, _beyond_microseconds(obj["event_time"])) + tuple(
                    _as_float(obj[f])
                    if k == NUM
                    else (str(obj[f]) if k in (ID, NSTR) and obj.get(f) is not None else obj.get(f))
                    for f, k in fields.items()
                )
                copies[obj["event_id"]].append((identity, day, obj))
        for _event_id, group in copies.items():
            in_range = [c for c in group if start <= c[1] <= end]
            if not in_range:
                continue
            if len({c[0] for c in group}) > 1:
                quarantine[(log, "conflicting_duplicate")] += len(in_range)
                continue
            _, day, e = group[0]
            reason = _value_reason(log, e, countries, fees, gifts, cats, fx, day)
            if reason:
                quarantine[(log, reason)] += 1
                continue
            gross, fee, payout = _revenue(log, e, day, fx, fees, cats, per_coin)
            country = e["country"]
            for key, table in (
                ((day, STREAM[log]), by_stream),
                ((day, countries[country]["region"], country, STREAM[log]), by_region),
            ):
                acc = table[key]
                acc[0] += gross
                acc[1] += fee
                acc[2] += payout
                acc[3] += 1
    return _finish(by_stream), _finish(by_region), dict(quarantine)


def _finish(table: dict) -> dict:
    return {k: (g, f, p, g - f - p, n) for k, (g, f, p, n) in table.items()}


def _value_reason(log, e, countries, fees, gifts, cats, fx, day) -> str | None:
    enums = {
        "ad_format": {"in_feed", "topview", "branded_hashtag_challenge"},
        "pricing_model": {"cpm", "cpc"},
        "platform": {"ios", "android", "web"},
        "event_type": {"placed", "refunded"},
        "channel": {"live", "video", "shop_tab"},
    }
    for f, allowed in enums.items():
        if f in FIELDS[log] and e[f] not in allowed:
            return "invalid_value"
    for f in ("price", "amount", "coins"):
        if f in FIELDS[log] and not 0 < _as_float(e[f]) < math.inf:  # 1e400 parses as inf: no finite amount
            return "invalid_value"
    if log == "fund_payouts" and e["qualified_views"] < 0:
        return "invalid_value"
    if log == "orders" and not 0 <= e["affiliate_rate"] < 1:
        return "invalid_value"
    if "user_age" in FIELDS[log] and not 0 <= e["user_age"] <= 130:
        return "invalid_value"
    if e["country"] not in countries:
        return "unknown_reference"
    if (log == "coin_purchases" and e["platform"] not in fees) or (log == "gifts" and e["gift_type"] not in gifts):
        return "unknown_reference"
    if log == "orders" and e["category"] not in cats:
        return "unknown_reference"
    if log != "gifts" and (day.isoformat(), e["currency"]) not in fx:
        return "missing_fx_rate"
    if log in ("coin_purchases", "gifts") and e["user_age"] < 18:
        return "underage"
    return None


def _revenue(log, e, day, fx, fees, cats, per_coin) -> tuple[float, float, float]:
    rate = fx.get((day.isoformat(), e.get("currency")), 0.0)
    if log == "impressions":
        usd = e["price"] * rate
        return (usd / 1000 if e["pricing_model"] == "cpm" else (usd if e["clicked"] else 0.0)), 0.0, 0.0
    if log == "coin_purchases":
        usd = e["amount"] * rate
        return usd, usd * fees[e["platform"]], 0.0
    if log == "gifts":
        return 0.0, 0.0, e["coins"] * per_coin
    if log == "orders":
        fee = e["amount"] * rate * cats[e["category"]]
        return (fee if e["event_type"] == "placed" else -fee), 0.0, 0.0
    return 0.0, 0.0, e["amount"] * rate


def published_marts(root: Path):
    """The pipeline's side of the comparison, shaped like :func:`reference_run`'s result:
    (revenue_by_stream, revenue_by_region, quarantine counts per (log, reason)) from warehouse.duckdb."""
    import duckdb  # the reference itself needs no DuckDB

    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        stream = con.execute(
            "SELECT event_date, stream, gross_revenue_usd, platform_fees_usd, creator_payouts_usd, net_revenue_usd, "
            "event_count FROM marts.revenue_by_stream"
        ).fetchall()
        region = con.execute(
            "SELECT event_date, region, country, stream, gross_revenue_usd, platform_fees_usd, creator_payouts_usd, "
            "net_revenue_usd, event_count FROM marts.revenue_by_region"
        ).fetchall()
        quarantine = con.execute("SELECT log, reason, count(*) FROM quality.quarantine GROUP BY ALL").fetchall()
    return {r[:2]: r[2:] for r in stream}, {r[:4]: r[4:] for r in region}, {(g, r): n for g, r, n in quarantine}


def assert_same_results(got, want) -> None:
    """Marts equal to the cent (event counts exactly) and quarantine counts equal, key by key."""
    import pytest

    for got_mart, want_mart in zip(got[:2], want[:2], strict=True):
        assert set(got_mart) == set(want_mart)
        for k, w in want_mart.items():
            assert got_mart[k][:4] == pytest.approx(w[:4], abs=0.005), k  # to the cent
            assert got_mart[k][4] == w[4], k
    assert got[2] == want[2]
