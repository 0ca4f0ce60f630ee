"""Rules 5–9 of SPEC §4 on polars frames, pure functions tested with tiny frames (and rule 5's
identity as DuckDB SQL, for the places that decide it in DuckDB)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipelines.contract import ADULT_AGE, Reason, field_names
from pipelines.duck import sql_str
from pipelines.reference import Reference
from pipelines.schemas.events import MODELS
from pipelines.schemas.split import failing_rows

# event_time is compared as the instant it denotes, so "…Z" and "…+00:00", ".5Z" and ".500Z" copies are
# identical; and to its last fraction digit, where event_ts keeps microseconds (".1234567Z" and ".1234568Z"
# are two instants: copies that differ so conflict). The landing rules admit only one spelling of the
# date and time parts (TIMESTAMP_PATTERN), so the rest of the text is the instant.
INSTANT_REWRITES = ((r"\+00:00$", "Z"), (r"(\.\d*?)0+Z$", "${1}Z"), (r"\.Z$", "Z"))


def instant_text(event_time: pl.Expr) -> pl.Expr:
    """An accepted ``event_time`` spelled one way per instant: ``Z``, no trailing fraction zeros."""
    for pattern, replacement in INSTANT_REWRITES:
        event_time = event_time.str.replace(pattern, replacement)
    return event_time


def identity_columns(log: str) -> list[str]:
    """Columns whose values must match for two copies to be the same event (the fields of SPEC §2)."""
    return field_names(log)


def identity(log: str) -> list[pl.Expr]:
    """:func:`identity_columns` as rule 5 compares them: ``event_time`` as the instant (``instant_text``)."""
    return [instant_text(pl.col(f)) if f == "event_time" else pl.col(f) for f in identity_columns(log)]


def instant_sql(column: str) -> str:
    """:func:`instant_text` in DuckDB: ``event_time`` spelled one way per instant."""
    for pattern, replacement in INSTANT_REWRITES:
        backreference = replacement.replace("${1}", "\\1")  # RE2 spells polars' ${1} as \1
        column = f"regexp_replace({column}, {sql_str(pattern)}, {sql_str(backreference)})"
    return column


def identity_sql(log: str) -> str:
    """:func:`identity` as one DuckDB row: copies are one event when ``min`` and ``max`` of it over
    their group are not distinct (nulls and -0.0 compare as polars' ``n_unique`` counts them)."""
    return "row(" + ", ".join(instant_sql(c) if c == "event_time" else c for c in identity_columns(log)) + ")"


def duplicated(ids: pl.Series) -> pl.Series:
    """``ids.is_duplicated()``, exact, at a fraction of the cost on millions of strings.

    Repeated 64-bit hashes are found by sorting (cheap on integers); only the rows whose hash
    repeats, a few percent, are compared as strings, so a hash collision never counts.
    """
    hashes = ids.hash(seed=0)
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1))
    candidate = hashes.is_in(repeated.implode())
    rows = candidate.arg_true()
    return candidate.scatter(rows, ids.gather(rows).is_duplicated()).alias(ids.name)


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
        missing_fx = pl.repeat(False, events.height, dtype=pl.Boolean, eager=True)

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


# Locator columns of a copy in the staged step (see pipelines.staged.stage): which landing
# file of the bucket and which row of it, so the raw line can be fetched for rejected rows only.
FILE, ROW = "_file", "_row"
_QUARANTINE_SOURCE = ["event_id", "arrival_date", "reason", "event_date", "src"]


