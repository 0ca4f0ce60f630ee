"""Valid gzip files that DuckDB's reader refuses (header flags, zero padding) land like any other;
files that are not readable gzip still stop their day (tests/test_unreadable_raw_files.py)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import struct
import zlib
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.lake import DataDir
from pipelines.landing.gzip_repair import file_named_in, rewrite_gzip
from pipelines.landing.land import land_partition
from pipelines.quality.reconcile import count_raw_lines, landed_row_counts
from pipelines.runner import execute_range
from tests.builders import impression, write_raw, write_reference

DAY = dt.date(2025, 3, 1)
T = "2025-03-01T10:00:00Z"
FTEXT, FHCRC, FEXTRA, FCOMMENT = 1, 2, 4, 16


def member(body: bytes, flags: int = 0, fields: bytes = b"") -> bytes:
    """One RFC 1952 member, header fields written by hand (``fields``: FEXTRA / FCOMMENT bytes)."""
    header = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", 0) + b"\x00\xff" + fields
    if flags & FHCRC:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    return header + deflate.compress(body) + deflate.flush() + struct.pack("<II", zlib.crc32(body), len(body))


def lines(prefix: str, n: int, *extra: str) -> bytes:
    rows = [json.dumps(impression(f"{prefix}-{i}", T)) for i in range(n)] + list(extra)
    return "\n".join(rows).encode() + b"\n"


BODY = lines("gz", 3, "not json", "   ")  # 3 accepted, 1 malformed, 1 blank
VARIANTS = {
    "comment": member(BODY, FCOMMENT, b"written by a Go service\x00"),  # Go's gzip.Writer with Header.Comment
    "header-crc": member(BODY, FHCRC),
    "text-flag": member(BODY, FTEXT),
    "zero-padding": member(BODY) + b"\x00" * 32,
    "comment-in-second-member": member(BODY[:40]) + member(BODY[40:], FCOMMENT, b"part two\x00"),
}


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    write_reference(tmp_path, DAY, DAY + dt.timedelta(days=4))
    write_raw(tmp_path, "impressions", DAY.isoformat(), [impression("plain-1", T)], "a.jsonl")
    return DataDir.at(tmp_path)


@pytest.mark.parametrize("content", list(VARIANTS.values()), ids=list(VARIANTS))
def test_valid_gzip_duckdb_refuses_lands_in_full(data: DataDir, content: bytes) -> None:
    assert gzip.decompress(content) == BODY  # what any gzip reader gives
    bad = data.raw_partition("impressions", DAY) / "b.jsonl.gz"
    bad.write_bytes(content)
    with pytest.raises(duckdb.IOException):  # the reason for the module: DuckDB alone refuses it
        duckdb.sql(f"SELECT count(*) FROM read_csv('{bad}', header = false, columns = {{'l': 'VARCHAR'}})").fetchall()

    stats = land_partition(data, "impressions", DAY)

    assert (stats.accepted, stats.quarantined, stats.by_reason) == (4, 1, {"malformed": 1})
    assert landed_row_counts(data, "impressions", DAY) == (4, 1)
    assert count_raw_lines(data, "impressions", DAY) == 5  # the check's own count reads it too
    quarantine = data.quarantine_file("landing", "impressions", DAY)
    row = duckdb.sql(f"SELECT raw, source_file FROM read_parquet('{quarantine}')").fetchall()
    assert row == [("not json", "b.jsonl.gz")]  # the line keeps its file's own name
    assert bad.read_bytes() == content  # the raw file is never touched
    assert list(data.scratch.iterdir()) == [] and not any(data.landing_partition("impressions", DAY).glob(".*"))
    assert not list(data.landing_partition("impressions", DAY).parent.glob(".*tmp*"))


def test_a_refused_file_beside_an_undecodable_line_counts_each_line_once(data: DataDir) -> None:
    """The reader's reject table of the refused attempt does not add to the attempt that reads."""
    write_raw(data.root, "impressions", DAY.isoformat(), [], "c.jsonl")
    (data.raw_partition("impressions", DAY) / "c.jsonl").write_bytes(b'{"event_id":"x\xe9"}\n')
    (data.raw_partition("impressions", DAY) / "d.jsonl.gz").write_bytes(VARIANTS["comment"])
    stats = land_partition(data, "impressions", DAY)
    assert (stats.accepted, stats.by_reason) == (4, {"malformed": 2})
    assert count_raw_lines(data, "impressions", DAY) == 6 == stats.landed


