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


class MartSchemaProbe:
    """Describes marts' SQL over an empty facts table, all on one DuckDB connection.

    Marts are plain SQL files, so their columns are not declared anywhere else; asking DuckDB keeps
    the UI's column list in step with the SQL. One connection for every mart: a DuckDB database costs
    20-30 ms to open, and the code location loads in every process that runs a step (each step of the
    multiprocess executor, each Celery task).
    """

    def __init__(self) -> None:
        self._con = connect()
        self._con.register("revenue_events", pl.DataFrame(schema=FACT_SCHEMA))
        install_usd_sum(self._con)

    def __enter__(self) -> MartSchemaProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()

    def schema(self, name: str) -> dg.TableSchema | None:
        """The columns mart ``name`` produces; None (no schema shown) rather than breaking the code
        location if the SQL cannot be described without data."""
        sql = mart_sql(name).strip().rstrip(";")
        try:
            rows = self._con.execute(f"DESCRIBE SELECT * FROM ({sql})").fetchall()
        except duckdb.Error:
            return None
        return dg.TableSchema(columns=[dg.TableColumn(row[0], str(row[1])) for row in rows])
