"""Column schemas for the Dagster UI, taken from the pandera models (one source of truth)."""

from __future__ import annotations

import dagster as dg
import duckdb
import polars as pl

from pipelines.duck import connect
from pipelines.facts.revenue import FACT_SCHEMA
from pipelines.marts.build import mart_sql
from pipelines.marts.usd_sum import install_usd_sum
from pipelines.schemas.events import MODELS


def column_schema(log: str, lineage: bool = False) -> dg.TableSchema:
    schema = MODELS[log].to_schema()
    columns = [
        dg.TableColumn(
            name=name,
            type=str(col.dtype),
            description=col.description or "",
            constraints=dg.TableColumnConstraints(
                nullable=col.nullable, other=[f"{c.name}: {c.statistics}" for c in col.checks]
            ),
        )
        for name, col in schema.columns.items()
    ]
    if lineage:
        columns += [
            dg.TableColumn("src", "String", description="raw file the copy came from"),
            dg.TableColumn("raw", "String", description="the raw line, kept for the quarantine"),
        ]
    return dg.TableSchema(columns=columns)


def facts_schema() -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(t)) for name, t in FACT_SCHEMA.items()])


def mart_schema(name: str) -> dg.TableSchema | None:
    """The columns a mart's SQL produces, found by running it over an empty facts table.

    Marts are plain SQL files, so their columns are not declared anywhere else;
    asking DuckDB keeps the UI's column list in step with the SQL. Returns None
    (no schema shown) rather than breaking the code location if the SQL cannot
    be described without data.
    """
    empty_facts = pl.DataFrame(schema=FACT_SCHEMA)
    con = connect()
    try:
        con.register("revenue_events", empty_facts)
        install_usd_sum(con)
        sql = mart_sql(name).strip().rstrip(";")
        rows = con.execute(f"DESCRIBE SELECT * FROM ({sql})").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return dg.TableSchema(columns=[dg.TableColumn(row[0], str(row[1])) for row in rows])
