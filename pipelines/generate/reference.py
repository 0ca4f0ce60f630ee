"""Reference tables of a data directory (SPEC §1): copy the static ones, simulate fx_rates.

The static tables live in the repo (data/reference/) so that the business is reviewed
like code; fx_rates depends on the date range and the seed, so it is generated.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.contract import MAX_LATENESS_DAYS, REFERENCE_TABLES
from pipelines.generate.markets import CURRENCIES
from pipelines.generate.rng import rng_for

STATIC_DIR = Path(__file__).resolve().parents[2] / "data" / "reference"
STATIC_TABLES = ("countries", "store_fees", "gift_catalog", "shop_categories", "parameters")


@dataclass(frozen=True)
class Reference:
    """The reference data the event generators draw from."""

    countries: tuple[str, ...]
    country_currency: tuple[str, ...]  # currency of each country, same order
    currencies: tuple[str, ...]  # every currency of fx_rates: USD first, then as they appear
    platforms: tuple[str, ...]
    gift_types: tuple[str, ...]
    gift_coins: tuple[int, ...]
    categories: tuple[str, ...]


def _read_csv(path: Path, table: str) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = tuple(reader.fieldnames or ())
        if header != REFERENCE_TABLES[table]:
            raise ValueError(f"{path}: header {header} is not {REFERENCE_TABLES[table]}")
        return list(reader)


def load_reference(ref_dir: Path) -> Reference:
    """Read the static tables of `ref_dir` into the generator's view of the business."""
    countries = _read_csv(ref_dir / "countries.csv", "countries")
    currencies = ["USD"]
    for row in countries:
        if row["currency"] not in currencies:
            currencies.append(row["currency"])
    gifts = _read_csv(ref_dir / "gift_catalog.csv", "gift_catalog")
    return Reference(
        countries=tuple(r["country"] for r in countries),
        country_currency=tuple(r["currency"] for r in countries),
        currencies=tuple(currencies),
        platforms=tuple(r["platform"] for r in _read_csv(ref_dir / "store_fees.csv", "store_fees")),
        gift_types=tuple(r["gift_type"] for r in gifts),
        gift_coins=tuple(int(r["coins"]) for r in gifts),
        categories=tuple(r["category"] for r in _read_csv(ref_dir / "shop_categories.csv", "shop_categories")),
    )


def fx_dates(start: dt.date, days: int) -> list[dt.date]:
    """Every event date plus the arrival window after the last one (SPEC rule 4)."""
    return [start + dt.timedelta(days=i) for i in range(days + MAX_LATENESS_DAYS)]


def _format_rate(value: float) -> str:
    # 8 significant digits, positional: IDR is 0.0000615…, never 6.15e-05 in a CSV.
    return np.format_float_positional(value, precision=8, unique=False, fractional=False, trim="0")


def write_fx_rates(path: Path, ref: Reference, start: dt.date, days: int, seed: int) -> None:
    """A seeded random walk per currency around today's rate; pegged currencies stay flat."""
    dates = fx_dates(start, days)
    rng = rng_for(seed, "fx")
    lines = [",".join(REFERENCE_TABLES["fx_rates"])]
    walks: dict[str, np.ndarray] = {}
    for cur in ref.currencies:
        if cur not in CURRENCIES:
            raise ValueError(f"no starting exchange rate known for currency {cur!r}")
        spec = CURRENCIES[cur]
        steps = rng.normal(0.0, spec.daily_vol, len(dates))
        steps[0] = 0.0
        walks[cur] = spec.usd_per_unit * np.exp(np.cumsum(steps))
    for i, day in enumerate(dates):
        iso = day.isoformat()
        lines.extend(f"{iso},{cur},{_format_rate(float(walks[cur][i]))}" for cur in ref.currencies)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_reference(data_dir: Path, start: dt.date, days: int, seed: int) -> Reference:
    """Copy the static tables, write fx_rates, and return what the generators need."""
    if not all((STATIC_DIR / f"{t}.csv").is_file() for t in STATIC_TABLES):
        raise FileNotFoundError(f"static reference tables missing in {STATIC_DIR}")
    out = data_dir / "reference"
    out.mkdir(parents=True, exist_ok=True)
    for table in STATIC_TABLES:
        source, target = STATIC_DIR / f"{table}.csv", out / f"{table}.csv"
        if not (target.exists() and target.samefile(source)):  # --data-dir data: the repo's own folder
            shutil.copyfile(source, target)
    ref = load_reference(out)
    write_fx_rates(out / "fx_rates.csv", ref, start, days, seed)
    return ref
