"""`revwh sql`: read-only SQL on the published warehouse, never in a run's way.

The warehouse file is replaced atomically by each publish, so a read-only
connection opened here sees one consistent snapshot and holds no lock the
pipeline needs (the pipeline never opens the published file for writing).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines.duck import glob_escape, sql_str
from pipelines.lake import DataDir
from pipelines.warehouse.render import format_table, write_csv, write_json
from pipelines.warehouse.snapshot import SNAPSHOTS


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
# EXPLAIN runs its statement in some forms (ANALYZE, even "(ANALYZE false)" with COPY): what it explains is
# checked like a statement of its own.
_EXPLAIN_PREFIX = re.compile(r"\s*EXPLAIN\b\s*(\((?:[^()']|'[^']*')*\)\s*)?(ANALY[SZ]E\b)?", re.IGNORECASE)


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
        # The contract's dates are UTC: current_date, TIMESTAMPTZ casts and date parts read the same
        # whatever the analyst's own time zone.
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error as exc:
        con.close()
        raise QueryUsageError(f"cannot open {data.warehouse}: {str(exc).splitlines()[0]}") from exc
    return con


def moved_lake_hint(data_dir: Path, message: str) -> str:
    """The views over facts and staged name the lake by absolute path; say so when they point elsewhere."""
    missing = re.search(r'No files found that match the pattern "([^"]+)"', message)
    if not missing:
        return ""
    lake = DataDir.at(data_dir).lake.resolve().as_posix()
    snapshots = f"{lake}/{SNAPSHOTS}/"
    if missing.group(1).startswith((snapshots, glob_escape(snapshots))):
        return (
            f" (the snapshot of the lake that the views over facts and staged read is gone: run "
            f"`revwh publish --data-dir {shlex.quote(str(data_dir))}` to link a new one)"
        )
    if missing.group(1).startswith((lake + "/", glob_escape(lake) + "/")):  # the views' patterns are escaped
        return ""
    if not re.search(r"/(facts/revenue_events|staged/[^/]+)/[^/]*$", missing.group(1)):
        return ""  # the query's own path (read_csv('/x.csv')), not a view's
    return (
        f" (the warehouse's views over facts and staged were published for another location; "
        f"this data directory's lake is {lake}: run `revwh publish --data-dir {shlex.quote(str(data_dir))}` "
        "to point them here)"
    )


def views_elsewhere(con: duckdb.DuckDBPyConnection, data_dir: Path) -> str | None:
    """A file pattern of the views over facts and staged that is outside this data directory's lake, or None.

    The views name the lake by absolute path. In a copy of a data directory (``cp -r``), they still read
    the original's lake, which exists: queries would answer from the other directory without an error.
    """
    lake = DataDir.at(data_dir).lake.resolve().as_posix()
    rows = con.execute(
        "SELECT sql FROM duckdb_views() WHERE database_name = 'warehouse' AND schema_name IN ('facts', 'staged')"
    ).fetchall()
    for (text,) in rows:
        for literal in re.findall(r"read_parquet\('((?:[^']|'')*)'", text or ""):
            pattern = literal.replace("''", "'")
            if not pattern.startswith((lake + "/", glob_escape(lake) + "/")):
                return pattern
    return None


def _warn_if_views_elsewhere(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    pattern = views_elsewhere(con, data_dir)
    if pattern is not None:
        lake = DataDir.at(data_dir).lake.resolve().as_posix()
        print(
            f"revwh sql: warning: the warehouse's views over facts and staged read another data directory's lake "
            f"({pattern}), not {lake} (a copied or moved data directory): run "
            f"`revwh publish --data-dir {shlex.quote(str(data_dir))}` to point them here",
            file=sys.stderr,
            flush=True,
        )


@contextlib.contextmanager
def _relation(data_dir: Path, sql: str) -> Iterator[duckdb.DuckDBPyRelation | None]:
    """The statement as a relation, not yet fetched (so csv/json can stream it); None when it has no result."""
    con = connect_read_only(data_dir)
    try:
        _warn_if_views_elsewhere(con, data_dir)
        try:
            _one_read_only_statement(con, sql)
            rel = con.sql(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc).splitlines()[0] + moved_lake_hint(data_dir, str(exc))) from exc
        yield rel
    finally:
        con.close()


def _one_read_only_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse an empty query, a script (only the last result would show) and a statement that writes."""
    statements = con.extract_statements(sql)
    if not statements:
        raise QueryUsageError("no SQL statement given")
    if len(statements) > 1:
        raise QueryUsageError(f"one SQL statement at a time, got {len(statements)}")
    _refuse_writes(con, statements[0])


def _refuse_writes(con: duckdb.DuckDBPyConnection, statement) -> None:
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        explained = _EXPLAIN_PREFIX.sub("", statement.query, count=1)
        try:
            inner = con.extract_statements(explained)
        except duckdb.Error:
            inner = []
        if len(inner) != 1:
            raise QueryUsageError("this EXPLAIN is refused: revwh sql explains one SELECT-type statement")
        _refuse_writes(con, inner[0])
        return
    if kind not in READ_ONLY_STATEMENTS:
        raise QueryUsageError(
            f"{kind.name} statements are refused: revwh sql only reads the warehouse (SELECT, WITH, SHOW, "
            "DESCRIBE, SUMMARIZE, EXPLAIN, PRAGMA, CALL). To export a result, write it with "
            "`--format csv > FILE` (or json)"
        )


def run_query(data_dir: Path, sql: str, fmt: str = "table") -> int:
    """CLI entry point: print the result; errors become one line on stderr, exit 1 (the query failed)
    or 2 (nothing to run: no warehouse, no or several statements, a statement that writes).

    csv and json stream the result in batches; the table needs every row for its widths.
    A closed pipe (``revwh sql … | head``) is left to :func:`pipelines.cli.main`."""
    try:
        with _relation(data_dir, sql) as rel:
            try:
                if rel is None:
                    pass  # SET and the like: nothing to print
                elif fmt == "csv":
                    write_csv(rel, sys.stdout)
                elif fmt == "json":
                    write_json(rel, sys.stdout)
                else:
                    print(format_table(rel))
                sys.stdout.flush()  # a full disk shows here, not at exit
            except duckdb.Error as exc:  # an error found while fetching (e.g. a cast on a later row)
                raise QueryError(str(exc).splitlines()[0]) from exc
            except BrokenPipeError:
                raise
            except OSError as exc:
                print(f"revwh sql: error: cannot write the result: {exc.strerror or exc}", file=sys.stderr)
                return 1
    except QueryError as exc:
        print(f"revwh sql: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        raise
    except OSError as exc:  # the data directory or its warehouse cannot be read (permissions)
        print(f"revwh sql: error: cannot read {data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
