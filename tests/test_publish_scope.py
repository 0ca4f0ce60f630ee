"""A run publishes only the partitions it wrote and checked. A run whose blocking check failed (or that was
killed) leaves its files in the lake; the next successful run of other dates used to publish them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipelines.defs import marts as mart_defs
from pipelines.lake import DataDir
from pipelines.runner import execute_range, failure_messages
from pipelines.warehouse.publish import PublishScope, publish_warehouse
from tests.builders import impression, write_raw
from tests.test_publish import D1, D2, D3, MART, _mart, _quarantine, _read
from tests.tiny_data import EXPECTED_BY_STREAM, write_tiny_dataset


def test_the_scope_covers_the_runs_dates_and_their_arrival_days() -> None:
    scope = PublishScope.of_run([D2])
    assert scope.covers(f"marts.{MART}", "2025-03-02") and not scope.covers(f"marts.{MART}", "2025-03-01")
    assert scope.covers("quality.quarantine_counts", "staged/orders/2025-03-02")
    assert not scope.covers("quality.quarantine_counts", "staged/orders/2025-03-03")
    assert scope.covers("quality.quarantine_counts", "landing/orders/2025-03-05")  # D2 + 3: landed by the run
    assert not scope.covers("quality.quarantine_counts", "landing/orders/2025-03-06")


def test_changes_outside_the_scope_wait_for_a_run_of_their_date(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path)
    _mart(data, D1, 1.0, 10)
    _mart(data, D2, 2.0, 20)
    _quarantine(data, D1, ["malformed"])
    publish_warehouse(data)
    _mart(data, D1, 99.0, 990)  # left by a failed run of D1
    data.mart_file(MART, D2).unlink()  # removed outside the run too
    _quarantine(data, D1, ["malformed", "late_arrival"])
    _mart(data, D3, 3.0, 30)  # the run's own date

    publish_warehouse(data, scope=PublishScope.of_run([D3]))
    sql = f"SELECT event_date, net_revenue_usd FROM marts.{MART} ORDER BY ALL"
    assert _read(data.warehouse, sql) == [(D1, 1.0), (D2, 2.0), (D3, 3.0)]
    assert _read(data.warehouse, "SELECT count(*) FROM quality.quarantine") == [(1,)]

    publish_warehouse(data, scope=PublishScope.of_run([D1, D2]))  # a run of D1..D2 passed its checks
    assert _read(data.warehouse, sql) == [(D1, 99.0), (D3, 3.0)]
    assert _read(data.warehouse, "SELECT count(*) FROM quality.quarantine") == [(2,)]


def _published_by_stream(root: Path, day: dt.date) -> dict[str, float]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT stream, gross_revenue_usd FROM marts.revenue_by_stream WHERE event_date = ?", [day]
        ).fetchall()
    return {stream: pytest.approx(gross) for stream, gross in rows}


def test_a_failed_runs_marts_are_not_published_by_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = dt.date(2025, 3, 1)
    write_tiny_dataset(tmp_path, first, 3)
    instance = dg.DagsterInstance.ephemeral()
    assert execute_range(tmp_path, first, first + dt.timedelta(days=2), log_level="ERROR", instance=instance).success
    expected = {stream: pytest.approx(row[0]) for stream, row in EXPECTED_BY_STREAM.items()}
    assert _published_by_stream(tmp_path, first) == expected

    build = mart_defs.build_mart_partition

    def wrong_mart(data, name, day, con=None):  # a defect that the reconciliation check catches
        rows = build(data, name, day, con)
        if name == "revenue_by_stream":
            with duckdb.connect() as c:
                c.execute(f"COPY (SELECT * REPLACE (gross_revenue_usd + 1000 AS gross_revenue_usd) FROM "
                          f"read_parquet('{data.mart_file(name, day)}')) TO '{tmp_path / 'bad.parquet'}'")  # fmt: skip
            (tmp_path / "bad.parquet").replace(data.mart_file(name, day))
        return rows

    monkeypatch.setattr(mart_defs, "build_mart_partition", wrong_mart)
    # The failed run also has one more impression of `first` to land: its facts file holds it.
    write_raw(tmp_path, "impressions", first.isoformat(), [impression("extra", f"{first}T12:00:00Z")], "extra.jsonl")
    failed = execute_range(tmp_path, first, first, log_level="CRITICAL", instance=instance)
    assert not failed.success
    assert any("reconciles_with_facts failed" in m for m in failure_messages(failed))
    monkeypatch.setattr(mart_defs, "build_mart_partition", build)
    lake_facts = pl.read_parquet(DataDir.at(tmp_path).facts_file(first))
    assert "extra" in lake_facts["event_id"].to_list()  # in the lake, not published
    assert _published_facts_agree_with_the_marts(tmp_path, first)

    later = first + dt.timedelta(days=2)
    assert execute_range(tmp_path, later, later, log_level="ERROR", instance=instance).success
    assert _published_by_stream(tmp_path, first) == expected  # not the +1000 the check rejected
    assert _published_by_stream(tmp_path, later) == expected
    assert _published_facts_agree_with_the_marts(tmp_path, first)  # the facts view does not show "extra"


def _published_facts_agree_with_the_marts(root: Path, day: dt.date) -> bool:
    """The facts view of the published warehouse counts what its revenue_by_stream mart counts."""
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        facts = con.execute("SELECT count(*) FROM facts.revenue_events WHERE event_date = ?", [day]).fetchall()
        mart = con.execute(
            "SELECT sum(event_count) FROM marts.revenue_by_stream WHERE event_date = ?", [day]
        ).fetchall()
        extra = con.execute("SELECT count(*) FROM facts.revenue_events WHERE event_id = 'extra'").fetchall()
    return facts[0][0] == mart[0][0] and extra[0][0] == 0
