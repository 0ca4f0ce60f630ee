"""The id index of a landing partition: (hash of event_id, event_date) of every accepted copy.

Rule 5 rejects every copy of an id whose copies differ, however far apart their event
dates lie. The staged step compares neighbouring dates' ids directly; for the rest it
reads these small files (12 bytes a copy, sorted by hash) of *every* arrival day in the
lake, instead of every landed file's ids. Landing writes the index inside the partition
it swaps in, so it is always as current as the partition; a partition landed before the
index existed, or with another DuckDB (another hash), gets it rebuilt on first use.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.duck import sql_list, sql_str
from pipelines.lake import DataDir, temp_sibling

INDEX_FILE = "event_ids.parquet"
ARRIVAL_DIR = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")
_SCHEME_KEY = b"hash_scheme"
_SCHEMA = pa.schema([("h", pa.uint64()), ("event_date", pa.date32())])


def hash_scheme() -> str:
    """DuckDB's ``hash`` is stable within a version only: the index records which one built it."""
    return f"duckdb-{duckdb.__version__}-hash(event_id)"


def write_id_index(con: duckdb.DuckDBPyConnection | None, accepted: list[Path], path: Path) -> None:
    """Index the accepted landed files ``accepted`` into ``path`` (sorted by hash)."""
    tmp = temp_sibling(path)
    if not accepted:
        schema = _SCHEMA.with_metadata({_SCHEME_KEY: hash_scheme().encode()})
        pq.write_table(pa.table({"h": [], "event_date": []}, schema=schema), tmp)
    else:
        assert con is not None, "indexing landed files needs a DuckDB connection"
        con.execute(
            f"""COPY (SELECT hash(event_id) AS h, event_date FROM read_parquet({sql_list(accepted)}) ORDER BY h)
                TO {sql_str(tmp)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1,
                                      KV_METADATA {{hash_scheme: '{hash_scheme()}'}})"""
        )
    os.replace(tmp, path)


def _footer(path: Path) -> pq.FileMetaData | None:
    """The index's footer; None when it is missing or unreadable (cut short, overwritten): rebuilt then."""
    try:
        return pq.read_metadata(path) if path.exists() else None
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return None


def _current(footer: pq.FileMetaData | None) -> bool:
    return footer is not None and (footer.metadata or {}).get(_SCHEME_KEY) == hash_scheme().encode()


def is_current(path: Path) -> bool:
    return _current(_footer(path))


def landed_arrivals(data: DataDir, log: str) -> list[dt.date]:
    """Every arrival day of ``log`` with a landing partition in the lake."""
    folder = data.lake / "landing" / log
    if not folder.is_dir():
        return []
    found = (ARRIVAL_DIR.fullmatch(p.name) for p in folder.iterdir() if p.is_dir())
    return sorted(dt.date.fromisoformat(m.group(1)) for m in found if m)


def id_index(data: DataDir, log: str, arrival: dt.date, con: duckdb.DuckDBPyConnection) -> Path:
    """The partition's index, rebuilt first when it is missing or was hashed by another DuckDB."""
    return id_index_rows(data, log, arrival, con)[0]


def id_index_rows(data: DataDir, log: str, arrival: dt.date, con: duckdb.DuckDBPyConnection) -> tuple[Path, int]:
    """:func:`id_index` and its row count, from one read of its footer."""
    path = data.landing_partition(log, arrival) / INDEX_FILE
    footer = _footer(path)
    if not _current(footer):
        write_id_index(con, sorted(path.parent.glob("*/*.parquet")), path)
        footer = pq.read_metadata(path)
    return path, footer.num_rows
