"""The schema a staged (clean) frame must pass: the log's model plus rules 7–9.

Reference tables differ between data directories, so their checks are added
at run time to the static model of ``events.py``.
"""

from __future__ import annotations

import os

import pandera.polars as pa
import polars as pl

from pipelines.contract import ADULT_AGE
from pipelines.reference import Reference
from pipelines.schemas.events import MODELS
from pipelines.schemas.split import VALIDATION_TIMER

os.environ.setdefault("PANDERA_VALIDATION_DEPTH", "SCHEMA_AND_DATA")

_REFERENCE_COLUMNS = {
    "country": lambda r: r.countries.get_column("country"),
    "platform": lambda r: r.store_fees.get_column("platform"),
    "gift_type": lambda r: r.gift_catalog.get_column("gift_type"),
    "category": lambda r: r.shop_categories.get_column("category"),
}


def clean_schema(log: str, ref: Reference) -> pa.DataFrameSchema:
    schema = MODELS[log].to_schema()
    updates = {}
    for column, values in _REFERENCE_COLUMNS.items():
        if column in schema.columns:
            allowed = values(ref).to_list()
            updates[column] = {"checks": [*schema.columns[column].checks, pa.Check.isin(allowed)]}
    if log in ("coin_purchases", "gifts"):
        updates["user_age"] = {"checks": [*schema.columns["user_age"].checks, pa.Check.ge(ADULT_AGE)]}
    return schema.update_columns(updates)


def validate_clean(
    log: str, frame: pl.DataFrame, ref: Reference, *, schema: pa.DataFrameSchema | None = None
) -> pl.DataFrame:
    """Raise pandera's SchemaErrors if a staged frame breaks any field rule; also checks FX coverage.

    ``schema``: :func:`clean_schema` built once by a caller validating many chunks.
    """
    with VALIDATION_TIMER.measure():
        (schema or clean_schema(log, ref)).validate(frame, lazy=True)
    if "currency" in frame.columns and frame.height:
        rates = ref.fx_rates.rename({"date": "event_date"}).select("event_date", "currency")
        missing = frame.select("event_date", "currency").unique().join(rates, on=["event_date", "currency"], how="anti")
        if missing.height:
            raise ValueError(f"{log}: staged events without an FX rate: {missing.head(5).to_dicts()}")
    return frame
