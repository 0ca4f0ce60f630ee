"""Reference tables of a data directory (SPEC §1), loaded and checked once per step.

They may differ from one data directory to another, so nothing here is
hard-coded: every rule that needs a table reads it from the data directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl

from pipelines.contract import REFERENCE_TABLES
from pipelines.lake import DataDir

# The columns the rules and the revenue read, with their types. Only these are checked: a data directory's
# tables may differ (SPEC §6), and a value nobody reads (a country's name, a gift's coins, an unused
# parameter) must not stop a run. The other columns of SPEC §1 are kept, as text, when present.
_TYPES: dict[str, dict[str, pl.DataType]] = {
    "countries": {"country": pl.String, "region": pl.String},
    "fx_rates": {"date": pl.Date, "currency": pl.String, "usd_per_unit": pl.Float64},
    "store_fees": {"platform": pl.String, "fee_rate": pl.Float64},
    "gift_catalog": {"gift_type": pl.String},
    "shop_categories": {"category": pl.String, "referral_fee_rate": pl.Float64},
    "parameters": {"name": pl.String, "value": pl.String},
}
_KEYS = {
    "countries": ["country"],
    "fx_rates": ["date", "currency"],
    "store_fees": ["platform"],
    "gift_catalog": ["gift_type"],
    "shop_categories": ["category"],
    "parameters": ["name"],
}
# Read columns that must not be empty: an empty value there would surface much later (an event without a
# region fails the facts check, a rate of NULL gives NULL revenue), so it fails the load. A parameter's
# value is checked where it is read (only creator_usd_per_coin is).
_REQUIRED = {table: [c for c in types if (table, c) != ("parameters", "value")] for table, types in _TYPES.items()}
# The range a number a rule reads must lie in: a rate outside it is a typo or an export gone wrong
# (a negative exchange rate, a fee of 30 meaning 30 %), and would turn money into nonsense silently.
# NaN and infinity are in no range.
_BOUNDS: dict[tuple[str, str], tuple[pl.Expr, str]] = {
    ("fx_rates", "usd_per_unit"): (pl.col("usd_per_unit") > 0, "a positive number"),
    ("store_fees", "fee_rate"): (pl.col("fee_rate").is_between(0, 1), "a rate between 0 and 1"),
    ("shop_categories", "referral_fee_rate"): (
        pl.col("referral_fee_rate").is_between(0, 1),
        "a rate between 0 and 1",
    ),
}
CREATOR_USD_PER_COIN = "creator_usd_per_coin"
_LINE = "\x00line"  # a row's line number in its file, for messages (header: 1); no CSV header holds NUL


class ReferenceError(ValueError):
    """A reference table is missing or unusable; the message names the file."""


@dataclass(frozen=True)
class Reference:
    countries: pl.DataFrame
    fx_rates: pl.DataFrame
    store_fees: pl.DataFrame
    gift_catalog: pl.DataFrame
    shop_categories: pl.DataFrame
    creator_usd_per_coin: float

    @cached_property
    def _shared_digest(self) -> str:
        """The tables every event date reads (all but fx_rates), as loaded: formatting does not count."""
        h = hashlib.sha256()
        for name in ("countries", "store_fees", "gift_catalog", "shop_categories"):
            frame = getattr(self, name)
            h.update(f"{name}\n{frame.sort(frame.columns).write_csv()}".encode())
        h.update(f"creator_usd_per_coin={self.creator_usd_per_coin!r}".encode())
        return h.hexdigest()

    @cached_property
    def _fx_digests(self) -> dict[dt.date, str]:
        """Per date, a digest of that date's rates (rule 8 and the USD conversion read no other date)."""
        by_date = (
            self.fx_rates.sort("date", "currency")
            .group_by("date", maintain_order=True)
            .agg(pl.concat_str("currency", pl.lit("="), pl.col("usd_per_unit").cast(pl.String)).str.join(";"))
        )
        return {d: hashlib.sha256(rates.encode()).hexdigest() for d, rates in by_date.iter_rows()}

    def fingerprint(self, event_date: dt.date) -> str:
        """What the reference data says about ``event_date``: changes exactly when rules 7–8 or the
        revenue of that date could. Staged manifests record it; the reference sensor compares."""
        fx = self._fx_digests.get(event_date, "no-rates")
        return hashlib.sha256(f"{self._shared_digest}\n{fx}".encode()).hexdigest()[:16]


