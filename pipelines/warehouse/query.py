"""`revwh sql`: read-only SQL on the published warehouse, never in a run's way.

The warehouse file is replaced atomically by each publish, so a read-only
connection opened here sees one consistent snapshot and holds no lock the
pipeline needs (the pipeline never opens the published file for writing).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import duckdb

from pipelines.duck import glob_escape, sql_str
from pipelines.lake import DataDir


class QueryError(Exception):
    """The warehouse is missing or the SQL failed; the message says which."""


def connect_read_only(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse as last published, with `warehouse` as default catalog.

    The file is ATTACHed to a private in-memory database instead of being
    opened with ``duckdb.connect(path)``: DuckDB caches one database instance
    per path and process, so while any connection to the path is open, a new
    ``connect(path)`` would reuse it and keep reading the file a publish has
    since replaced. ATTACH always opens the file that is there now.
    """
    data = DataDir.at(data_dir)
    if not data.warehouse.exists():
        raise QueryError(f"no warehouse at {data.warehouse}: run `revwh run --data-dir {data_dir} ...` first")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_str(data.warehouse)} AS warehouse (READ_ONLY)")
        con.execute("USE warehouse")
    except duckdb.Error as exc:
        con.close()
        raise QueryError(f"cannot open {data.warehouse}: {str(exc).splitlines()[0]}") from exc
    return con


def _moved_lake_hint(data_dir: Path, message: str) -> str:
    """The views over facts and staged name the lake by absolute path; say so when they point elsewhere."""
    missing = re.search(r'No files found that match the pattern "([^"]+)"', message)
    if not missing:
        return ""
    lake = DataDir.at(data_dir).lake.resolve().as_posix()
    if missing.group(1).startswith((lake + "/", glob_escape(lake) + "/")):  # the views' patterns are escaped
        return ""
    return (
        f" (the warehouse's views over facts and staged were published for another location; "
        f"this data directory's lake is {lake}: run `revwh publish --data-dir {data_dir}` to point them here)"
    )


def fetch(data_dir: Path, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one statement read-only; returns (column names, rows)."""
    con = connect_read_only(data_dir)
    try:
        try:
            _one_statement(con, sql)
            cur = con.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc).splitlines()[0] + _moved_lake_hint(data_dir, str(exc))) from exc
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def _one_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse an empty query and a script: with several statements only the last result would show."""
    count = len(con.extract_statements(sql))
    if count == 0:
        raise QueryError("no SQL statement given")
    if count > 1:
        raise QueryError(f"one SQL statement at a time, got {count}")


def _format_table(columns: list[str], rows: list[tuple]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sep = "-+-".join("-" * w for w in widths)
    body = [
        " | ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells
    ]
    return "\n".join([line, sep, *body, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"])


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def run_query(data_dir: Path, sql: str, fmt: str = "table") -> int:
    """CLI entry point: print the result; errors become one line on stderr, exit 1.

    A closed pipe (``revwh sql … | head``) is left to :func:`pipelines.cli.main`."""
    try:
        columns, rows = fetch(data_dir, sql)
    except QueryError as exc:
        print(f"revwh sql: error: {exc}", file=sys.stderr)
        return 1
    try:
        if fmt == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(columns)
            writer.writerows(rows)
        elif fmt == "json":
            print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=1))
        else:
            print(_format_table(columns, rows))
        sys.stdout.flush()  # a full disk shows here, not at exit
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"revwh sql: error: cannot write the result: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