def test_rewrite_gzip_refuses_what_python_cannot_read_either(tmp_path: Path) -> None:
    truncated = tmp_path / "t.jsonl.gz"
    truncated.write_bytes(gzip.compress(lines("t", 200))[:-30])
    assert "end-of-stream" in rewrite_gzip(truncated, tmp_path / "out" / "t.jsonl.gz")
    assert not (tmp_path / "out" / "t.jsonl.gz").exists()
    good = tmp_path / "g.jsonl.gz"
    good.write_bytes(VARIANTS["header-crc"])
    assert rewrite_gzip(good, tmp_path / "out" / "g.jsonl.gz") is None
    copy = (tmp_path / "out" / "g.jsonl.gz").read_bytes()
    assert gzip.decompress(copy) == BODY and copy[3] == 0  # one member, no header flags


def test_the_file_an_error_names_is_the_longest_path_it_holds() -> None:
    files = [Path("/d/x.jsonl"), Path("/d/x.jsonl.gz")]
    assert file_named_in("IO Error: Unsupported GZIP archive: /d/x.jsonl.gz", files) == files[1]
    assert file_named_in("IO Error: something about /d/x.jsonl", files) == files[0]
    assert file_named_in("IO Error: no file", files) is None


def test_a_run_over_such_a_file_passes_its_checks(data: DataDir) -> None:
    for log in ("coin_purchases", "gifts", "orders", "fund_payouts"):
        data.raw_partition(log, DAY).mkdir(parents=True, exist_ok=True)
    (data.raw_partition("impressions", DAY) / "b.jsonl.gz").write_bytes(VARIANTS["comment"])
    result = execute_range(data.root, DAY, DAY, log_level="CRITICAL", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    with duckdb.connect(str(data.warehouse), read_only=True) as con:
        counts = con.sql("SELECT stream, event_count FROM marts.revenue_by_stream").fetchall()
    assert counts == [("advertising", 4)]


def test_a_refused_file_python_cannot_read_either_gives_both_reasons(data: DataDir) -> None:
    """A comment header (DuckDB refuses it) over a stream whose checksum is wrong (Python refuses that)."""
    from pipelines.landing.land import RawFileError

    bad_crc = bytearray(VARIANTS["comment"])
    bad_crc[-8] ^= 0xFF  # the CRC-32 of the trailer
    bad = data.raw_partition("impressions", DAY) / "b.jsonl.gz"
    bad.write_bytes(bytes(bad_crc))
    with pytest.raises(RawFileError) as info:
        land_partition(data, "impressions", DAY)
    message = str(info.value)
    assert "Unsupported GZIP archive; Python's gzip: CRC check failed" in message and str(bad) in message
    assert "\n" not in message


def test_many_refused_files_are_repaired_in_one_retry(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty refused files (twenty with a comment header, twenty with zero padding) are all found at the
    first refusal: the day is read three times, not once per file (it was read 41 times; 200 such files
    took 5 minutes to land)."""
    partition = data.raw_partition("impressions", DAY)
    for i in range(20):
        (partition / f"c{i:02d}.jsonl.gz").write_bytes(member(lines(f"c{i}", 2), FCOMMENT, b"go\x00"))
        (partition / f"p{i:02d}.jsonl.gz").write_bytes(member(lines(f"p{i}", 2)) + b"\x00" * 8)
    import pipelines.landing.gzip_repair as repair

    reads = []
    real = repair.read_with_gzip_repair

    def counting(files, scratch, read):
        def counted(current):
            reads.append(len([p for p in current if p.parent != partition]))
            return read(current)

        return real(files, scratch, counted)

    monkeypatch.setattr("pipelines.landing.land.read_with_gzip_repair", counting)
    stats = land_partition(data, "impressions", DAY)
    assert (stats.accepted, stats.quarantined) == (81, 0)
    assert reads == [0, 20, 40]  # the comment headers first (DuckDB names one), then the padded files
    assert count_raw_lines(data, "impressions", DAY) == 81
