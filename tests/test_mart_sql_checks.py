"""A mart's SQL file is checked when the code location loads: a mart without ``event_date`` would publish
once and then fail every later run's publish (the warehouse replaces a mart's rows by event date)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.defs import marts as mart_defs
from pipelines.defs import schema_metadata
from pipelines.marts import build
from tests.builders import write_reference

REPO = Path(__file__).resolve().parents[1]
NO_DATE = """-- grain: one row per stream
SELECT stream, usd_sum(net_revenue_usd) AS net_revenue_usd FROM revenue_events GROUP BY ALL
"""


def test_a_mart_without_event_date_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sql_dir = tmp_path / "sql" / "marts"
    shutil.copytree(build.MARTS_SQL_DIR, sql_dir)
    (sql_dir / "by_stream_total.sql").write_text(NO_DATE)
    monkeypatch.setattr(build, "MARTS_SQL_DIR", sql_dir)
    monkeypatch.setattr(mart_defs, "MARTS_SQL_DIR", sql_dir)
    with pytest.raises(build.MartSqlInvalid, match=r"by_stream_total\.sql: the mart has no event_date column"):
        mart_defs.build_mart_asset("by_stream_total")
    assert len(mart_defs.build_mart_asset("revenue_by_stream")) == 2  # the asset and its reconciliation check


def test_a_reconciled_mart_without_the_measures_its_check_sums_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mart added to RECONCILED_MARTS (the README's "Extending") must have the columns its
    reconciles_with_facts check sums; without them, the code location says which, instead of every
    run failing the check with DuckDB's binder error."""
    sql_dir = tmp_path / "sql" / "marts"
    shutil.copytree(build.MARTS_SQL_DIR, sql_dir)
    (sql_dir / "net_by_day.sql").write_text(
        "SELECT event_date, usd_sum(net_revenue_usd) AS net_revenue_usd, count(*) AS event_count\n"
        "FROM revenue_events GROUP BY event_date\n"
    )
    monkeypatch.setattr(build, "MARTS_SQL_DIR", sql_dir)
    monkeypatch.setattr(mart_defs, "MARTS_SQL_DIR", sql_dir)
    assert len(mart_defs.build_mart_asset("net_by_day")) == 1  # not reconciled: no check, no demand
    monkeypatch.setattr(mart_defs, "RECONCILED_MARTS", (*mart_defs.RECONCILED_MARTS, "net_by_day"))
    with pytest.raises(
        build.MartSqlInvalid,
        match=r"net_by_day\.sql: the mart is in RECONCILED_MARTS .* has no gross_revenue_usd, platform_fees_usd, "
        r"creator_payouts_usd columns;",
    ):
        mart_defs.build_mart_asset("net_by_day")
    assert len(mart_defs.build_mart_asset("revenue_by_region")) == 2


def test_revwh_run_says_so_in_one_line(tmp_path: Path) -> None:
    """The code location cannot load: `revwh run` exits 2 with the reason, before anything runs."""
    checkout = tmp_path / "checkout"
    for folder in ("pipelines", "sql"):
        shutil.copytree(REPO / folder, checkout / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "sql" / "marts" / "by_stream_total.sql").write_text(NO_DATE)
    data = tmp_path / "data"
    write_reference(data, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | {"PYTHONPATH": str(checkout)}
    argv = [sys.executable, "-m", "pipelines.cli", "run", "--data-dir", str(data), "--start", "2025-03-01"]
    proc = subprocess.run([*argv, "--end", "2025-03-01"], cwd=checkout, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        f"revwh run: error: {checkout / 'sql' / 'marts' / 'by_stream_total.sql'}: the mart has no event_date "
        "column; every mart keeps the event date of its rows (select event_date and group by it), so that a run "
        "can replace its dates in the warehouse"
    )
    assert not (data / "lake").exists()


def test_one_probe_describes_every_mart_and_survives_sql_it_cannot_describe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code location describes all marts on one DuckDB connection: a mart DuckDB cannot describe gets
    no schema (None) and the marts after it still get theirs."""
    sql_dir = tmp_path / "sql" / "marts"
    shutil.copytree(build.MARTS_SQL_DIR, sql_dir)
    (sql_dir / "broken.sql").write_text("SELECT event_date, no_such_column FROM revenue_events\n")
    monkeypatch.setattr(build, "MARTS_SQL_DIR", sql_dir)
    with schema_metadata.MartSchemaProbe() as probe:
        assert probe.schema("broken") is None
        by_stream = probe.schema("revenue_by_stream")
        by_region = probe.schema("revenue_by_region")
    assert by_stream is not None and [c.name for c in by_stream.columns][:2] == ["event_date", "stream"]
    assert by_region is not None and "region" in {c.name for c in by_region.columns}
