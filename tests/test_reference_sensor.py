"""The reference sensor: a reference table edited in place re-runs exactly the event dates it changes.

One real pipeline run over the tiny data set (tests/tiny_data.py, three event
dates) is shared by the module; each test edits a copy of it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipelines.definitions import build_definitions
from pipelines.defs.automation import SOURCE_TAG
from pipelines.defs.common import DataDirResource
from pipelines.defs.reference_sensor import (
    STALE_DATES_TAG,
    build_reference_sensor,
    evaluate_reference_changes,
)
from pipelines.lake import DataDir
from pipelines.reference import load_reference
from pipelines.runner import run_range
from tests.tiny_data import write_tiny_dataset

FIRST = dt.date(2025, 3, 1)
D1, D2, D3 = FIRST, FIRST + dt.timedelta(days=1), FIRST + dt.timedelta(days=2)
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("published") / "data"
    write_tiny_dataset(root, FIRST, 3)
    assert run_range(root, D1, D3, quiet=True) == 0
    return root


@pytest.fixture
def data(published: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(published, root)
    return root


def evaluate(root: Path, cursor: str | None = None, settle_seconds: float = 0):
    return evaluate_reference_changes(DataDir.at(root), cursor, now=NOW, settle_seconds=settle_seconds)


def requested(decision) -> tuple[str, str]:
    assert decision.run_request is not None, decision.reason
    tags = decision.run_request.tags
    return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]


def edit_fx(root: Path, edit) -> None:
    """Rewrite fx_rates.csv line by line; ``edit(line)`` returns the new line or None to drop it."""
    path = root / "reference" / "fx_rates.csv"
    header, *rows = path.read_text().splitlines()
    kept = [new for new in (edit(r) for r in rows) if new is not None]
    path.write_text("\n".join([header, *kept]) + "\n")


def test_fingerprint_follows_one_dates_rates_and_the_shared_tables(data: Path) -> None:
    before = load_reference(DataDir.at(data))
    edit_fx(data, lambda r: r.replace("1.1", "1.2") if r.startswith(f"{D2},EUR") else r)
    after = load_reference(DataDir.at(data))
    assert before.fingerprint(D1) == after.fingerprint(D1)
    assert before.fingerprint(D2) != after.fingerprint(D2)
    fees = data / "reference" / "store_fees.csv"
    fees.write_text(fees.read_text().replace("0.3", "0.25"))
    changed = load_reference(DataDir.at(data))
    assert all(changed.fingerprint(d) != after.fingerprint(d) for d in (D1, D2, D3))


def test_formatting_and_row_order_do_not_count(data: Path) -> None:
    before = load_reference(DataDir.at(data))
    path = data / "reference" / "fx_rates.csv"
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *reversed(rows)]) + "\n")
    countries = data / "reference" / "countries.csv"
    head, *body = countries.read_text().splitlines()
    countries.write_text("\n".join([head, *(r.replace(",", " , ") for r in body)]) + "\n")  # values are stripped
    after = load_reference(DataDir.at(data))
    assert [before.fingerprint(d) for d in (D1, D2, D3)] == [after.fingerprint(d) for d in (D1, D2, D3)]


def test_staged_manifests_record_the_fingerprint(published: Path) -> None:
    reference = load_reference(DataDir.at(published))
    manifest = json.loads((published / "lake" / "_manifests" / "staged" / "gifts" / f"{D2}.json").read_text())
    assert manifest["reference"] == reference.fingerprint(D2)


def test_unchanged_reference_requests_nothing(data: Path) -> None:
    decision = evaluate(data)
    assert decision.run_request is None
    assert "every staged event date" in decision.reason


def test_a_late_fx_rate_reruns_its_day_once(data: Path) -> None:
    edit_fx(data, lambda r: r.replace("1.1", "1.25") if r.startswith(f"{D2},EUR") else r)
    decision = evaluate(data)
    assert requested(decision) == (str(D2), str(D2))
    assert decision.run_request.tags[SOURCE_TAG] == "reference_sensor"
    assert decision.run_request.tags[STALE_DATES_TAG] == str(D2)
    again = evaluate(data, decision.cursor)  # the run is queued or running: nothing new
    assert again.run_request is None and "already requested" in again.reason
    assert evaluate(data, decision.cursor).cursor == again.cursor


def test_a_changed_fee_restates_every_date(data: Path) -> None:
    fees = data / "reference" / "store_fees.csv"
    fees.write_text(fees.read_text().replace("0.3", "0.25"))
    assert requested(evaluate(data)) == (str(D1), str(D3))


def test_a_second_change_while_the_first_is_pending_is_requested(data: Path) -> None:
    edit_fx(data, lambda r: r.replace("1.1", "1.25") if r.startswith(f"{D2},EUR") else r)
    first = evaluate(data)
    edit_fx(data, lambda r: r.replace("1.1", "1.3") if r.startswith(f"{D3},EUR") else r)
    second = evaluate(data, first.cursor)
    assert requested(second) == (str(D2), str(D3))
    assert second.run_request.run_key != first.run_request.run_key


def test_an_unusable_table_is_a_skip_with_its_reason(data: Path) -> None:
    edit_fx(data, lambda r: r.replace("1.1", "one point one") if r.startswith(f"{D2},EUR") else r)
    decision = evaluate(data, "previous-cursor-kept?")
    assert decision.run_request is None
    assert "unusable" in decision.reason and "fx_rates.csv" in decision.reason


def test_a_table_being_written_waits_to_settle(data: Path) -> None:
    edit_fx(data, lambda r: r.replace("1.1", "1.25") if r.startswith(f"{D2},EUR") else r)
    settled, fresh = NOW.timestamp() - 3600, NOW.timestamp() - 5
    for path in (data / "reference").glob("*.csv"):
        os.utime(path, (settled, settled))
    os.utime(data / "reference" / "fx_rates.csv", (fresh, fresh))
    assert "settle" in evaluate(data, settle_seconds=30).reason
    os.utime(data / "reference" / "fx_rates.csv", (settled, settled))
    assert requested(evaluate(data, settle_seconds=30)) == (str(D2), str(D2))


def test_manifests_from_before_fingerprints_are_left_alone(data: Path) -> None:
    for path in (data / "lake" / "_manifests" / "staged").rglob("*.json"):
        manifest = json.loads(path.read_text())
        del manifest["reference"]
        path.write_text(json.dumps(manifest))
    fees = data / "reference" / "store_fees.csv"
    fees.write_text(fees.read_text().replace("0.3", "0.25"))
    assert evaluate(data).run_request is None  # an upgrade does not start a backfill by itself


def _advertising(root: Path, day: dt.date) -> tuple:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "SELECT gross_revenue_usd, event_count FROM marts.revenue_by_stream "
            f"WHERE stream = 'advertising' AND event_date = DATE '{day}'"
        ).fetchall()[0]


def test_a_removed_rate_quarantines_its_events_after_the_requested_run(data: Path) -> None:
    """Hand-computed: D2's advertising is 0.005 + 0.005 (cpm, USD) + 0.44 (a clicked cpc of 0.4 EUR at 1.1).
    Without D2's EUR rate the EUR impression fails rule 8: 0.01 USD from 2 events, one missing_fx_rate row."""
    gross, events = _advertising(data, D2)
    assert (round(gross, 9), events) == (0.45, 3)
    edit_fx(data, lambda r: None if r.startswith(f"{D2},EUR") else r)
    start, end = requested(evaluate(data))
    assert (start, end) == (str(D2), str(D2))
    assert run_range(data, dt.date.fromisoformat(start), dt.date.fromisoformat(end), quiet=True) == 0
    gross, events = _advertising(data, D2)
    assert (round(gross, 9), events) == (0.01, 2)
    assert _advertising(data, D1)[1] == 3  # other dates untouched
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT event_id FROM quality.quarantine WHERE reason = 'missing_fx_rate'").fetchall()
    assert rows == [(f"imp-{D2}-2",)]
    assert evaluate(data).run_request is None  # the run recorded the new fingerprint: nothing stale


def test_the_sensor_ticks_through_dagster(data: Path) -> None:
    fees = data / "reference" / "store_fees.csv"
    fees.write_text(fees.read_text().replace("0.3", "0.25"))
    old = time.time() - 3600
    os.utime(fees, (old, old))
    sensor = build_reference_sensor("test_reference_sensor", settle_seconds=0)
    context = dg.build_sensor_context(resources={"revwh": DataDirResource(data_dir=str(data))})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    assert len(result.run_requests) == 1
    defs = build_definitions(str(data))
    registered = defs.resolve_sensor_def("reference_tables_sensor")
    assert registered.job_name == "revenue_pipeline"
    assert registered.default_status == dg.DefaultSensorStatus.RUNNING
