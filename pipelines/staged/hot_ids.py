"""Rule 5 for ids with a great many copies (a producer writing a constant id, a retry storm), in DuckDB.

The staged step holds a piece of a day at once, and every copy of an id is in one piece: landing
buckets and the step's slices both hash the event_id, so no cut can split one id. An id on millions
of lines would make its piece that large (6M copies held 3.15 GiB identical, 5.22 GiB differing, with
their raw lines). So before a bucket far larger than a piece is read, DuckDB counts its ids (a
``GROUP BY`` that spills), and the ids with more copies than a fraction of a piece are *hot*: the
piece reads its files without them, and DuckDB decides rule 5 for them from the landing files:

- identical copies (every field of SPEC §2 the same, ``event_time`` compared as the instant it
  denotes, as ``pipelines.staged.rules`` does) come back as their kept copy, one row with its
  locators, which rules 6–9 then judge with the piece's other events;
- copies that differ, or an id that also occurs on another event date, go to the quarantine as
  ``conflicting_duplicate`` straight from the landing files (raw lines included), never through
  memory.

The kept copy is the one the ordinary path keeps (earliest arrival, then file name, then
``event_time`` text), and a rejected one shows the smallest raw line among the copies of its
arrival day and file, so the outputs are the same whichever path an id takes.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from pipelines.contract import Reason
from pipelines.duck import sql_list, sql_str
from pipelines.landing.land import LandingSources
from pipelines.landing.rules_sql import bucket_expr
from pipelines.staged.rules import identity_sql

# An id with more copies than a piece's row limit divided by this is staged apart: pieces then
# hold at most their limit plus an eighth, whatever one id does.
HOT_SHARE = 8
# A bucket is counted only when it holds more than this many times a piece's row limit (the size
# at which it is sliced): ordinary days never pay for the count, and a smaller bucket fits anyway.
SCAN_FACTOR = 2
FILE, ROW = "_file", "_row"  # the staged step's locators (pipelines.staged.rules)


def hot_copies(limit: int) -> int:
    """Copies above which an id is hot: $REVWH_HOT_ID_COPIES, else a HOT_SHARE-th of a piece."""
    value = os.environ.get("REVWH_HOT_ID_COPIES")
    return int(value) if value else max(1, limit // HOT_SHARE)


@dataclass(frozen=True)
class HotIds:
    """The hot ids of each event date, with the landing bucket each belongs to."""

    by_day: dict[dt.date, pl.DataFrame]  # event_id, bucket

    def in_piece(self, day: dt.date, buckets: tuple[int, ...], keeps: pl.Expr | None) -> pl.Series:
        """The hot ids of ``day`` that a piece (its ``buckets``, its slice filter ``keeps``) holds."""
        frame = self.by_day.get(day)
        if frame is None or not frame.height:
            return pl.Series("event_id", [], dtype=pl.String)
        frame = frame.filter(pl.col("bucket").is_in(list(buckets)))
        if keeps is not None:
            frame = frame.filter(keeps)
        return frame.get_column("event_id")


def _rows(files: list[Path]) -> int:
    return sum(pq.read_metadata(p).num_rows for p in files)


def oversized_buckets(sources: dict[dt.date, LandingSources], buckets: int, limit: int) -> dict[dt.date, list[Path]]:
    """Per date, the files of every bucket (and those cut another way) holding more than SCAN_FACTOR
    pieces' worth of its copies. Row counts come from the Parquet footers: no data is read."""
    scan_above = SCAN_FACTOR * max(1, limit)
    out: dict[dt.date, list[Path]] = {}
    for day, source in sources.items():
        files: list[Path] = []
        for bucket in range(buckets):
            bucket_files = source.bucket_files(bucket)
            if _rows(bucket_files) > scan_above:
                files += bucket_files
        if source.other and _rows(source.other) > scan_above:
            files += source.other
        if files:
            out[day] = files
    return out


def find_hot_ids(
    con: duckdb.DuckDBPyConnection, oversized: dict[dt.date, list[Path]], buckets: int, limit: int
) -> HotIds:
    """Count the ids of the :func:`oversized_buckets`; keep those with more than :func:`hot_copies`."""
    threshold = hot_copies(limit)
    by_day: dict[dt.date, pl.DataFrame] = {}
    for day, files in oversized.items():
        # grouped by the ids' 64-bit hashes first (twice as fast as by the strings: 48M distinct ids
        # in 11 s instead of 21), then the few hashes found are counted again by id (a collision
        # never makes an id hot)
        source = f"read_parquet({sql_list(files)}, union_by_name = true)"
        frame = con.sql(
            f"""WITH hot_hashes AS (SELECT hash(event_id) AS h FROM {source}
                                    GROUP BY h HAVING count(*) > {int(threshold)})
                SELECT event_id, {bucket_expr(buckets)} AS bucket FROM {source}
                WHERE hash(event_id) IN (SELECT h FROM hot_hashes)
                GROUP BY ALL HAVING count(*) > {int(threshold)}"""
        ).pl()
        if frame.height:
            by_day[day] = frame.cast({"event_id": pl.String, "bucket": pl.Int64})
    return HotIds(by_day)


