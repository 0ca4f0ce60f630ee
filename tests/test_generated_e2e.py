"""End to end on generated, dirty data: the marts and quarantine counts equal an independent
implementation of SPEC §3–5 (tests/reference_impl.py), cell by cell, to the cent."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest

from pipelines.generate import generate_dataset
from pipelines.lake import DataDir
from pipelines.runner import execute_range
from tests.reference_impl import reference_run

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 3)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("generated")
    generate_dataset(root, START, 5, 6000, seed=11, dirt_rate=0.01, compress=True)
    result = execute_range(root, START, END, log_level="ERROR", instance=dg.DagsterInstance.ephemeral())
    return root, result


def test_run_and_checks_pass(generated) -> None:
    _, result = generated
    assert result.success
    failed = [e.asset_check_key for e in result.get_asset_check_evaluations() if not e.passed]
    assert all(k.name == "quarantine_rate_below_threshold" for k in failed), failed


def test_marts_equal_independent_implementation(generated) -> None:
    root, _ = generated
    want_stream, want_region, want_q = reference_run(root, START, END)
    with duckdb.connect(str(DataDir.at(root).warehouse), read_only=True) as con:
        stream = con.execute(
            "SELECT event_date, stream, gross_revenue_usd, platform_fees_usd, creator_payouts_usd, net_revenue_usd, "
            "event_count FROM marts.revenue_by_stream"
        ).fetchall()
        region = con.execute(
            "SELECT event_date, region, country, stream, gross_revenue_usd, platform_fees_usd, creator_payouts_usd, "
            "net_revenue_usd, event_count FROM marts.revenue_by_region"
        ).fetchall()
        quarantine = dict(
            ((log, reason), n)
            for log, reason, n in con.execute(
                "SELECT log, reason, count(*) FROM quality.quarantine GROUP BY ALL"
            ).fetchall()
        )
    got_stream = {r[:2]: r[2:] for r in stream}
    got_region = {r[:4]: r[4:] for r in region}
    for got, want in ((got_stream, want_stream), (got_region, want_region)):
        assert set(got) == set(want)
        for k, w in want.items():
            g = got[k]
            assert g[:4] == pytest.approx(w[:4], abs=0.005), k  # to the cent
            assert g[4] == w[4], k
    assert quarantine == want_q
    reasons = {reason for _, reason in quarantine}
    assert reasons == {
        "malformed",
        "schema_violation",
        "future_event",
        "late_arrival",
        "conflicting_duplicate",
        "invalid_value",
        "unknown_reference",
        "missing_fx_rate",
        "underage",
    }
