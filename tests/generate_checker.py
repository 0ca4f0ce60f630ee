"""An independent, slow, obviously-correct reading of SPEC §4 for testing the generator.

Pure Python on purpose: it shares no code with the generator (only the contract's field
list), so a generator bug cannot hide behind the same bug in its checker.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contract import FIELDS, LOGS, JsonType

_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|\+00:00)")
ENUMS = {
    "ad_format": {"in_feed", "topview", "branded_hashtag_challenge"},
    "pricing_model": {"cpm", "cpc"},
    "platform": {"ios", "android", "web"},
    "event_type": {"placed", "refunded"},
    "channel": {"live", "video", "shop_tab"},
}


@dataclass
class Checked:
    reasons: Counter = field(default_factory=Counter)  # rejected copies per reason
    accepted: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    arrival: dict[tuple[str, str], dt.date] = field(default_factory=dict)  # first arrival of accepted
    collapsed: int = 0  # redelivered copies folded into one event
    blank: int = 0
    lines: int = 0


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    m = _TIME.fullmatch(value)
    if not m:
        return None
    try:
        return dt.datetime(*(int(m.group(i)) for i in range(1, 7)), tzinfo=dt.UTC)
    except ValueError:
        return None


def _type_ok(kind: JsonType, v: Any) -> bool:
    is_int = isinstance(v, int) and not isinstance(v, bool)
    return {
        JsonType.STRING: isinstance(v, str),
        JsonType.ID: isinstance(v, str) or is_int,
        JsonType.NUMBER: is_int or isinstance(v, float),
        JsonType.INTEGER: is_int,
        JsonType.BOOLEAN: isinstance(v, bool),
        JsonType.TIMESTAMP: parse_time(v) is not None,
        JsonType.NULLABLE_STRING: v is None or isinstance(v, str),
    }[kind]


def schema_ok(log: str, obj: dict[str, Any]) -> bool:
    for f in FIELDS[log]:
        if f.name not in obj:
            return False
        v = obj[f.name]
        if v is None and f.json_type is not JsonType.NULLABLE_STRING:
            return False
        if not _type_ok(f.json_type, v):
            return False
    return obj["event_id"] != ""


def invalid(log: str, e: dict[str, Any]) -> bool:
    for name, allowed in ENUMS.items():
        if name in e and e[name] not in allowed:
            return True
    if "price" in e and not e["price"] > 0:
        return True
    if "coins" in e and not e["coins"] > 0:
        return True
    if "amount" in e and not e["amount"] > 0:
        return True
    if "affiliate_rate" in e and not 0 <= e["affiliate_rate"] < 1:
        return True
    if "qualified_views" in e and e["qualified_views"] < 0:
        return True
    return "user_age" in e and not 0 <= e["user_age"] <= 130


def read_lines(path: Path) -> list[str]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8").split("\n")[:-1] if data.endswith(b"\n") else data.decode().split("\n")


def check(data_dir: Path) -> Checked:
    """Classify every line of every raw file by the rules of SPEC §4, in order."""
    ref = data_dir / "reference"
    countries = {r["country"] for r in read_table(ref / "countries.csv")[1]}
    platforms = {r["platform"] for r in read_table(ref / "store_fees.csv")[1]}
    gift_types = {r["gift_type"] for r in read_table(ref / "gift_catalog.csv")[1]}
    categories = {r["category"] for r in read_table(ref / "shop_categories.csv")[1]}
    fx = {(r["date"], r["currency"]) for r in read_table(ref / "fx_rates.csv")[1]}

    out = Checked()
    copies: dict[tuple[str, str], list[tuple[dt.date, dict[str, Any]]]] = defaultdict(list)
    for log in LOGS:
        for path in sorted((data_dir / "raw" / log).glob("dt=*/*.jsonl*")):
            arrival = dt.date.fromisoformat(path.parent.name.removeprefix("dt="))
            for line in read_lines(path):
                out.lines += 1
                if line.strip() == "":
                    out.blank += 1
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
                if not isinstance(obj, dict):
                    out.reasons["malformed"] += 1
                    continue
                if not schema_ok(log, obj):
                    out.reasons["schema_violation"] += 1
                    continue
                event_date = parse_time(obj["event_time"]).date()  # type: ignore[union-attr]
                if event_date > arrival:
                    out.reasons["future_event"] += 1
                    continue
                if (arrival - event_date).days > 3:
                    out.reasons["late_arrival"] += 1
                    continue
                event = {f.name: obj[f.name] for f in FIELDS[log]}
                copies[(log, obj["event_id"])].append((arrival, event))

    for (log, event_id), found in copies.items():
        if any(e != found[0][1] for _, e in found[1:]):
            out.reasons["conflicting_duplicate"] += len(found)
            continue
        out.collapsed += len(found) - 1
        e = found[0][1]
        event_date = parse_time(e["event_time"]).date().isoformat()  # type: ignore[union-attr]
        if invalid(log, e):
            reason = "invalid_value"
        elif any(
            name in e and e[name] not in table
            for name, table in (
                ("country", countries),
                ("platform", platforms),
                ("gift_type", gift_types),
                ("category", categories),
            )
        ):
            reason = "unknown_reference"
        elif "currency" in e and (event_date, e["currency"]) not in fx:
            reason = "missing_fx_rate"
        elif log in ("coin_purchases", "gifts") and e["user_age"] < 18:
            reason = "underage"
        else:
            out.accepted[log].append(e)
            out.arrival[(log, event_id)] = min(a for a, _ in found)
            continue
        out.reasons[reason] += 1
    return out
