"""DuckDB connections for the pipeline's own compute (not the published warehouse)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePath

import duckdb

from pipelines.lake import DataDir

# Bounded memory: DuckDB spills to the lake's scratch space beyond this. The pipeline runs in one
# process with polars beside DuckDB, so the cap leaves room for both under the 4 GiB goal.
DEFAULT_MEMORY_LIMIT = os.environ.get("REVWH_DUCKDB_MEMORY_LIMIT", "2GB")


def connect(
    database: str = ":memory:", *, read_only: bool = False, config: dict | None = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` without DuckDB's progress bar.

    DuckDB draws its bar on stdout for every statement that runs over 2 s, whether stdout is a
    terminal or a file: a 30M-event day's run log held about 12 KB of bars between Dagster's lines.
    The pipeline reports progress through Dagster's log instead. (``enable_progress_bar`` cannot be
    given as ``config``; ``SET`` reaches the connection's cursors too.)
    """
    con = duckdb.connect(database, read_only=read_only, config=config or {})
    con.execute("SET enable_progress_bar = false")
    return con


def compute_connection(data: DataDir, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap and spill directory, for one step."""
    con = connect(":memory:")
    con.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = {sql_str(data.scratch)}")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def sql_str(text: object) -> str:
    """A DuckDB string literal: a value, or a path DuckDB writes to (never globbed)."""
    return "'" + str(text).replace("'", "''") + "'"


# DuckDB has no escape character for globs; a one-character class matches the character itself.
_GLOB_CLASSES = str.maketrans({c: f"[{c}]" for c in "*?[]"})


def glob_escape(path: str) -> str:
    """``path`` as a glob matching only itself. Without it, reading `part[1].jsonl` reads `part1.jsonl`,
    and `a*b.jsonl` reads `acb.jsonl` too. (``str.translate``: a day of 50,000 files names them all.)"""
    return path.translate(_GLOB_CLASSES)


def sql_path(path: object) -> str:
    """A DuckDB string literal naming exactly one file to read, whatever characters its path holds."""
    return sql_str(glob_escape((path if isinstance(path, PurePath) else Path(path)).as_posix()))


def sql_glob(folder: Path, pattern: str) -> str:
    """A DuckDB string literal of ``pattern`` inside ``folder``: the folder's own ``*?[]`` match only
    themselves."""
    return sql_str(f"{glob_escape(folder.as_posix())}/{pattern}")


def sql_list(paths: list) -> str:
    """A DuckDB list literal of files to read (see :func:`sql_path`)."""
    return "[" + ", ".join(sql_path(p) for p in paths) + "]"


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


# Reading NDJSON as lines of text: DuckDB's CSV reader with no quote, no escape and a separator that
# valid JSON never holds (RFC 8259 forbids raw control characters; its whitespace is space, tab, CR
# and LF). A line may still hold it: such a line is malformed, and must neither be cut short (its head
# could be a valid object) nor vanish (a line of the separator alone would read as an empty row). So
# what follows the separator is read into a second column and the line is put back together; text
# after a second separator is not kept (the line is still quarantined as malformed). NULL is spelled
# as a line end, which no field can be, so every line reads as text and empty lines are skipped.
LINE_SEPARATOR = "\x1f\x1e"
# Line ends: LF, CRLF and a lone CR, mixed as they come (as Python's ``bytes.splitlines``). Left to
# itself the reader takes the first line end it meets as the file's only kind: after a CRLF it read
# 'B\\rC' as 'B' and lost 'C'. An explicit new_line keeps it from settling on one.
# Lines up to this long are read whole (DuckDB's default stops at 2 MB); a longer one goes to the
# reader's reject table and is quarantined as malformed. The buffer matches it, which keeps the
# reader's memory as it is by default (~200 MB for a 700 MB file).
MAX_LINE_BYTES = 32 << 20
# At most this many rejected lines of a file are kept in DuckDB's reject table, which lives in memory and
# ignores the memory limit (a file in another encoding put every line there: 1.6 GiB a million lines). A
# file that reaches it is read again by Python, streaming (pipelines.landing.undecodable).
REJECTS_PER_FILE = 1000
# ... and about this many over all the files of one read: 5,000 files of 990 Latin-1 lines each (under
# the per-file limit, past the probes of pipelines.landing.undecodable) held 8 GiB in the table.
REJECTS_PER_READ = 100_000


def rejects_per_file(n_files: int) -> int:
    """The reject table's limit per file for a read of ``n_files`` files: ``REJECTS_PER_FILE``, less when
    the files together could keep more than ``REJECTS_PER_READ``. Whoever reads the table must compare a
    file's count with the same limit: a file that reaches it is read again by Python."""
    return max(1, min(REJECTS_PER_FILE, REJECTS_PER_READ // max(1, n_files)))


def read_lines_sql(files_sql: str, *, filename: bool = False, rejects_limit: int | None = None) -> str:
    """SELECT every line of the files as ``raw`` (plus ``filename``): the text between line ends,
    blank lines included but empty ones left out; undecodable lines go to the reject table, at most
    ``rejects_limit`` (default ``REJECTS_PER_FILE``) of each file."""
    limit = REJECTS_PER_FILE if rejects_limit is None else rejects_limit
    return f"""SELECT CASE WHEN rest IS NULL THEN raw ELSE raw || '{LINE_SEPARATOR}' || rest END AS raw
                      {", filename" if filename else ""}
    FROM read_csv({files_sql}, columns = {{'raw': 'VARCHAR', 'rest': 'VARCHAR'}}, header = false,
                  delim = '{LINE_SEPARATOR}', quote = '', escape = '', nullstr = '\n', auto_detect = false,
                  filename = {str(filename).lower()}, comment = '', strict_mode = false, null_padding = true,
                  store_rejects = true, rejects_limit = {int(limit)},
                  max_line_size = {MAX_LINE_BYTES}, buffer_size = {MAX_LINE_BYTES},
                  new_line = '\\n')"""


def union_of_scans(files: list[Path], scan: Callable[..., str]) -> str:
    """``scan(list literal, rejects_limit=...)`` for each group of :func:`file_groups`, as one UNION ALL;
    the reject limit is :func:`rejects_per_file` of all ``files``."""
    limit = rejects_per_file(len(files))
    return "\nUNION ALL\n".join(scan(sql_list(group), rejects_limit=limit) for group in file_groups(files))
