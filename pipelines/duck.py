"""DuckDB connections for the pipeline's own compute (not the published warehouse)."""

from __future__ import annotations

import os

import duckdb

from pipelines.lake import DataDir

# Bounded memory: DuckDB spills to the lake's scratch space beyond this. The pipeline runs in one
# process with polars beside DuckDB, so the cap leaves room for both under the 4 GiB goal.
DEFAULT_MEMORY_LIMIT = os.environ.get("REVWH_DUCKDB_MEMORY_LIMIT", "2GB")


def compute_connection(data: DataDir, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap and spill directory, for one step."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{data.scratch.as_posix()}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def sql_list(paths: list) -> str:
    """A DuckDB list literal of file paths."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
