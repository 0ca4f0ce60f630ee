"""Turn a block of columns into NDJSON lines with one polars string expression per log.

Why not json.dumps or write_ndjson: one concat_str over gathered lookup tables is several
times faster, keeps the field order of the contract, and gives us one line per row as a
Series that dirt.py can spoil or copy. Values are safe by construction (ids, codes and
numbers never need JSON escaping), integers print without ".0", floats print as plain JSON
numbers (shortest round-trip form), booleans as true/false.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipelines.contract import AD_FORMATS, CHANNELS, FIELDS, ORDER_EVENT_TYPES, PRICING_MODELS
from pipelines.generate.population import Population, make_ids
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
    units: pl.Series  # "000".."999": the last three digits of a counter
    thousands: pl.Series  # "000000", "000001", ...: the first six
    tables: dict[str, pl.Series]  # per field name: valid values, then the bad one (if any)
    segments: dict[str, pl.Series] = field(default_factory=dict)  # see SEGMENTS

    def bad(self, name: str) -> int:
        """Index of the out-of-contract value of a lookup field."""
        return len(self.tables[name]) - 1


def build_lookups(
    ref: Reference, pop: Population, first_day: int, last_day: int, max_per_day: int = 1_000_000
) -> Lookups:
    """Tables covering every date an event can carry (refunds, future dirt: a few weeks on)
    and every counter a log reaches in a day (`max_per_day`, at most a billion)."""
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
    units = make_ids("", 1000, 3)
    thousands = make_ids("", min(1_000_000, max_per_day // 1000 + 1), 6)
    tz = _series(["Z", "+00:00"])
    for name in ("country", "currency", "platform", "gift_type", "category"):
        unsafe = tables[name].filter(tables[name].str.contains(r'["\\\x00-\x1f]'))
        if len(unsafe):  # lines are assembled as text, so codes must need no JSON escaping
            raise ValueError(f"reference {name} values need JSON escaping: {unsafe.to_list()}")
    lk = Lookups(date_base, _series(dates), _series(hhmm), _series(secs), tz, units, thousands, tables)
    add_segments(lk, pop)
    return lk


def lookup_indices(cols: dict[str, np.ndarray], lk: Lookups) -> dict[str, np.ndarray]:
    """Split counters and event times into lookup indices (gathers beat number formatting)."""
    t = cols["t_ms"]
    tod = t % DAY_MS
    ms_of_min = tod % 60_000
    ctr = cols["ctr"]
    return {
        "_k": (ctr // 1000).astype(np.uint32),
        "_u": (ctr % 1000).astype(np.uint32),
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
    event_id = [pl.lit(id_prefix), pl.lit(lk.thousands).gather(pl.col("_k")), pl.lit(lk.units).gather(pl.col("_u"))]
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
        order_id = pl.concat_str([pl.lit(f"o-{day8}-"), *event_id[1:3]])
        affiliate = (
            pl.when(pl.col("affiliate") >= 0)
            .then(
                pl.concat_str(
                    [pl.lit('"'), pl.lit(lk.tables["creator"]).gather(pl.col("affiliate").clip(0)), pl.lit('"')]
                )
            )
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


# Impressions carry seven fields that follow from the campaign alone: render that run of
# text once per campaign and gather it, unless dirt touched the row (then render it field
# by field with the same expressions, so both paths give the same bytes).
SEGMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "impressions": (
        "campaign",
        ("country", "ad_format", "advertiser_id", "campaign_id", "pricing_model", "price", "currency"),
    ),
}


def _render(log: str, names: tuple[str, ...], values: dict[str, tuple[bool, pl.Expr]]) -> list[str | pl.Expr]:
    """Parts of `"name":value` pairs, each with its leading "{" (first field) or ","."""
    first = FIELDS[log][0].name
    parts: list[str | pl.Expr] = []
    for name in names:
        quoted, expr = values[name]
        parts.append(("{" if name == first else ",") + f'"{name}":' + ('"' if quoted else ""))
        parts.append(expr)
        if quoted:
            parts.append('"')
    return parts


def _concat(parts: list[str | pl.Expr]) -> pl.Expr:
    """concat_str with adjacent literals merged into one."""
    merged: list[pl.Expr] = []
    text = ""
    for p in parts:
        if isinstance(p, str):
            text += p
            continue
        if text:
            merged.append(pl.lit(text))
            text = ""
        merged.append(p)
    if text:
        merged.append(pl.lit(text))
    return pl.concat_str(merged)


def line_expr(log: str, lk: Lookups, id_prefix: str, day8: str, segment: pl.Series | None = None) -> pl.Expr:
    """One concat_str for a whole line, fields in contract order, ending in a newline."""
    values = _value_exprs(log, lk, id_prefix, day8)
    names = tuple(f.name for f in FIELDS[log])
    if segment is None or log not in SEGMENTS:
        return _concat([*_render(log, names, values), "}\n"]).alias("line")
    inner = SEGMENTS[log][1]
    i, j = names.index(inner[0]), names.index(inner[-1]) + 1
    parts = [*_render(log, names[:i], values), pl.lit(segment).gather(pl.col("_seg"))]
    return _concat([*parts, *_render(log, names[j:], values), "}\n"]).alias("line")


def add_segments(lk: Lookups, pop: Population) -> None:
    """Pre-render the campaign-determined part of impression lines, once per run."""
    cmp = pl.DataFrame(
        {
            "country": pop.campaign_country,
            "ad_format": pop.campaign_format,
            "advertiser": pop.campaign_advertiser,
            "campaign": np.arange(len(pop.campaign_country), dtype=np.uint32),
            "pricing_model": pop.campaign_cpc.astype(np.uint32),
            "price": pop.campaign_price,
            "currency": pop.country_cur[pop.campaign_country],
        }
    )
    values = _value_exprs("impressions", lk, "", "")
    lk.segments["impressions"] = cmp.select(
        _concat(_render("impressions", SEGMENTS["impressions"][1], values))
    ).to_series()


def encode(
    log: str,
    cols: dict[str, np.ndarray],
    lk: Lookups,
    id_prefix: str,
    day8: str,
    touched: np.ndarray | None = None,
) -> pl.Series:
    """Lines for every row of `cols`, in row order, each ending in a newline: the string
    data of the series is then the file content, with no join or copy to make it.
    `touched` marks rows whose values dirt may have changed (never use pre-rendered text)."""
    frame = pl.DataFrame({**cols, **lookup_indices(cols, lk)})
    if log not in SEGMENTS or log not in lk.segments:
        return frame.select(line_expr(log, lk, id_prefix, day8)).to_series()
    key, inner = SEGMENTS[log]
    table = lk.segments[log]
    seg = cols[key].astype(np.uint32)
    rows = np.flatnonzero(touched) if touched is not None else np.zeros(0, dtype=np.int64)
    if len(rows):
        values = _value_exprs(log, lk, id_prefix, day8)
        extra = frame[rows].select(_concat(_render(log, inner, values))).to_series()
        seg = seg.copy()
        seg[rows] = len(table) + np.arange(len(rows), dtype=np.uint32)
        table = pl.concat([table, extra])
    frame = frame.with_columns(_seg=pl.Series(seg))
    return frame.select(line_expr(log, lk, id_prefix, day8, table)).to_series()
