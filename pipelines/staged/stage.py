"""Stage one (log, event date): read its landed copies, apply rules 5–9, write Parquet.

Reads the copies of event date D from landing partitions D..D+3 (the window
rule 4 allows) and the ids of neighbouring event dates (to catch copies of an
id whose event_time was changed). Writes clean events and the quarantine of
this partition, each replaced atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field

import polars as pl

from pipelines.contract import MAX_LATENESS_DAYS, Reason
from pipelines.lake import DataDir, temp_sibling
from pipelines.landing.land import landing_files_for_event_date
from pipelines.quality.quarantine import QUARANTINE_SCHEMA
from pipelines.reference import Reference
from pipelines.schemas.events import polars_schema
from pipelines.staged.rules import resolve_duplicates, value_reasons


@dataclass
class StagedStats:
    log: str
    event_date: str
    copies: int = 0  # accepted by landing with this event date
    collapsed: int = 0  # identical redeliveries folded into one event
    accepted: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def _empty_landed(log: str) -> pl.DataFrame:
    schema = polars_schema(log) | {"src": pl.String, "raw": pl.String}
    return pl.DataFrame(schema=schema)


def read_copies(data: DataDir, log: str, event_date: dt.date) -> pl.DataFrame:
    files = landing_files_for_event_date(data, log, event_date)
    if not files:
        return _empty_landed(log)
    frame = pl.read_parquet(files, hive_partitioning=False)
    return frame.drop([c for c in ("reason", "part") if c in frame.columns]).select(_empty_landed(log).columns)


def neighbour_ids(data: DataDir, log: str, event_date: dt.date) -> pl.Series:
    """Ids accepted by landing with another event date within ±3 days."""
    files = []
    for offset in range(-MAX_LATENESS_DAYS, MAX_LATENESS_DAYS + 1):
        if offset:
            files += landing_files_for_event_date(data, log, event_date + dt.timedelta(days=offset))
    if not files:
        return pl.Series("event_id", [], dtype=pl.String)
    return pl.scan_parquet(files, hive_partitioning=False).select("event_id").unique().collect().to_series()


def stage_partition(data: DataDir, log: str, event_date: dt.date, ref: Reference) -> StagedStats:
    copies = read_copies(data, log, event_date)
    stats = StagedStats(log=log, event_date=event_date.isoformat(), copies=copies.height)
    kept, conflicting, stats.collapsed = resolve_duplicates(log, copies, neighbour_ids(data, log, event_date))
    reasons = value_reasons(log, kept, ref)
    kept = kept.with_columns(reasons)
    rejected = pl.concat([conflicting, kept.filter(pl.col("reason").is_not_null())], how="vertical_relaxed")
    clean = kept.filter(pl.col("reason").is_null()).drop("reason", "raw")

    _write_parquet(clean, data.staged_file(log, event_date))
    quarantine = rejected.select(
        pl.lit(log).alias("log"),
        "event_id",
        "arrival_date",
        "reason",
        "raw",
        "event_date",
        pl.lit("staged").alias("stage"),
        pl.col("src").alias("source_file"),
    ).sort(["reason", "event_id", "arrival_date", "source_file", "raw"])
    quarantine = quarantine.cast({c: _PL[t] for c, t in QUARANTINE_SCHEMA.items()})
    _write_parquet(quarantine, data.quarantine_file("staged", log, event_date))

    stats.accepted = clean.height
    stats.quarantined = quarantine.height
    counts = quarantine.group_by("reason").len().sort("reason")
    stats.by_reason = {r: int(n) for r, n in counts.iter_rows()}
    _write_stats(data, stats)
    return stats


_PL = {"VARCHAR": pl.String, "DATE": pl.Date}


def _write_parquet(frame: pl.DataFrame, path: os.PathLike) -> None:
    tmp = temp_sibling(path)  # type: ignore[arg-type]
    frame.write_parquet(tmp, compression="zstd", compression_level=1)
    os.replace(tmp, path)


def _write_stats(data: DataDir, stats: StagedStats) -> None:
    path = data.manifest_file("staged", stats.log, dt.date.fromisoformat(stats.event_date))
    tmp = temp_sibling(path)
    tmp.write_text(json.dumps(asdict(stats), indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_staged_stats(data: DataDir, log: str, event_date: dt.date) -> StagedStats | None:
    path = data.manifest_file("staged", log, event_date)
    return StagedStats(**json.loads(path.read_text())) if path.exists() else None


__all__ = ["Reason", "StagedStats", "read_copies", "stage_partition"]