_QUOTED_OR_LONE_CR = re.compile(rb'("(?:[^"]|"")*"?)|\r(?!\n)')


def _csv_bytes(path: Path) -> tuple[bytes, bool]:
    """The file as UTF-8 with no lone CR line ends, and whether bytes that are not UTF-8 were replaced (U+FFFD).

    A line ends at LF, CRLF or a lone CR, as in the raw logs: Excel for Mac's "CSV (Macintosh)" ends
    lines with CR, which polars would read as one header line and no rows."""
    try:
        data = path.read_bytes()
    except OSError as exc:  # a folder of that name, no permission
        raise ReferenceError(f"cannot read {path}: {exc}") from exc
    try:
        data.decode("utf-8")
        lossy = False
    except UnicodeDecodeError:
        data, lossy = data.decode("utf-8", errors="replace").encode("utf-8"), True
    if b"\r" in data:  # a lone CR outside quotes ends a line; CRLF polars reads, and quoted values keep theirs
        data = _QUOTED_OR_LONE_CR.sub(lambda m: m.group(1) or b"\n", data)
    return data, lossy


def _read(path: Path, table: str) -> pl.DataFrame:
    if not path.exists():
        raise ReferenceError(f"reference table missing: {path}")
    read = list(_TYPES[table])
    text, lossy = _csv_bytes(path)
    try:
        frame = pl.read_csv(text, infer_schema=False)
    except Exception as exc:  # polars raises several error types for bad CSV
        raise ReferenceError(f"cannot read {path}: {exc}") from exc
    names = [c.strip() for c in frame.columns]  # `country, region` names `region`
    if len(set(names)) < len(names):
        raise ReferenceError(f"{path}: a column is named twice in the header {','.join(names)}")
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    missing = [c for c in read if c not in frame.columns]
    if missing:
        expected = ",".join(REFERENCE_TABLES[table])
        raise ReferenceError(f"{path}: missing column(s) {missing}; expected header {expected}")
    kept = [c for c in REFERENCE_TABLES[table] if c in frame.columns]  # SPEC §1's order (the fingerprint)
    frame = frame.with_row_index(_LINE, offset=2).with_columns(pl.col(pl.String).str.strip_chars())
    # A blank line (an editor's or an export's last line, or a gap) is no row; polars reads it as
    # a row of nulls, which would fail as an empty key. Every other row keeps its line number.
    frame = frame.filter(pl.any_horizontal(pl.col(c).is_not_null() & (pl.col(c) != "") for c in frame.columns[1:]))
    frame = frame.select(_LINE, *kept)
    if frame.height == 0:  # every event would fail rule 7 or 8 (or lose its fee) and the run would look fine
        raise ReferenceError(f"{path}: no rows, only a header; the rules read this table, so it cannot be empty")
    if lossy:  # a byte that is not UTF-8 (a Windows export's cp1252) counts only where a rule reads it
        for column in read:
            bad = frame.filter(pl.col(column).str.contains("\ufffd", literal=True))
            if bad.height:
                line = bad.row(0, named=True)[_LINE]
                raise ReferenceError(f"{path}, line {line}: {column} is not UTF-8 text ({bad.height} such rows)")
    typed = frame.with_columns(
        pl.col(c).str.to_date("%Y-%m-%d", strict=False) if t == pl.Date else pl.col(c).cast(t, strict=False)
        for c, t in _TYPES[table].items()
    )
    for column, dtype in _TYPES[table].items():
        bad = frame.filter(pl.col(column).is_not_null() & typed[column].is_null())
        if bad.height:
            first = bad.row(0, named=True)
            line, value = first[_LINE], first[column]
            kind = "a YYYY-MM-DD date" if dtype == pl.Date else f"of type {dtype}"
            raise ReferenceError(f"{path}, line {line}: {column} {value!r} is not {kind} ({bad.height} such rows)")
    for (bounded_table, column), (in_range, what) in _BOUNDS.items():
        if bounded_table != table:
            continue
        finite = pl.col(column).is_finite()
        bad = typed.filter(pl.col(column).is_not_null() & ~(finite & in_range).fill_null(False))
        if bad.height:
            first = bad.row(0, named=True)
            value = frame.filter(pl.col(_LINE) == first[_LINE]).item(0, column)
            raise ReferenceError(
                f"{path}, line {first[_LINE]}: {column} {value!r} is not {what} ({bad.height} such rows)"
            )
    for column in _REQUIRED[table]:
        empty = frame.filter(pl.col(column).is_null() | (pl.col(column) == ""))
        if empty.height:
            line = empty.row(0, named=True)[_LINE]
            raise ReferenceError(f"{path}, line {line}: {column} is empty ({empty.height} such rows)")
    return _one_row_per_key(typed, table, path).drop(_LINE)