@dataclass(frozen=True)
class StagedBucket:
    """What rules 5–9 made of one bucket's copies (raw lines not loaded yet)."""

    clean: pl.DataFrame  # accepted events, the log's columns + src
    conflicting: pl.DataFrame  # every copy of a conflicting id, with FILE/ROW and reason
    rejected: pl.DataFrame  # events failing rules 6–9, with reason (one row per event)
    ties: pl.DataFrame  # event_id, FILE, ROW of the copies whose raw line may stand for a rejected event
    collapsed: int

    @property
    def needs_raw(self) -> pl.DataFrame:
        """Locators of every copy whose raw line the quarantine needs."""
        return pl.concat([self.conflicting.select(FILE, ROW), self.ties.select(FILE, ROW)])

    def quarantine(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Quarantine rows (event_id, arrival_date, reason, raw, event_date, src) given the fetched lines.

        A rejected event that was delivered several times shows the raw line the unbucketed
        rule 5 kept: the earliest arrival, then file name, then the smallest raw text.
        """
        conflicting = self.conflicting.join(raw, on=[FILE, ROW], how="left").select(
            *_QUARANTINE_SOURCE[:3], "raw", *_QUARANTINE_SOURCE[3:]
        )
        smallest = self.ties.join(raw, on=[FILE, ROW], how="left").group_by("event_id").agg(pl.col("raw").min())
        rejected = self.rejected.join(smallest, on="event_id", how="left").select(
            *_QUARANTINE_SOURCE[:3], "raw", *_QUARANTINE_SOURCE[3:]
        )
        return pl.concat([conflicting, rejected])


def stage_copies(log: str, copies: pl.DataFrame, foreign_ids: pl.Series, ref: Reference) -> StagedBucket:
    """Rules 5–9 over copies that carry FILE/ROW locators instead of their raw line.

    Rule 5: copies of an id identical in every field of SPEC §2 are one event; if they differ,
    or the id also occurs on another event date (``foreign_ids``), every copy is
    ``conflicting_duplicate``. The kept copy of identical redeliveries is the earliest arrival,
    then file name, then event_time text; the clean columns are the same whichever ties, and the
    quarantine's raw line is the smallest raw text (see :meth:`StagedBucket.quarantine`), so
    re-runs keep the same one. Then :func:`value_reasons` (rules 6–9) on the kept events.
    """
    columns = list(copies.columns)
    copies = copies.with_columns(duplicated(copies.get_column("event_id")).alias("_dup"))
    dup_rows = copies.filter(pl.col("_dup"))
    conflict_ids = (
        dup_rows.group_by("event_id")
        .agg(pl.struct(identity(log)).n_unique().alias("variants"))
        .filter(pl.col("variants") > 1)
        .get_column("event_id")
    )
    if foreign_ids.len():
        conflict_ids = pl.concat([conflict_ids, foreign_ids.cast(pl.String)]).unique()
    if conflict_ids.len():
        copies = copies.with_columns(pl.col("event_id").is_in(conflict_ids.implode()).alias("_conflict"))
    else:
        copies = copies.with_columns(pl.lit(False).alias("_conflict"))
    conflicting = copies.filter(pl.col("_conflict")).with_columns(
        pl.lit(str(Reason.CONFLICTING_DUPLICATE)).alias("reason")
    )
    singles = copies.filter(~pl.col("_dup") & ~pl.col("_conflict"))
    repeated_all = dup_rows.filter(~pl.col("event_id").is_in(conflict_ids.implode()))
    repeated = repeated_all.sort(["event_id", "arrival_date", "src", "event_time", FILE, ROW]).unique(
        "event_id", keep="first", maintain_order=True
    )
    kept = pl.concat([singles.select(columns + ["_dup"]), repeated.select(columns + ["_dup"])])
    kept = kept.with_columns(value_reasons(log, kept, ref))
    clean = kept.filter(pl.col("reason").is_null()).select([c for c in columns if c not in (FILE, ROW)])
    rejected = kept.filter(pl.col("reason").is_not_null())
    # Raw lines that may stand for a rejected event: its own copy, or for a collapsed one every
    # copy with the kept copy's arrival day and file (the smallest raw text among them wins).
    ties = pl.concat(
        [
            rejected.filter(~pl.col("_dup")).select("event_id", FILE, ROW),
            repeated_all.join(
                rejected.filter(pl.col("_dup")).select("event_id", "arrival_date", "src"),
                on=["event_id", "arrival_date", "src"],
                how="semi",
            ).select("event_id", FILE, ROW),
        ]
    )
    return StagedBucket(
        clean=clean,
        conflicting=conflicting.select(*_QUARANTINE_SOURCE, FILE, ROW),
        rejected=rejected.select(*_QUARANTINE_SOURCE),
        ties=ties,
        collapsed=repeated_all.height - repeated.height,
    )
