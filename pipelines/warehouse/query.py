"""`revwh sql`: read-only SQL on the published warehouse, never in a run's way.

The warehouse file is replaced atomically by each publish, so a read-only
connection opened here sees one consistent snapshot and holds no lock the
pipeline needs (the pipeline never opens the published file for writing).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines.duck import glob_escape, sql_str
from pipelines.lake import DataDir


class QueryError(Exception):
    """The SQL failed; the message says why (exit 1)."""

    exit_code = 1


class QueryUsageError(QueryError):
    """Nothing to run: no warehouse, no statement, several, or one that would write (exit 2)."""

    exit_code = 2


# What `revwh sql` runs. Everything else is refused before it runs: DuckDB's read-only attach already
# stops writes to the warehouse, but COPY … TO and EXPORT write files anywhere (the warehouse file
# itself, the lake the next publish reads), and ATTACH, LOAD and VACUUM have no place in a query.
READ_ONLY_STATEMENTS = frozenset(
    {
        duckdb.StatementType.SELECT,  # also WITH, FROM …, VALUES, SHOW, DESCRIBE, SUMMARIZE
        duckdb.StatementType.EXPLAIN,
        duckdb.StatementType.PRAGMA,
        duckdb.StatementType.CALL,
        duckdb.StatementType.MULTI,  # PIVOT
        duckdb.StatementType.SET,
    }
)
FETCH_ROWS = 10_000  # rows per batch when csv/json stream the result


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
        raise QueryUsageError(f"no warehouse at {data.warehouse}: run `revwh run --data-dir {data_dir} ...` first")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_str(data.warehouse)} AS warehouse (READ_ONLY)")
        con.execute("USE warehouse")
    except duckdb.Error as exc:
        con.close()
        raise QueryUsageError(f"cannot open {data.warehouse}: {str(exc).splitlines()[0]}") from exc
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
    """Run one read-only statement; returns (column names, rows)."""
    with _cursor(data_dir, sql) as cur:
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()


@contextlib.contextmanager
def _cursor(data_dir: Path, sql: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The connection after running ``sql`` on it, its result still to fetch (so it can stream)."""
    con = connect_read_only(data_dir)
    try:
        try:
            _one_read_only_statement(con, sql)
            con.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc).splitlines()[0] + _moved_lake_hint(data_dir, str(exc))) from exc
        yield con
    finally:
        con.close()


def _one_read_only_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse an empty query, a script (only the last result would show) and a statement that writes."""
    statements = con.extract_statements(sql)
    if not statements:
        raise QueryUsageError("no SQL statement given")
    if len(statements) > 1:
        raise QueryUsageError(f"one SQL statement at a time, got {len(statements)}")
    kind = statements[0].type
    if kind not in READ_ONLY_STATEMENTS:
        raise QueryUsageError(
            f"{kind.name} statements are refused: revwh sql only reads the warehouse (SELECT, WITH, SHOW, "
            "DESCRIBE, SUMMARIZE, EXPLAIN, PRAGMA, CALL). To export a result, write it with "
            "`--format csv > FILE` (or json)"
        )


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
    """Money reads best with six decimals; a rate such as 3.9e-05 VND→USD or a huge value keeps its
    digits in scientific notation instead of printing 0.000039 or 300 digits."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if value == 0 or (math.isfinite(value) and 1e-3 <= abs(value) < 1e15):
            return f"{value:.6f}"
        return f"{value:.6e}" if math.isfinite(value) else str(value)
    return str(value).translate(_VISIBLE_CONTROLS)


# A line end or tab inside a text cell would break the table's rows and columns: shown escaped instead.
_VISIBLE_CONTROLS = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _json_value(value: object) -> object:
    """JSON has no NaN or Infinity: such a DOUBLE becomes null, as most JSON writers do."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_csv(cur: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(columns)
    while columns and (rows := cur.fetchmany(FETCH_ROWS)):
        writer.writerows(rows)


def _write_json(cur: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
    """One JSON array, written a batch of rows at a time (a result larger than memory streams)."""
    out, first = sys.stdout, True
    out.write("[")
    while columns and (rows := cur.fetchmany(FETCH_ROWS)):
        for row in rows:
            record = {c: _json_value(v) for c, v in zip(columns, row, strict=True)}
            out.write(("\n " if first else ",\n ") + json.dumps(record, default=str, allow_nan=False))
            first = False
    out.write("\n]\n" if not first else "]\n")


def run_query(data_dir: Path, sql: str, fmt: str = "table") -> int:
    """CLI entry point: print the result; errors become one line on stderr, exit 1 (the query failed)
    or 2 (nothing to run: no warehouse, no or several statements, a statement that writes).

    csv and json stream the result in batches; the table needs every row for its widths.
    A closed pipe (``revwh sql … | head``) is left to :func:`pipelines.cli.main`."""
    try:
        with _cursor(data_dir, sql) as cur:
            columns = [d[0] for d in cur.description] if cur.description else []
            try:
                if fmt == "csv":
                    _write_csv(cur, columns)
                elif fmt == "json":
                    _write_json(cur, columns)
                else:
                    print(_format_table(columns, cur.fetchall() if columns else []))
                sys.stdout.flush()  # a full disk shows here, not at exit
            except duckdb.Error as exc:  # an error found while fetching (e.g. a cast on a later row)
                raise QueryError(str(exc).splitlines()[0]) from exc
    except QueryError as exc:
        print(f"revwh sql: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"revwh sql: error: cannot write the result: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
