"""DuckDB connections for the pipeline's own compute (not the published warehouse)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

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


# DuckDB's CSV reader hands whole files to its threads once a scan lists more files than twice its
# threads. A day of one large file plus a few small late-data files then runs on one core (measured:
# 6.2 s against 3.3 s for a 2.6M-line day of five files). Reading each large file in a scan of its
# own keeps DuckDB splitting it across threads; small files share one scan, a file per thread.
LARGE_FILE_BYTES = 32 << 20
# With this many large files, a file per thread keeps every thread busy anyway: one scan, and the
# query stays small however many files a partition holds.
MAX_SEPARATE_SCANS = 16


def file_groups(files: list[Path]) -> list[list[Path]]:
    """``files`` cut into scans that keep every thread busy: each large file alone, the small ones
    together (in their given order)."""
    is_large = [p.stat().st_size >= LARGE_FILE_BYTES for p in files]
    large = [p for p, big in zip(files, is_large, strict=True) if big]
    if not large or len(large) > MAX_SEPARATE_SCANS:
        return [list(files)] if files else []
    small = [p for p, big in zip(files, is_large, strict=True) if not big]
    return [[p] for p in large] + ([small] if small else [])


def union_of_scans(files: list[Path], scan: Callable[[str], str]) -> str:
    """``scan(list literal)`` for each group of :func:`file_groups`, as one UNION ALL."""
    return "\nUNION ALL\n".join(scan(sql_list(group)) for group in file_groups(files))
