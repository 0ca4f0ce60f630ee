"""Rule 5 compares event_time as the instant it denotes, to its last fraction digit.

"…Z" and "…+00:00", ".5" and ".500" spell one instant: copies so written are one event. Before, the
comparison used the parsed TIMESTAMP, which keeps microseconds, so copies 100 ns apart (a .NET producer
writes seven fraction digits) were taken for one event instead of ``conflicting_duplicate``.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
import pytest

from pipelines.lake import DataDir
from pipelines.landing.land import land_partition
from pipelines.reference import load_reference
from pipelines.staged.rules import instant_text
from pipelines.staged.stage import stage_partition
from tests.builders import impression, write_raw

DAY = dt.date(2025, 3, 5)
NEXT = DAY + dt.timedelta(days=1)
T = "2025-03-05T10:00:00"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Z", "+00:00", True),
        (".5Z", ".500+00:00", True),
        (".000Z", "Z", True),
        (".10Z", ".1Z", True),
        (".1234567Z", ".1234568Z", False),  # equal to the microsecond, not to the last digit
        (".000000001Z", ".000000002Z", False),
        (".123456Z", ".1234569Z", False),
        ("Z", ".000000000000000000001Z", False),
    ],
)
def test_instant_text_is_one_spelling_per_instant(a: str, b: str, same: bool) -> None:
    texts = pl.Series([T + a, T + b]).to_frame("t").select(instant_text(pl.col("t"))).to_series()
    assert (texts[0] == texts[1]) is same, texts.to_list()


def test_copies_apart_below_a_microsecond_conflict_and_one_instant_spelled_twice_does_not(
    data_dir: DataDir,
) -> None:
    write_raw(
        data_dir.root,
        "impressions",
        DAY.isoformat(),
        [impression("ns-a", T + ".1234567Z"), impression("same", T + ".5Z", price=2000)],
    )
    write_raw(
        data_dir.root,
        "impressions",
        NEXT.isoformat(),
        [impression("ns-a", T + ".1234568Z"), impression("same", T + ".500+00:00", price=2000.0)],
    )
    for day in (DAY, NEXT):
        land_partition(data_dir, "impressions", day)
    stats = stage_partition(data_dir, "impressions", DAY, load_reference(data_dir))
    assert stats.by_reason == {"conflicting_duplicate": 2} and stats.collapsed == 1
    quarantine = data_dir.quarantine_file("staged", "impressions", DAY)
    rows = duckdb.sql(f"SELECT event_id, arrival_date FROM read_parquet('{quarantine}') ORDER BY ALL").fetchall()
    assert rows == [("ns-a", DAY), ("ns-a", NEXT)]
    staged = pl.read_parquet(data_dir.staged_file("impressions", DAY))
    assert staged.select("event_id", "event_time").rows() == [("same", T + ".5Z")]  # the earliest arrival's copy


def test_numbers_are_compared_as_the_doubles_they_read_as(data_dir: DataDir) -> None:
    """``0.3`` and ``0.30000000000000001`` read as one double, so their copies are one event; ``0.3`` and
    ``0.3000000000000001`` are two doubles, so theirs conflict."""
    same = impression("same", T + "Z")
    apart = impression("apart", T + "Z")
    lines = [
        json.dumps(same).replace('"price": 5.0', '"price": 0.3'),
        json.dumps(same).replace('"price": 5.0', '"price": 0.30000000000000001'),
        json.dumps(apart).replace('"price": 5.0', '"price": 0.3'),
        json.dumps(apart).replace('"price": 5.0', '"price": 0.3000000000000001'),
    ]
    assert all('"price": 0.3' in line for line in lines)
    write_raw(data_dir.root, "impressions", DAY.isoformat(), lines)
    land_partition(data_dir, "impressions", DAY)
    stats = stage_partition(data_dir, "impressions", DAY, load_reference(data_dir))
    assert stats.collapsed == 1 and stats.by_reason == {"conflicting_duplicate": 2}
    staged = pl.read_parquet(data_dir.staged_file("impressions", DAY))
    assert staged.select("event_id", "price").rows() == [("same", 0.3)]