def _one_row_per_key(frame: pl.DataFrame, table: str, path: Path) -> pl.DataFrame:
    """Rows repeated with the same values in every column a rule reads are one row (the first); a key
    given two different values is ambiguous (which rate, which region?) and fails the load, naming the
    lines (``_LINE``). Parameters nobody reads may repeat."""
    keys = _KEYS[table]
    values = [c for c in _TYPES[table] if c not in keys]
    deduped = frame.unique(subset=keys + values, keep="first", maintain_order=True)
    conflicting = deduped.filter(pl.struct(keys).is_duplicated())
    if table == "parameters":
        conflicting = conflicting.filter(pl.col("name") == CREATOR_USD_PER_COIN)
    if conflicting.height:
        first = conflicting.filter(pl.struct(keys) == conflicting.select(pl.struct(keys)).item(0, 0))
        lines = ", ".join(str(line) for line in first.get_column(_LINE).head(4))
        shown = [{k: str(v) for k, v in row.items()} for row in first.select(keys + values).head(4).to_dicts()]
        more = f" (and {conflicting.height - first.height} more such rows)" if conflicting.height > first.height else ""
        raise ReferenceError(f"{path}, lines {lines}: key {keys} given different values: {shown}{more}")
    return deduped.unique(subset=keys, keep="first", maintain_order=True)


def load_reference(data: DataDir) -> Reference:
    """Load and validate the six reference tables of ``data``."""
    tables = {t: _read(data.reference / f"{t}.csv", t) for t in REFERENCE_TABLES}
    params = dict(tables["parameters"].select("name", "value").iter_rows())
    path = data.reference / "parameters.csv"
    if CREATOR_USD_PER_COIN not in params:
        raise ReferenceError(f"{path}: no {CREATOR_USD_PER_COIN} row")
    text = params[CREATOR_USD_PER_COIN]
    try:
        per_coin = float(text or "")
        if not math.isfinite(per_coin):
            raise ValueError(per_coin)
    except ValueError as exc:
        raise ReferenceError(f"{path}: {CREATOR_USD_PER_COIN} is not a number: {text!r}") from exc
    if per_coin < 0:
        raise ReferenceError(f"{path}: {CREATOR_USD_PER_COIN} is negative: {text!r}")
    return Reference(
        countries=tables["countries"],
        fx_rates=tables["fx_rates"],
        store_fees=tables["store_fees"],
        gift_catalog=tables["gift_catalog"],
        shop_categories=tables["shop_categories"],
        creator_usd_per_coin=per_coin,
    )