@dataclass(frozen=True)
class HotResult:
    """What rule 5 made of a piece's hot ids on one date."""

    kept: pl.DataFrame  # the kept copy of each identical id: the copy columns and FILE / ROW
    copies: int  # every copy of the hot ids
    collapsed: int  # identical copies folded into their kept one
    conflicting: int  # copies written to the quarantine

    @staticmethod
    def none(columns: dict[str, pl.DataType]) -> HotResult:
        """The result of a piece without hot ids."""
        return HotResult(pl.DataFrame(schema=_kept_schema(columns)), 0, 0, 0)


def _kept_schema(columns: dict[str, pl.DataType]) -> dict[str, pl.DataType]:
    return columns | {ROW: pl.Int64, FILE: pl.Int32}


def _register(con: duckdb.DuckDBPyConnection, name: str, ids: pl.Series) -> None:
    con.register(name, pl.DataFrame({"event_id": ids.cast(pl.String)}))


def stage_hot_ids(
    con: duckdb.DuckDBPyConnection,
    log: str,
    files: list[Path],
    hot: pl.Series,
    foreign: pl.Series,
    columns: dict[str, pl.DataType],
    quarantine_file: Path,
) -> HotResult:
    """Rule 5 for ``hot`` ids over the piece's landing ``files`` (``columns``: the copy schema).

    Conflicting ids (copies that differ, or ids in ``foreign``, found on another date) have every
    copy written to ``quarantine_file`` (the staged quarantine's spill columns); identical ones
    come back as their kept copy, FILE indexing ``files``."""
    schema = _kept_schema(columns)
    if not hot.len():
        return HotResult.none(columns)
    _register(con, "hot_ids", hot)
    _register(con, "foreign_ids", foreign)
    names = list(columns)
    source = f"read_parquet({sql_list(files)}, filename = true, file_row_number = true, union_by_name = true)"
    kept = ", ".join(f"{c} := {c}" for c in [*names, "filename", "file_row_number"])
    summary = con.sql(
        f"""SELECT event_id, count(*) AS copies,
                   min({identity_sql(log)}) IS NOT DISTINCT FROM max({identity_sql(log)})
                   AND event_id NOT IN (SELECT event_id FROM foreign_ids) AS identical,
                   arg_min(struct_pack({kept}),
                           row(arrival_date, src, event_time, filename, file_row_number)) AS kept
            FROM {source}
            WHERE event_id IN (SELECT event_id FROM hot_ids)
            GROUP BY event_id"""
    ).pl()
    identical = summary.filter(pl.col("identical"))
    conflicting = summary.filter(~pl.col("identical"))
    if conflicting.height:
        _register(con, "conflicting_ids", conflicting.get_column("event_id"))
        con.execute(
            f"""COPY (SELECT {sql_str(log)} AS log, CAST(event_id AS VARCHAR) AS event_id,
                             CAST(arrival_date AS DATE) AS arrival_date,
                             {sql_str(str(Reason.CONFLICTING_DUPLICATE))} AS reason, CAST(raw AS VARCHAR) AS raw,
                             CAST(event_date AS DATE) AS event_date, 'staged' AS stage,
                             CAST(src AS VARCHAR) AS source_file
                      FROM read_parquet({sql_list(files)}, union_by_name = true)
                      WHERE event_id IN (SELECT event_id FROM conflicting_ids))
                TO {sql_str(quarantine_file)} (FORMAT parquet, COMPRESSION lz4)"""
        )
    index = {str(Path(p)): i for i, p in enumerate(files)}
    rows = identical.get_column("kept").struct.unnest()
    rows = rows.with_columns(
        pl.col("filename").replace_strict(index, return_dtype=pl.Int32).alias(FILE),
        pl.col("file_row_number").cast(pl.Int64).alias(ROW),
    )
    copies = int(summary.get_column("copies").sum())
    together = int(identical.get_column("copies").sum()) if identical.height else 0
    return HotResult(
        kept=rows.select(list(schema)).cast(schema),
        copies=copies,
        collapsed=together - identical.height,
        conflicting=copies - together,
    )


def smallest_raw(con: duckdb.DuckDBPyConnection, files: list[Path], kept: pl.DataFrame) -> pl.DataFrame:
    """For kept copies (event_id, arrival_date, src) that rules 6–9 rejected: the smallest raw line
    among the copies of the same id, arrival day and file (the quarantine's choice, as in
    ``rules.StagedBucket.quarantine``), computed in DuckDB over every copy."""
    if not kept.height:
        return pl.DataFrame(schema={"event_id": pl.String, "raw": pl.String})
    con.register("rejected_kept", kept.select("event_id", "arrival_date", "src"))
    return (
        con.sql(
            f"""SELECT c.event_id, min(c.raw) AS raw
                FROM read_parquet({sql_list(files)}, union_by_name = true) c
                SEMI JOIN rejected_kept k
                  ON c.event_id = k.event_id AND c.arrival_date = k.arrival_date AND c.src = k.src
                GROUP BY c.event_id"""
        )
        .pl()
        .cast({"event_id": pl.String, "raw": pl.String})
    )
