"""Build one event date of a mart from its SQL file, into the lake (atomic file replace).

A mart SQL file selects from ``revenue_events`` (the facts of the date being
built) and may use ``usd_sum(x)``: an exact sum returned as DOUBLE, so a re-run
gives bit-identical numbers whatever the thread scheduling (``pipelines.marts.usd_sum``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb

from pipelines.duck import compute_connection, sql_path, sql_str
from pipelines.lake import DataDir, temp_sibling
from pipelines.marts.usd_sum import install_usd_sum, run_with_exact_fallback

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
MARTS_SQL_DIR = SQL_DIR / "marts"

# The marts SPEC §5 names: without their SQL files the code location would load with no marts at all.
CONTRACT_MARTS = ("revenue_by_stream", "revenue_by_region")


class MartSqlError(RuntimeError):
    """sql/marts cannot give the marts: the code location refuses to load (``revwh run`` exits 2)."""


class MartSqlMissing(MartSqlError):
    """The repository's sql/marts is not beside the package (e.g. a copy of pipelines/ alone)."""


class MartSqlInvalid(MartSqlError):
    """A mart's SQL gives a table the warehouse cannot publish partition by partition."""


def mart_names() -> list[str]:
    """Every mart with a SQL file, in a stable order; fails when the contract's marts are missing."""
    names = sorted(p.stem for p in MARTS_SQL_DIR.glob("*.sql"))
    missing = [name for name in CONTRACT_MARTS if name not in names]
    if missing:
        raise MartSqlMissing(
            f"no SQL for the marts {', '.join(missing)} in {MARTS_SQL_DIR}: the marts are the repository's "
            "sql/marts/*.sql, read beside the pipelines package. Install from a checkout "
            "(`pip install -e .`, what `make` does) or ship sql/ next to pipelines/."
        )
    return names


def mart_sql(name: str) -> str:
    path = MARTS_SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL for mart {name!r}: {path}")
    return path.read_text()


def mart_description(name: str, separator: str = "\n\n") -> str:
    """The header comment of the mart's SQL file (grain, measures, audit): the UI's text (Markdown, hence
    paragraphs by default) and the warehouse's (one line each)."""
    header = [line[2:].strip() for line in mart_sql(name).splitlines() if line.startswith("--")]
    return separator.join(header) or f"Mart {name}"


def register_facts(con: duckdb.DuckDBPyConnection, data: DataDir, event_date: dt.date) -> None:
    facts = data.facts_file(event_date)
    if not facts.exists():
        raise FileNotFoundError(f"facts for {event_date} not built yet: {facts}")
    install_usd_sum(con)
    con.execute(f"CREATE OR REPLACE TEMP VIEW revenue_events AS SELECT * FROM read_parquet({sql_path(facts)})")


def build_mart_partition(
    data: DataDir, name: str, event_date: dt.date, con: duckdb.DuckDBPyConnection | None = None
) -> int:
    """Run the mart's SQL over one event date of facts; returns the row count.

    ``con``: a compute connection to reuse across the days of a step (one is opened otherwise).
    """
    out = data.mart_file(name, event_date)
    tmp = temp_sibling(out)
    own = con is None
    con = compute_connection(data) if own else con
    try:
        register_facts(con, data, event_date)
        sql = mart_sql(name).strip().rstrip(";")
        copy = f"COPY ({sql}) TO {sql_str(tmp)} (FORMAT parquet, RETURN_STATS)"
        written = run_with_exact_fallback(con, lambda: con.execute(copy).fetchall())
        rows = sum(int(r[1]) for r in written)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if own:
            con.close()
    os.replace(tmp, out)
    return rows
