"""Column schemas for the Dagster UI, taken from the pandera models (one source of truth)."""

from __future__ import annotations

import dagster as dg

from pipelines.facts.revenue import FACT_SCHEMA
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
