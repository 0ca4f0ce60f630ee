"""Table and column descriptions in warehouse.duckdb (COMMENT ON), as analysts' SQL browsers show them:
every published table and view has one, they survive an incremental publish, and DuckDB 1.x reads them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.lake import DataDir
from pipelines.marts.build import mart_sql
from pipelines.warehouse.comments import COLUMN_DOCS
from pipelines.warehouse.publish import publish_warehouse
from tests.kpi_data import PipelineRun, kpi_pipeline_run
from tests.test_publish import D1, D2, _mart, _quarantine

PUBLISHED_SCHEMAS = ("marts", "quality", "facts", "staged", "_publish")


def _comments(path: Path) -> tuple[dict[str, str | None], dict[tuple[str, str], str | None]]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            """SELECT schema_name || '.' || table_name, comment FROM duckdb_tables()
               UNION ALL SELECT schema_name || '.' || view_name, comment FROM duckdb_views() WHERE NOT internal"""
        ).fetchall()
        columns = con.execute(
            "SELECT schema_name || '.' || table_name, column_name, comment FROM duckdb_columns() "
            f"WHERE schema_name IN {PUBLISHED_SCHEMAS}"
        ).fetchall()
    return dict(tables), {(t, c): comment for t, c, comment in columns}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    run = kpi_pipeline_run(tmp_path_factory)
    assert run.result.success
    return run


def test_every_published_table_and_view_is_described(run: PipelineRun) -> None:
    tables, _ = _comments(run.warehouse)
    published = {t for t in tables if t.split(".")[0] in PUBLISHED_SCHEMAS}
    assert {"marts.revenue_by_stream", "quality.quarantine", "facts.revenue_events", "staged.orders"} <= published
    assert [t for t in published if not tables[t]] == []
    header = [line[2:].strip() for line in mart_sql("revenue_by_region").splitlines() if line.startswith("--")]
    assert tables["marts.revenue_by_region"] == "\n".join(header)
    assert "grain: one row per (event_date, country, stream)" in tables["marts.revenue_by_region"]


def test_every_column_an_analyst_reads_first_is_described(run: PipelineRun) -> None:
    _, columns = _comments(run.warehouse)
    wanted = [
        key
        for key in columns
        if key[0].split(".")[0] in ("facts", "staged", "quality")
        or key[0] in ("marts.revenue_by_stream", "marts.revenue_by_region")
    ]
    assert len(wanted) > 100
    assert [key for key in wanted if not columns[key]] == []
    assert columns[("marts.revenue_by_stream", "net_revenue_usd")] == COLUMN_DOCS["net_revenue_usd"]
    assert columns[("staged.impressions", "event_date")] == "UTC date of event_time"  # the pandera model's text


def test_comments_survive_an_incremental_publish_and_duckdb_1x_reads_them(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path)
    _mart(data, D1, 1.0, 10)
    _quarantine(data, D1, ["malformed"])
    publish_warehouse(data)
    before = _comments(data.warehouse)
    _mart(data, D1, 1.5, 15)  # the update re-creates the contract mart's table (CREATE OR REPLACE drops comments)
    _mart(data, D2, 2.0, 20)
    _quarantine(data, D2, ["underage"])
    publish_warehouse(data)
    assert _comments(data.warehouse) == before
    assert before[0]["marts.revenue_by_stream"] and before[1][("marts.revenue_by_stream", "event_count")]

    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    sql = "SELECT comment FROM duckdb_columns() WHERE table_name = 'revenue_by_stream' AND column_name = 'stream'"
    out = subprocess.run(
        [cli, "-readonly", "-list", "-noheader", str(data.warehouse), sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert out == COLUMN_DOCS["stream"]
