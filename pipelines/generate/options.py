"""Defaults and dirt kind names, importable without numpy or polars (keeps `revwh` startup fast)."""

from __future__ import annotations

# Kinds that take a row, in the order a row's kind is drawn; blank_line only adds an empty
# line after a row, so it combines with any of them.
ROW_KINDS: tuple[str, ...] = (
    "malformed",
    "schema_violation",
    "future_event",
    "late_arrival",
    "duplicate",  # exact redelivery: not an error, collapses to one event
    "conflicting_duplicate",
    "invalid_value",
    "unknown_reference",
    "missing_fx_rate",
    "underage",
)
DIRT_KINDS: tuple[str, ...] = (*ROW_KINDS, "blank_line")

DEFAULT_DIRT_RATE = 0.005  # per kind: about 5% of lines are dirty by default
DEFAULT_LATE_RATE = 0.03  # legitimately late: arrive 1–3 days after the event date
DEFAULT_CHUNK_SIZE = 100_000  # rows per chunk: small enough to stay in cache, big enough to vectorise
MAX_EVENTS_PER_DAY = 400_000_000  # event ids carry a 9-digit counter per log and day
