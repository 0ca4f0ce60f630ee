"""The gzip trailer check landing runs beside DuckDB's reader (pipelines/landing/gzip_check.py), on small
files built by hand; a day with such a file fails as an unreadable one (tests/test_unreadable_raw_files.py)."""

from __future__ import annotations

import gzip
import struct
import threading
import time
import zlib
from pathlib import Path

import duckdb
import pytest

from pipelines.duck import read_lines_sql, sql_list
from pipelines.landing import gzip_check
from pipelines.landing.gzip_check import GzipCheck, gzip_fault

TEXT = b"".join(b'{"event_id":"e%d","price":5.0}\n' % i for i in range(2_000))


def stored(text: bytes) -> bytearray:
    """A gzip member of stored blocks: each byte of the text stands as it is in the file."""
    return bytearray(gzip.compress(text, compresslevel=0, mtime=0))


def with_header_fields(text: bytes) -> bytes:
    """A member with a file name, an extra field (as BGZF writes) and a header CRC, written by hand."""
    flags = 0x02 | 0x04 | 0x08  # FHCRC, FEXTRA, FNAME
    header = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", 0) + b"\x00\xff"
    header += struct.pack("<H", 6) + b"BC\x02\x00\x00\x00" + b"part-0.jsonl\x00"
    header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(text) + deflate.flush()
    return header + body + struct.pack("<II", zlib.crc32(text), len(text) & 0xFFFFFFFF)


def lines_duckdb_reads(path: Path) -> list[str]:
    sql = read_lines_sql(sql_list([path]), filename=False, rejects_limit=0)
    return [row[0] for row in duckdb.sql(f"SELECT raw FROM ({sql})").fetchall()]


SOUND = {
    "one member": lambda: gzip.compress(TEXT),
    "several members": lambda: gzip.compress(TEXT[:777]) + gzip.compress(TEXT[777:]) + gzip.compress(b""),
    "zero padding after the last member": lambda: gzip.compress(TEXT) + b"\0" * 1000,
    "zero padding between members": lambda: gzip.compress(TEXT[:10]) + b"\0" * 7 + gzip.compress(TEXT[10:]),
    "header fields": lambda: with_header_fields(TEXT),
    "a member of zeros a thousandfold": lambda: gzip.compress(b"\0" * (50 << 20)),
    "an empty file": lambda: b"",
}


@pytest.mark.parametrize("build", list(SOUND.values()), ids=list(SOUND))
def test_sound_files_pass(tmp_path: Path, build) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(build())
    gzip.decompress(path.read_bytes())  # any gzip reader reads them
    assert gzip_fault(path) is None


def corrupt(offset_from_end: int) -> bytes:
    content = bytearray(gzip.compress(TEXT))
    content[len(content) - offset_from_end] ^= 0x40
    return bytes(content)


def text_changed() -> bytes:
    content = stored(TEXT)
    at = content.index(b'"e1234","price":5.0') + len(b'"e1234","price":')
    content[at] = ord("9")
    return bytes(content)


FAULTY = {
    "wrong CRC-32": (lambda: corrupt(8), "a gzip member's CRC-32 does not match its text: the file is corrupt"),
    "wrong size": (lambda: corrupt(4), "a gzip member's recorded size does not match its text: the file is corrupt"),
    "a byte of the text changed": (text_changed, "a gzip member's CRC-32 does not match its text"),
    "wrong CRC in a second member": (
        lambda: gzip.compress(TEXT[:100]) + corrupt(8),
        "a gzip member's CRC-32 does not match its text",
    ),
    "cut short": (lambda: gzip.compress(TEXT)[:-20], "the file ends inside a gzip member (cut short)"),
    "cut inside a second member's header": (
        lambda: gzip.compress(TEXT) + gzip.compress(TEXT)[:5],
        "the file ends inside a gzip member (cut short)",
    ),
    "not gzip": (lambda: TEXT, "gzip: incorrect header check"),
    "garbage after the member": (lambda: gzip.compress(TEXT) + b"trailing", "gzip: incorrect header check"),
}


@pytest.mark.parametrize(("build", "reason"), list(FAULTY.values()), ids=list(FAULTY))
def test_faulty_files_say_why(tmp_path: Path, build, reason: str) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(build())
    assert gzip_fault(path) is not None and gzip_fault(path).startswith(reason)


@pytest.mark.parametrize("build", [lambda: corrupt(8), lambda: corrupt(4), text_changed])
def test_duckdb_alone_reads_a_corrupt_member_without_a_word(tmp_path: Path, build) -> None:
    """Why the check exists: DuckDB (2.0) hands back the changed text as if it were the producer's."""
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(build())
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(path.read_bytes())
    read = lines_duckdb_reads(path)
    assert len(read) == 2_000
    if build is text_changed:
        assert read[1234] == '{"event_id":"e1234","price":9.0}'  # a price the producer never wrote


def test_a_stop_gives_up_without_a_verdict(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(corrupt(8))
    stop = threading.Event()
    stop.set()
    assert gzip_fault(path, stop) is None


def test_the_check_reports_the_first_faulty_file(tmp_path: Path) -> None:
    files = []
    for name, content in [("a", gzip.compress(TEXT)), ("b", corrupt(8)), ("c", gzip.compress(TEXT)[:-20])]:
        files.append(tmp_path / f"{name}.jsonl.gz")
        files[-1].write_bytes(content)
    with GzipCheck(files) as check:
        assert check.fault() == (files[1], FAULTY["wrong CRC-32"][1])
    with GzipCheck(files[:1]) as check:
        assert check.fault() is None
    with GzipCheck([]) as check:  # nothing to check: no thread
        assert check.fault() is None


def test_leaving_the_block_stops_the_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A landing that fails (DuckDB's error) does not wait for the check of every file: the thread stops
    within the file it is reading."""
    path = tmp_path / "zeros.jsonl.gz"
    path.write_bytes(gzip.compress(b"\0" * (200 << 20), compresslevel=1))
    started = []

    def counted(p: Path, stop: threading.Event | None = None) -> str | None:
        started.append(p)
        return gzip_fault(p, stop)

    monkeypatch.setattr(gzip_check, "gzip_fault", counted)
    with GzipCheck([path] * 50) as check:  # seconds of work
        while not started:
            time.sleep(0.001)
    assert not check._thread.is_alive()
    assert len(started) < 50  # without the stop, every file is read before the block is left
