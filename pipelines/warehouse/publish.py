"""Publish ``warehouse.duckdb`` from the lake by writing a new file and renaming it.

DuckDB lets one process write a database file and, while it does, no other
process may open it. So the pipeline never holds the published file open:
it builds a fresh file beside it and ``os.replace``s it, which is atomic.
A reader that opened the old file keeps a consistent snapshot; the next
reader opens the new one. Readers never see a half-replaced partition.

Small marts are copied in as tables. Large layers (facts, quarantine) are
views over the lake's Parquet, whose partition files are themselves replaced
atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from pipelines.facts.revenue import FACT_SCHEMA
from pipelines.lake import DataDir, temp_sibling
from pipelines.marts.build import USD_SUM_MACRO, mart_names, mart_sql
from pipelines.quality.quarantine import QUARANTINE_SCHEMA


def _glob(folder: Path) -> str | None:
    files = sorted(folder.glob("*.parquet"))
    return f"{folder.as_posix()}/*.parquet" if files else None


def _quarantine_sql(data: DataDir) -> str:
    pattern = data.lake / "quarantine" / "*" / "*" / "*.parquet"
    if not list((data.lake / "quarantine").glob("*/*/*.parquet")):
        cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in QUARANTINE_SCHEMA.items())
        return f"SELECT {cols} LIMIT 0"
    cols = ", ".join(QUARANTINE_SCHEMA)
    return f"SELECT {cols} FROM read_parquet('{pattern.as_posix()}', union_by_name = true)"


def _create_empty_mart(con: duckdb.DuckDBPyConnection, name: str) -> None:
    empty_facts = pl.DataFrame(schema=FACT_SCHEMA)  # noqa: F841 (read by DuckDB's replacement scan)
    con.execute(USD_SUM_MACRO)
    con.execute("CREATE OR REPLACE TEMP VIEW revenue_events AS SELECT * FROM empty_facts")
    sql = mart_sql(name).strip().rstrip(";")
    con.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM ({sql}) LIMIT 0")


def publish_warehouse(data: DataDir) -> Path:
    """Rebuild the catalogue from the lake and swap it in; returns the warehouse path."""
    target = data.warehouse
    tmp = temp_sibling(target)
    con = duckdb.connect(str(tmp))
    try:
        for schema in ("marts", "quality", "facts", "staged"):
            con.execute(f"CREATE SCHEMA {schema}")
        for name in mart_names():
            pattern = _glob(data.lake / "marts" / name)
            if pattern:
                con.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM read_parquet('{pattern}') ORDER BY ALL")
            else:  # no partition built yet: an empty table with the mart's columns
                _create_empty_mart(con, name)
        con.execute(f"CREATE VIEW quality.quarantine AS {_quarantine_sql(data)}")
        facts = _glob(data.lake / "facts" / "revenue_events")
        if facts:
            con.execute(f"CREATE VIEW facts.revenue_events AS SELECT * FROM read_parquet('{facts}')")
        for log_dir in sorted((data.lake / "staged").glob("*")) if (data.lake / "staged").exists() else []:
            pattern = _glob(log_dir)
            if pattern:
                con.execute(f"CREATE VIEW staged.{log_dir.name} AS SELECT * FROM read_parquet('{pattern}')")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    wal = Path(str(tmp) + ".wal")
    if wal.exists():
        wal.unlink()
    return target
