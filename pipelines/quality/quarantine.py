"""The quarantine: one row per rejected copy, with the reason of the first rule it failed.

Each stage writes one Parquet file per partition it owns (landing: per
arrival day; staged: per event date); ``quality.quarantine`` in the
warehouse is the union of those files.
"""

from __future__ import annotations

import functools
import os
import tempfile
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
    tmp = temp_sibling(path)
    tmp.write_bytes(_empty_quarantine_parquet())
    os.replace(tmp, path)


@functools.cache
def _empty_quarantine_parquet() -> bytes:
    """The bytes of an empty quarantine file, written by DuckDB once per process: most partitions
    have no rejects, and a DuckDB database costs about 30 ms to open (a 12-day run wrote 60 such files)."""
    cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in QUARANTINE_SCHEMA.items())
    with tempfile.TemporaryDirectory(prefix="revwh-empty-quarantine-") as folder:
        file = Path(folder) / "empty.parquet"
        with connect() as con:
            con.execute(f"COPY (SELECT {cols} LIMIT 0) TO {sql_str(file)} (FORMAT parquet)")
        return file.read_bytes()
