"""Realistic dirt, one kind per spoiled row, each caught by exactly the intended SPEC §4 rule.

A row gets at most one kind, so rules cannot overlap: a conflicting duplicate is otherwise
valid and on time, an unknown country has valid enums, an underage buyer has an fx rate.
Value dirt (late, future, invalid values, unknown references, missing fx, underage,
conflicting copies) edits columns before encoding; text dirt (malformed lines, schema
violations, exact redeliveries, blank lines) edits or copies the encoded lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.contract import FIELDS, MAX_LATENESS_DAYS
from pipelines.generate.encode import Lookups
from pipelines.generate.events import Columns, Context
from pipelines.generate.options import DIRT_KINDS, ROW_KINDS
from pipelines.generate.schema_breaks import schema_break
from pipelines.generate.timing import DAY_MS

CODE = {k: i + 1 for i, k in enumerate(ROW_KINDS)}  # 0 = clean

_NOT_APPLICABLE = {
    "missing_fx_rate": {"gifts"},  # gifts carry coins, not money
    "underage": {"impressions", "orders", "fund_payouts"},  # minors may watch ads and shop
}
NON_OBJECT_LINES = ("[1,2]", '"x"', "42", "null", "not json", '[{"event_id":"x"}]')


def applies(kind: str, log: str) -> bool:
    return log not in _NOT_APPLICABLE.get(kind, set())


@dataclass(frozen=True)
class DirtPlan:
    """Per-kind rates; a row's kind is drawn once, so kinds are disjoint."""

    rates: dict[str, float]

    @classmethod
    def build(cls, default: float, overrides: dict[str, float] | None = None) -> DirtPlan:
        rates = dict.fromkeys(DIRT_KINDS, default)
        for kind, rate in (overrides or {}).items():
            if kind not in rates:
                raise ValueError(f"unknown dirt kind {kind!r}; known: {', '.join(DIRT_KINDS)}")
            rates[kind] = rate
        for kind, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"dirt rate for {kind} must be between 0 and 1, got {rate}")
        plan = cls(rates)
        for log in FIELDS:
            total = sum(plan.rate(k, log) for k in ROW_KINDS)
            if total > 1.0:
                raise ValueError(
                    f"dirt rates of {log} add up to {total:.3f}, more than 1: each kind takes its own "
                    "share of the events, so lower --dirt-rate or the --dirt overrides"
                )
        return plan

    def rate(self, kind: str, log: str) -> float:
        return self.rates[kind] if applies(kind, log) else 0.0

    @property
    def clean(self) -> bool:
        return not any(self.rates.values())

    def assign(self, log: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Kind code per row (0 = clean) and the rows followed by a blank line."""
        if self.clean:
            return np.zeros(n, dtype=np.uint8), np.zeros(n, dtype=bool)
        edges = np.cumsum([self.rate(k, log) for k in ROW_KINDS])
        u = rng.random(n)
        kind = np.searchsorted(edges, u, side="right").astype(np.uint8) + 1
        kind[kind > len(ROW_KINDS)] = 0
        return kind, rng.random(n) < self.rate("blank_line", log)


def _window_arrival(rng: np.random.Generator, cols: Columns, idx: np.ndarray) -> np.ndarray:
    """An arrival on or after the row's own, still within the allowed lateness."""
    slack = MAX_LATENESS_DAYS - (cols["arr"][idx] - cols["eday"][idx])
    return cols["arr"][idx] + (rng.random(len(idx)) * (slack + 1)).astype(np.int64)


def _variant(rng: np.random.Generator, idx: np.ndarray, k: int) -> list[np.ndarray]:
    v = rng.integers(0, k, len(idx))
    return [idx[v == i] for i in range(k)]


def _other_country(rng: np.random.Generator, country: np.ndarray, n_countries: int) -> np.ndarray:
    shift = 1 + rng.integers(0, max(1, n_countries - 1), len(country))
    return ((country.astype(np.int64) + shift) % n_countries).astype(np.uint32)


def _bad_age(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, rng.integers(131, 200, n), -rng.integers(1, 5, n))


def _invalid(log: str, cols: Columns, idx: np.ndarray, rng: np.random.Generator, lk: Lookups) -> None:
    """A value outside its set or bound (rule 6); all other fields stay valid."""
    if log == "impressions":
        a, b, c, d = _variant(rng, idx, 4)
        cols["ad_format"][a] = lk.bad("ad_format")
        cols["pricing_model"][b] = lk.bad("pricing_model")
        cols["price"][c] = 0.0
        cols["price"][d] = -cols["price"][d]
    elif log == "coin_purchases":
        a, b, c, d = _variant(rng, idx, 4)
        cols["platform"][a] = lk.bad("platform")
        cols["coins"][b] = np.where(rng.random(len(b)) < 0.5, 0, -cols["coins"][b])
        cols["amount"][c] = np.where(rng.random(len(c)) < 0.5, 0.0, -cols["amount"][c])
        cols["user_age"][d] = _bad_age(rng, len(d))
    elif log == "gifts":
        a, b = _variant(rng, idx, 2)
        cols["coins"][a] = np.where(rng.random(len(a)) < 0.5, 0, -cols["coins"][a])
        cols["user_age"][b] = _bad_age(rng, len(b))
    elif log == "orders":
        a, b, c, d = _variant(rng, idx, 4)
        cols["event_type"][a] = lk.bad("event_type")
        cols["channel"][b] = lk.bad("channel")
        cols["amount"][c] = np.where(rng.random(len(c)) < 0.5, 0.0, -cols["amount"][c])
        cols["affiliate_rate"][d] = np.array([1.0, 1.2, -0.05])[rng.integers(0, 3, len(d))]
    elif log == "fund_payouts":
        a, b = _variant(rng, idx, 2)
        cols["qualified_views"][a] = -rng.integers(1, 1000, len(a))
        cols["amount"][b] = np.where(rng.random(len(b)) < 0.5, 0.0, -cols["amount"][b])


def _unknown(log: str, cols: Columns, idx: np.ndarray, rng: np.random.Generator, lk: Lookups) -> None:
    """A well-formed code missing from its reference table (rule 7)."""
    field = {"gifts": "gift_type", "orders": "category"}.get(log)
    if field is None:
        cols["country"][idx] = lk.bad("country")
        return
    a, b = _variant(rng, idx, 2)
    cols["country"][a] = lk.bad("country")
    cols[field][b] = lk.bad(field)


def _conflict_copy(log: str, cols: Columns, idx: np.ndarray, rng: np.random.Generator, ctx: Context) -> Columns:
    """A second copy of each row with one non-time field changed, arriving within the window."""
    copy = {name: values[idx].copy() for name, values in cols.items()}
    every = np.arange(len(idx))
    country, other = _variant(rng, every, 2)
    copy["country"][country] = _other_country(rng, copy["country"][country], ctx.pop.n_countries)
    main = {
        "impressions": "price",
        "coin_purchases": "amount",
        "gifts": "coins",
        "orders": "amount",
        "fund_payouts": "amount",
    }[log]
    copy[main][other] = copy[main][other] * 2  # doubles stay positive and always differ
    copy["arr"] = _window_arrival(rng, cols, idx)
    return copy


def apply_value_dirt(
    log: str, cols: Columns, kind: np.ndarray, rng: np.random.Generator, ctx: Context, lk: Lookups
) -> tuple[Columns, np.ndarray]:
    """Spoil values in place; returns columns with conflicting copies appended, and the
    per-row kind extended for those copies (they count once, as their original)."""
    if not kind.any():
        return cols, kind
    rows = {k: np.flatnonzero(kind == CODE[k]) for k in ROW_KINDS}
    idx = rows["future_event"]  # event date after the arrival date (rule 3)
    if len(idx):
        day = cols["arr"][idx] + 1 + rng.integers(0, 2, len(idx))
        cols["t_ms"][idx] = day * DAY_MS + rng.integers(0, DAY_MS, len(idx))
        cols["eday"][idx] = day
    idx = rows["late_arrival"]  # arrives 4+ days after the event date (rule 4)
    cols["arr"][idx] = cols["eday"][idx] + MAX_LATENESS_DAYS + 1 + rng.integers(0, 3, len(idx))
    _invalid(log, cols, rows["invalid_value"], rng, lk)
    _unknown(log, cols, rows["unknown_reference"], rng, lk)
    if "currency" in cols:
        cols["currency"][rows["missing_fx_rate"]] = lk.bad("currency")
    idx = rows["underage"]  # a real minor of the same country (rule 9)
    if len(idx):
        pop, country = ctx.pop, cols["country"][idx]
        minors = pop.user_count[country] - pop.user_adults[country]
        user = pop.user_start[country] + pop.user_adults[country] + (rng.random(len(idx)) * minors).astype(np.int64)
        cols["user"][idx] = user.astype(np.uint32)
        cols["user_age"][idx] = pop.user_age[user]
    idx = rows["conflicting_duplicate"]
    if len(idx):
        copy = _conflict_copy(log, cols, idx, rng, ctx)
        cols = {name: np.concatenate([values, copy[name]]) for name, values in cols.items()}
        kind = np.concatenate([kind, np.full(len(idx), CODE["conflicting_duplicate"], dtype=np.uint8)])
    return cols, kind


# --- text dirt -------------------------------------------------------------------------


def _malform(lines: pl.Series, rng: np.random.Generator) -> pl.Series:
    """Truncated objects (a writer crashed mid-line) and lines that are JSON but no object."""
    n = len(lines)
    length = lines.str.len_bytes().to_numpy().astype(np.int64) - 1  # without the newline
    cut = 2 + (rng.random(n) * np.maximum(length - 3, 1)).astype(np.int64)  # a proper prefix
    junk = pl.Series(NON_OBJECT_LINES)[rng.integers(0, len(NON_OBJECT_LINES), n)]
    frame = pl.DataFrame({"line": lines, "cut": cut, "junk": junk, "trunc": rng.random(n) < 0.7})
    truncated = pl.col("line").str.slice(0, pl.col("cut"))
    spoiled = pl.when(pl.col("trunc")).then(truncated).otherwise(pl.col("junk"))
    return frame.select(pl.concat_str([spoiled, pl.lit("\n")])).to_series()


def apply_text_dirt(
    log: str, lines: pl.Series, cols: Columns, kind: np.ndarray, blank: np.ndarray, rng: np.random.Generator
) -> tuple[pl.Series, np.ndarray]:
    """Spoil encoded lines, append exact redeliveries; returns lines and their arrival days."""
    arr = cols["arr"]
    if not kind.any() and not blank.any():
        return lines, arr
    for k, spoil in (("malformed", _malform), ("schema_violation", lambda s, r: schema_break(log, s, r))):
        idx = np.flatnonzero(kind == CODE[k])
        if len(idx):
            lines = lines.scatter(idx, spoil(lines.gather(idx), rng))
    idx = np.flatnonzero(kind == CODE["duplicate"])
    if len(idx):  # one or two byte-identical copies, each arriving within the window
        idx = np.concatenate([idx, idx[rng.random(len(idx)) < 0.2]])
        lines = pl.concat([lines, lines.gather(idx)])
        arr = np.concatenate([arr, _window_arrival(rng, cols, idx)])
    idx = np.flatnonzero(blank)
    if len(idx):  # blank lines are ignored by the spec; producers do write them
        lines = lines.scatter(idx, lines.gather(idx) + "\n")
    return lines, arr
