"""A day whose lines DuckDB cannot read within its memory limit (lines of megabytes, one after
another: DuckDB reads 2,048 lines at a time) lands on a connection with a larger limit, or fails with
one line naming the limit, never a stack trace. The usual limit is shrunk here to make a small day
do what 20 lines of 10 MB do under the usual 2 GB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.duck import compute_connection
from pipelines.lake import DataDir
from pipelines.landing.land import RawFileError, land_partition
from tests.builders import impression, write_raw, write_reference

DAY = dt.date(2025, 3, 1)
T = "2025-03-01T10:00:00Z"


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    write_reference(tmp_path, DAY, DAY + dt.timedelta(days=4))
    rows = [impression(f"e{i}", T) | {"payload": "x" * 1_000_000} for i in range(40)]  # extra members: ignored
    write_raw(tmp_path, "impressions", DAY.isoformat(), [*rows, impression("small", T)])
    return DataDir.at(tmp_path)


def land_with_limit(data: DataDir, limit: str):
    with compute_connection(data) as con:
        con.execute(f"SET memory_limit = '{limit}'")
        return land_partition(data, "impressions", DAY, con=con)


def test_a_day_that_runs_out_of_memory_lands_with_a_larger_limit(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVWH_LANDING_RETRY_MEMORY_LIMIT", "2GB")
    stats = land_with_limit(data, "40MB")
    assert (stats.accepted, stats.quarantined) == (41, 0)


def test_a_day_that_runs_out_of_memory_twice_fails_in_one_line(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVWH_LANDING_RETRY_MEMORY_LIMIT", "40MB")
    with pytest.raises(RawFileError, match=r"^landing/impressions dt=2025-03-01: DuckDB ran out of memory .* 40MB"):
        land_with_limit(data, "40MB")
    assert not data.landing_partition("impressions", DAY).exists()  # nothing half-landed
    assert list(data.scratch.iterdir()) == []
