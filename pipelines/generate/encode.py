"""Turn a block of columns into NDJSON lines with one polars string expression per log.

Why not json.dumps or write_ndjson: one concat_str over gathered lookup tables is several
times faster, keeps the field order of the contract, and gives us one line per row as a
Series that dirt.py can spoil or copy. Values are safe by construction (ids, codes and
numbers never need JSON escaping), integers print without ".0", floats print as plain JSON
numbers (shortest round-trip form), booleans as true/false.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.contract import AD_FORMATS, CHANNELS, FIELDS, ORDER_EVENT_TYPES, PRICING_MODELS
from pipelines.generate.population import Population
from pipelines.generate.reference import Reference
from pipelines.generate.timing import DAY_MS, EPOCH

# Values outside the contract, appended last to each lookup so dirt is just an index.
BAD_COUNTRY, BAD_CURRENCY = "ZZ", "CHF"
BAD_VALUES = {
    "ad_format": "banner",
    "pricing_model": "cpv",
    "platform": "console",
    "gift_type": "dragon",
    "category": "weapons",
    "event_type": "cancelled",
    "channel": "email",
}


def _series(values: list[str] | tuple[str, ...]) -> pl.Series:
    return pl.Series(values=list(values), dtype=pl.Utf8)


@dataclass(frozen=True)
class Lookups:
    """String tables that index columns point into; built once per run."""

    date_base: int  # epoch day of dates[0]
    dates: pl.Series  # "YYYY-MM-DDT"
    hhmm: pl.Series  # "HH:MM", by minute of day
    secs: pl.Series  # ":SS.mmm" by ms of minute, then ":SS" by second (no fraction)
    tz: pl.Series  # "Z", "+00:00"
    tables: dict[str, pl.Series]  # per field name: valid values, then the bad one (if any)

    def bad(self, name: str) -> int:
        """Index of the out-of-contract value of a lookup field."""
        return len(self.tables[name]) - 1


def build_lookups(ref: Reference, pop: Population, first_day: int, last_day: int) -> Lookups:
    """Tables covering every date an event can carry (refunds, future dirt: a few weeks on)."""
    date_base = first_day - 1
    dates = [(EPOCH + dt.timedelta(days=d)).isoformat() + "T" for d in range(date_base, last_day + 40)]
    hhmm = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]
    secs = [f":{s:02d}.{ms:03d}" for s in range(60) for ms in range(1000)] + [f":{s:02d}" for s in range(60)]
    tables = {
        "country": _series([*ref.countries, BAD_COUNTRY]),
        "currency": _series([*ref.currencies, BAD_CURRENCY]),
        "ad_format": _series([*AD_FORMATS, BAD_VALUES["ad_format"]]),
        "pricing_model": _series([*PRICING_MODELS, BAD_VALUES["pricing_model"]]),
        "platform": _series([*ref.platforms, BAD_VALUES["platform"]]),
        "gift_type": _series([*ref.gift_types, BAD_VALUES["gift_type"]]),
        "category": _series([*ref.categories, BAD_VALUES["category"]]),
        "event_type": _series([*ORDER_EVENT_TYPES, BAD_VALUES["event_type"]]),
        "channel": _series([*CHANNELS, BAD_VALUES["channel"]]),
        "user": pop.user_ids,
        "creator": pop.creator_ids,
        "advertiser": pop.advertiser_ids,
        "campaign": pop.campaign_ids,
        "seller": pop.seller_ids,
    }
    return Lookups(date_base, _series(dates), _series(hhmm), _series(secs), _series(["Z", "+00:00"]), tables)


def time_indices(cols: dict[str, np.ndarray], lk: Lookups) -> dict[str, np.ndarray]:
    """Split event times into lookup indices: date, minute of day, second (+ms), zone."""
    t = cols["t_ms"]
    tod = t % DAY_MS
    ms_of_min = tod % 60_000
    return {
        "_d": (t // DAY_MS - lk.date_base).astype(np.uint32),
        "_hm": (tod // 60_000).astype(np.uint32),
        "_s": np.where(cols["frac"], ms_of_min, 60_000 + ms_of_min // 1000).astype(np.uint32),
    }


def _g(lk: Lookups, table: str, col: str | None = None) -> pl.Expr:
    return pl.lit(lk.tables[table]).gather(pl.col(col or table))


def _num(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Utf8)


def _bool(col: str) -> pl.Expr:
    return pl.when(pl.col(col)).then(pl.lit("true")).otherwise(pl.lit("false"))


def _value_exprs(log: str, lk: Lookups, id_prefix: str, day8: str) -> dict[str, tuple[bool, pl.Expr]]:
    """field -> (is_json_string, text expression) for one log."""
    event_id = [pl.lit(id_prefix), (pl.col("ctr") + 1_000_000_000).cast(pl.Utf8).str.slice(1)]
    if log == "orders":
        event_id.append(pl.when(pl.col("refund")).then(pl.lit("-r")).otherwise(pl.lit("")))
    event_time = pl.concat_str(
        [
            pl.lit(lk.dates).gather(pl.col("_d")),
            pl.lit(lk.hhmm).gather(pl.col("_hm")),
            pl.lit(lk.secs).gather(pl.col("_s")),
            pl.lit(lk.tz).gather(pl.col("tz")),
        ]
    )
    s: dict[str, tuple[bool, pl.Expr]] = {
        "event_id": (True, pl.concat_str(event_id)),
        "event_time": (True, event_time),
    }
    if log == "impressions":
        s |= {
            "user_id": (True, _g(lk, "user")),
            "country": (True, _g(lk, "country")),
            "ad_format": (True, _g(lk, "ad_format")),
            "advertiser_id": (True, _g(lk, "advertiser")),
            "campaign_id": (True, _g(lk, "campaign")),
            "pricing_model": (True, _g(lk, "pricing_model")),
            "price": (False, _num("price")),
            "currency": (True, _g(lk, "currency")),
            "clicked": (False, _bool("clicked")),
        }
    elif log == "coin_purchases":
        s |= {
            "user_id": (True, _g(lk, "user")),
            "user_age": (False, _num("user_age")),
            "country": (True, _g(lk, "country")),
            "platform": (True, _g(lk, "platform")),
            "coins": (False, _num("coins")),
            "amount": (False, _num("amount")),
            "currency": (True, _g(lk, "currency")),
        }
    elif log == "gifts":
        live_id = pl.concat_str([pl.lit("lv-"), _g(lk, "creator"), pl.lit(f"-{day8}-"), _num("live")])
        s |= {
            "user_id": (True, _g(lk, "user")),
            "user_age": (False, _num("user_age")),
            "country": (True, _g(lk, "country")),
            "creator_id": (True, _g(lk, "creator")),
            "live_id": (True, live_id),
            "gift_type": (True, _g(lk, "gift_type")),
            "coins": (False, _num("coins")),
        }
    elif log == "orders":
        order_id = pl.concat_str([pl.lit(f"o-{day8}-"), (pl.col("ctr") + 1_000_000_000).cast(pl.Utf8).str.slice(1)])
        affiliate = (
            pl.when(pl.col("affiliate") >= 0)
            .then(pl.concat_str([pl.lit('"'), pl.lit(lk.tables["creator"]).gather(pl.col("affiliate").clip(0)), pl.lit('"')]))
            .otherwise(pl.lit("null"))
        )
        s |= {
            "order_id": (True, order_id),
            "event_type": (True, _g(lk, "event_type")),
            "buyer_id": (True, _g(lk, "user", "buyer")),
            "seller_id": (True, _g(lk, "seller")),
            "country": (True, _g(lk, "country")),
            "category": (True, _g(lk, "category")),
            "channel": (True, _g(lk, "channel")),
            "amount": (False, _num("amount")),
            "currency": (True, _g(lk, "currency")),
            "affiliate_creator_id": (False, affiliate),
            "affiliate_rate": (False, _num("affiliate_rate")),
        }
    elif log == "fund_payouts":
        s |= {
            "creator_id": (True, _g(lk, "creator")),
            "country": (True, _g(lk, "country")),
            "qualified_views": (False, _num("qualified_views")),
            "amount": (False, _num("amount")),
            "currency": (True, _g(lk, "currency")),
        }
    return s


def line_expr(log: str, lk: Lookups, id_prefix: str, day8: str) -> pl.Expr:
    """One concat_str for a whole line, literal runs merged, fields in contract order."""
    values = _value_exprs(log, lk, id_prefix, day8)
    parts: list[str | pl.Expr] = []
    for i, f in enumerate(FIELDS[log]):
        quoted, expr = values[f.name]
        parts.append(("{" if i == 0 else ",") + f'"{f.name}":' + ('"' if quoted else ""))
        parts.append(expr)
        if quoted:
            parts.append('"')
    parts.append("}")
    merged: list[pl.Expr] = []
    text = ""
    for p in parts:
        if isinstance(p, str):
            text += p
        else:
            if text:
                merged.append(pl.lit(text))
                text = ""
            merged.append(p)
    if text:
        merged.append(pl.lit(text))
    return pl.concat_str(merged).alias("line")


def encode(log: str, cols: dict[str, np.ndarray], lk: Lookups, id_prefix: str, day8: str) -> pl.Series:
    """Lines for every row of `cols`, in row order."""
    frame = pl.DataFrame({**cols, **time_indices(cols, lk)})
    return frame.select(line_expr(log, lk, id_prefix, day8)).to_series()
