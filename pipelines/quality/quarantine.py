"""The quarantine: one row per rejected copy, with the reason of the first rule it failed.

Each stage writes one Parquet file per partition it owns (landing: per
arrival day; staged: per event date); ``quality.quarantine`` in the
warehouse is the union of those files.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.duck import connect, sql_str
from pipelines.lake import temp_sibling

# Columns of quality.quarantine (SPEC §5 plus where and when it was caught).
QUARANTINE_SCHEMA = {
    "log": "VARCHAR",
    "event_id": "VARCHAR",
    "arrival_date": "DATE",
    "reason": "VARCHAR",
    "raw": "VARCHAR",
    "event_date": "DATE",
    "stage": "VARCHAR",
    "source_file": "VARCHAR",
}

# Projection from a landing/staged frame (with event_id, arrival_date, reason, raw, event_date, src).
QUARANTINE_COLUMNS_SQL = (
    "'{log}' AS log, CAST(event_id AS VARCHAR) AS event_id, CAST(arrival_date AS DATE) AS arrival_date, "
    "CAST(reason AS VARCHAR) AS reason, CAST(raw AS VARCHAR) AS raw, CAST(event_date AS DATE) AS event_date, "
    "'{stage}' AS stage, CAST(src AS VARCHAR) AS source_file"
)


def write_empty_quarantine(path: Path) -> None:
    """An empty, typed quarantine file: a partition with no rejects still replaces its old file."""
    cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in QUARANTINE_SCHEMA.items())
    tmp = temp_sibling(path)
    with connect() as con:
        con.execute(f"COPY (SELECT {cols} LIMIT 0) TO {sql_str(tmp)} (FORMAT parquet)")
    os.replace(tmp, path)
