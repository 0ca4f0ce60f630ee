"""A raw file that cannot be read at all (a truncated gzip stream, a plain file named .gz) or not
trusted (a gzip member whose CRC-32 or size does not match its text) stops its day with one clear
message naming the file; the day's previous landing stays as it was."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import pickle
from pathlib import Path

import dagster as dg
import pytest

from pipelines.lake import DataDir
from pipelines.landing.land import RawFileError, land_days, land_partition
from pipelines.quality.reconcile import landed_row_counts
from pipelines.runner import execute_range, failure_messages
from tests.builders import impression, write_raw, write_reference

DAY = dt.date(2025, 3, 1)
T = "2025-03-01T10:00:00Z"


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    write_reference(tmp_path, DAY, DAY + dt.timedelta(days=4))
    write_raw(tmp_path, "impressions", DAY.isoformat(), [impression("ok-1", T), impression("ok-2", T)], "good.jsonl")
    return DataDir.at(tmp_path)


def _gzip_lines(n: int, level: int = 9) -> bytes:
    return gzip.compress(
        b"".join((json.dumps(impression(f"gz-{i}", T)) + "\n").encode() for i in range(n)), compresslevel=level
    )


def _trailer_changed(offset: int) -> bytes:
    """A sound gzip file with one byte of its trailer changed: -8 the CRC-32, -4 the size of the text."""
    content = bytearray(_gzip_lines(50))
    content[offset] ^= 0x01
    return bytes(content)


def _price_changed() -> bytes:
    """A gzip file of stored (not compressed) blocks with one byte of its text changed, from a price of
    5.0 to 9.0: the deflate stream stays valid, only the member's CRC-32 tells."""
    content = bytearray(_gzip_lines(50, level=0))
    at = content.index(b'"price": 5.0')
    content[at + len('"price": ')] = ord("9")
    return bytes(content)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda: _gzip_lines(500)[:-40], "Unexpected end of GZIP stream"),
        (lambda: b'{"not": "gzip at all"}\n', "Input is not a GZIP stream"),
        # DuckDB's message for what follows the stream names no file; Python refuses it too
        (lambda: _gzip_lines(50) + b"trailing bytes", "Input is not a GZIP stream"),
        # DuckDB reads these three without a word (tests/test_gzip_check.py); the check beside it does not
        (lambda: _trailer_changed(-8), "a gzip member's CRC-32 does not match its text: the file is corrupt"),
        (lambda: _trailer_changed(-4), "a gzip member's recorded size does not match its text"),
        (_price_changed, "a gzip member's CRC-32 does not match its text"),
    ],
    ids=["truncated", "not-gzip", "garbage-after-the-stream", "wrong-crc", "wrong-size", "a-price-changed"],
)
def test_unreadable_file_keeps_the_previous_landing(data: DataDir, content, reason: str) -> None:
    before = land_partition(data, "impressions", DAY)
    assert before.accepted == 2
    bad = data.raw_partition("impressions", DAY) / "late-upload.jsonl.gz"
    bad.write_bytes(content())
    with pytest.raises(RawFileError) as info:
        land_partition(data, "impressions", DAY)
    message = str(info.value)
    assert str(bad) in message and reason in message and "re-run the day" in message and "\n" not in message
    assert info.value.path == bad
    assert landed_row_counts(data, "impressions", DAY) == (2, 0)  # the old partition is untouched
    again = pickle.loads(pickle.dumps(info.value))  # travels between processes
    assert str(again) == message and again.path == bad


def test_the_run_fails_with_that_message(data: DataDir) -> None:
    for log in ("coin_purchases", "gifts", "orders", "fund_payouts"):
        data.raw_partition(log, DAY).mkdir(parents=True, exist_ok=True)
    bad = data.raw_partition("impressions", DAY) / "b.jsonl.gz"
    bad.write_bytes(b"plain text\n")
    result = execute_range(data.root, DAY, DAY, log_level="CRITICAL", instance=dg.DagsterInstance.ephemeral())
    assert not result.success
    messages = failure_messages(result)
    assert any(
        m.startswith("step landing__impressions failed: ")
        and "landing/impressions dt=2025-03-01: cannot read raw file" in m
        and str(bad) in m
        for m in messages
    ), messages


def test_other_days_of_the_step_still_land(data: DataDir) -> None:
    next_day = DAY + dt.timedelta(days=1)
    write_raw(data.root, "impressions", next_day.isoformat(), [impression("next-1", "2025-03-02T10:00:00Z")])
    (data.raw_partition("impressions", DAY) / "b.jsonl.gz").write_bytes(b"plain text\n")
    with pytest.raises(RawFileError, match="dt=2025-03-01: cannot read raw file"):
        land_days(data, "impressions", [DAY, next_day])
    assert landed_row_counts(data, "impressions", next_day) == (1, 0)
    assert not data.landing_partition("impressions", DAY).exists()
