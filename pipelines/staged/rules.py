"""Rules 5–9 of SPEC §4 on polars frames, pure functions tested with tiny frames."""

from __future__ import annotations

import polars as pl

from pipelines.contract import ADULT_AGE, Reason, field_names
from pipelines.reference import Reference
from pipelines.schemas.events import MODELS
from pipelines.schemas.split import failing_rows

# The field that identifies a copy's content for rule 5; event_time is compared as
# the instant it denotes (event_ts), so "…Z" and "…+00:00" copies are identical.
_TIME_FIELDS = {"event_time"}


def identity_columns(log: str) -> list[str]:
    """Columns whose values must match for two copies to be the same event."""
    return [("event_ts" if f in _TIME_FIELDS else f) for f in field_names(log)]


def resolve_duplicates(
    log: str, copies: pl.DataFrame, foreign_ids: pl.Series | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Rule 5: collapse identical copies, reject every copy of a conflicting id.

    ``foreign_ids`` are ids that also appear (accepted by rules 1–4) with
    another event date: such copies differ in event_time, so they conflict.
    Returns (events kept once, conflicting copies with reason, copies collapsed).
    The kept copy is the earliest arrival (then file name, then raw text) so
    reruns keep the same one.
    """
    dup_rows = copies.filter(pl.col("event_id").is_duplicated())
    conflict_ids = (
        dup_rows.group_by("event_id")
        .agg(pl.struct(identity_columns(log)).n_unique().alias("variants"))
        .filter(pl.col("variants") > 1)
        .get_column("event_id")
    )
    if foreign_ids is not None and foreign_ids.len():
        conflict_ids = pl.concat([conflict_ids, foreign_ids.cast(pl.String)]).unique()
    in_conflict = pl.col("event_id").is_in(conflict_ids.implode())
    conflicting = copies.filter(in_conflict).with_columns(pl.lit(str(Reason.CONFLICTING_DUPLICATE)).alias("reason"))
    singles = copies.filter(~pl.col("event_id").is_duplicated())
    repeated = (
        dup_rows.filter(~in_conflict)
        .sort(["event_id", "arrival_date", "src", "raw"])
        .unique("event_id", keep="first", maintain_order=True)
    )
    collapsed = dup_rows.filter(~in_conflict).height - repeated.height
    kept = pl.concat([singles.filter(~in_conflict), repeated])
    return kept, conflicting, collapsed


def value_reasons(log: str, events: pl.DataFrame, ref: Reference) -> pl.Series:
    """Rules 6–9 for each event, in order: the first failed rule's reason or null."""
    invalid = failing_rows(MODELS[log].to_schema(), events)
    cols = set(events.columns)

    unknown = ~pl.col("country").is_in(ref.countries.get_column("country").implode())
    if log == "coin_purchases":
        unknown = unknown | ~pl.col("platform").is_in(ref.store_fees.get_column("platform").implode())
    if log == "gifts":
        unknown = unknown | ~pl.col("gift_type").is_in(ref.gift_catalog.get_column("gift_type").implode())
    if log == "orders":
        unknown = unknown | ~pl.col("category").is_in(ref.shop_categories.get_column("category").implode())

    if "currency" in cols:
        rates = ref.fx_rates.select(pl.col("date").alias("event_date"), "currency", pl.lit(True).alias("_has_rate"))
        has_rate = events.select("event_date", "currency").join(
            rates, on=["event_date", "currency"], how="left", maintain_order="left"
        )
        missing_fx = has_rate.get_column("_has_rate").is_null()
    else:
        missing_fx = pl.Series([False] * events.height, dtype=pl.Boolean)

    underage = pl.col("user_age") < ADULT_AGE if log in ("coin_purchases", "gifts") else pl.lit(False)

    return events.select(
        pl.when(invalid)
        .then(pl.lit(str(Reason.INVALID_VALUE)))
        .when(unknown)
        .then(pl.lit(str(Reason.UNKNOWN_REFERENCE)))
        .when(missing_fx)
        .then(pl.lit(str(Reason.MISSING_FX_RATE)))
        .when(underage)
        .then(pl.lit(str(Reason.UNDERAGE)))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("reason")
    ).to_series()
