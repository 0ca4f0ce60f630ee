"""Lines that are not UTF-8 are malformed, and the quarantine keeps their own bytes as text.

DuckDB's reader mangles them (``x\\xe9abc`` read ``x??bc``: the valid ``a`` lost); landing reads such
files again and decodes each bad line with U+FFFD per invalid sequence (Python's errors="replace")."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

import pipelines.landing.land as land_module
import pipelines.landing.undecodable as undecodable
from pipelines.duck import rejects_per_file
from pipelines.lake import DataDir
from pipelines.landing.land import land_partition
from pipelines.landing.undecodable import undecodable_lines
from pipelines.quality.reconcile import count_raw_lines
from pipelines.runner import execute_range
from tests.builders import impression, write_raw, write_reference

DAY = dt.date(2025, 3, 5)
T = "2025-03-05T10:00:00Z"
GOOD = json.dumps(impression("good", T)).encode()
ALSO = json.dumps(impression("also", T)).encode()
LATIN1 = b'{"event_id":"x\xe9abc","event_time":"2025"}'  # \xe9 opens a 3-byte sequence 'a' does not continue


def _folder(data: DataDir) -> Path:
    folder = data.raw_partition("impressions", DAY)
    folder.mkdir(parents=True)
    return folder


def _quarantine(data: DataDir) -> list[tuple[str, str, str]]:
    q = data.quarantine_file("landing", "impressions", DAY)
    return sorted(duckdb.sql(f"SELECT source_file, reason, raw FROM read_parquet('{q}')").fetchall())


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    return DataDir.at(tmp_path)


def test_undecodable_lines_keep_every_valid_character(data: DataDir) -> None:
    folder = _folder(data)
    (folder / "a.jsonl").write_bytes(
        b"\xef\xbb\xbf" + b"\xff first\n" + GOOD + b"\n" + LATIN1 + b"\n" + ALSO + b"\r\n" + b"zz\xff\xfe\r"
        b"caf\xc3\xa9 \xc3(\n"  # a valid 'é', then an invalid pair
    )
    with gzip.open(folder / "b.jsonl.gz", "wb") as fh:
        fh.write(GOOD.replace(b"good", b"gz") + b"\n" + LATIN1.replace(b"x", b"y") + b"\n")
    stats = land_partition(data, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (8, 3, {"malformed": 5})
    assert count_raw_lines(data, "impressions", DAY) == 8
    assert _quarantine(data) == sorted(
        [
            ("a.jsonl", "malformed", "\ufffd first"),
            ("a.jsonl", "malformed", '{"event_id":"x\ufffdabc","event_time":"2025"}'),
            ("a.jsonl", "malformed", "zz\ufffd\ufffd"),
            ("a.jsonl", "malformed", "caf\u00e9 \ufffd("),
            ("b.jsonl.gz", "malformed", '{"event_id":"y\ufffdabc","event_time":"2025"}'),
        ]
    )


def test_a_file_read_again_to_another_count_keeps_the_readers_text(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts must balance: if reading the file again found another number of bad lines than
    DuckDB's reader did, the reader's own text is kept for that file (mangled, but one row per line)."""
    (_folder(data) / "a.jsonl").write_bytes(GOOD + b"\n" + LATIN1 + b"\n" + b"zz\xff\n")
    monkeypatch.setattr(land_module, "probes_undecodable", lambda path: False)  # as if past the first MB
    monkeypatch.setattr(land_module, "undecodable_lines", lambda path: ["only one"])
    stats = land_partition(data, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (3, 1, {"malformed": 2})
    raws = [raw for _src, _reason, raw in _quarantine(data)]
    assert len(raws) == 2 and "only one" not in raws
    assert all("?" in raw for raw in raws)  # DuckDB's replacement


def test_only_rejected_files_are_read_again(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(data)
    (folder / "clean.jsonl").write_bytes(GOOD + b"\nnot json\n")
    (folder / "bad.jsonl").write_bytes(ALSO + b"\n" + LATIN1 + b"\n")
    read: list[str] = []
    monkeypatch.setattr(land_module, "probes_undecodable", lambda path: False)  # as if past the first MB
    monkeypatch.setattr(
        land_module, "undecodable_lines", lambda path: read.append(path.name) or undecodable_lines(path)
    )
    stats = land_partition(data, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (4, 2, {"malformed": 2})
    assert read == ["bad.jsonl"]


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 1 << 20])
def test_blocks_cut_anywhere_find_the_same_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Blocks end at a line end, so a multi-byte character is never cut; a CRLF cut in two leaves only
    an empty line."""
    monkeypatch.setattr(undecodable, "BLOCK_BYTES", block)
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\xef\xbb\xbfok\r\n\xe9t\xc3\xa9\r\nfine \xe2\x82\xac\rno\xff end\n\n\xc3\nlast \xe9")
    assert undecodable_lines(path) == ["\ufffdt\u00e9", "no\ufffd end", "\ufffd", "last \ufffd"]


@pytest.mark.parametrize(("window", "close"), [(4, 1), (4, 1000), (16, 3), (4096, 16)])
def test_skipping_valid_stretches_finds_the_lines_splitting_finds(
    monkeypatch: pytest.MonkeyPatch, window: int, close: int
) -> None:
    """A block is decoded stretch by stretch and only the lines around invalid bytes are cut out (or,
    where bad lines come close together, split): the same lines, in order, as splitting every line.
    Random blocks of LF, CR, CRLF, valid and invalid sequences, characters cut at a stretch's end."""
    monkeypatch.setattr(undecodable, "WINDOW_BYTES", window)
    monkeypatch.setattr(undecodable, "CLOSE_BAD_LINES", close)
    pieces = [b"a", b"{}", b"\n", b"\r", b"\r\n", b"\xe9", b"\xc3\xa9", b"\xff", b"\xe2\x82", b"\xe2\x82\xac"]
    pieces += [b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\xf0\x9f", b"\x80", b"0123456789" * 3]
    rng = random.Random(37)
    for _ in range(3000):
        block = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 120)))
        for limit in (None, 6, 1 << 20):
            expected = [line for line in block.splitlines() if not undecodable._fits(line, limit)]
            assert list(undecodable._unfit_lines(block, limit)) == expected, (block, limit)


def test_a_long_valid_stretch_is_decoded_once_not_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines are split only near bad ones: a megabyte of valid lines around one bad line is not."""
    split: list[int] = []
    real = undecodable._split_unfit

    def counted(block: bytes, limit: int | None) -> Iterator[bytes]:
        split.append(len(block))
        return real(block, limit)

    monkeypatch.setattr(undecodable, "_split_unfit", counted)
    valid = b'{"event_id":"e"}\n' * 40_000
    assert list(undecodable._unfit_lines(valid + b"x\xe9\n" + valid, None)) == [b"x\xe9"]
    assert split == []
    dense = b"".join(b"l%d \xe9\n" % i for i in range(100))
    assert len(list(undecodable._unfit_lines(valid + dense, None))) == 100
    assert split and split[0] < len(dense)  # split from the close bad lines on, not the valid part


def test_a_file_of_valid_utf8_has_no_undecodable_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes('\ufeff{"a": "\u00e9\u20ac\U0001f600"}\r\n\n'.encode())
    assert undecodable_lines(path) == []


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_file_with_many_undecodable_lines_is_read_again_in_batches(
    data: DataDir, monkeypatch: pytest.MonkeyPatch, gz: bool
) -> None:
    """A file in another encoding has a bad byte on every line. DuckDB keeps REJECTS_PER_FILE of them in
    its reject table, which lives in memory (1.6 GiB a million lines); past that, the file's undecodable
    lines come from Python's re-read alone, written out in batches, and the landing check counts them
    the same way (here the limit is 2 and the batches 2 lines)."""
    body = GOOD + b"\n" + b"\n".join(LATIN1.replace(b"x", b"x%d" % i) for i in range(5)) + b"\nzz\xff\n"
    (_folder(data) / ("a.jsonl.gz" if gz else "a.jsonl")).write_bytes(gzip.compress(body) if gz else body)
    monkeypatch.setattr("pipelines.duck.REJECTS_PER_FILE", 2)
    batches = undecodable.undecodable_batches
    monkeypatch.setattr(land_module, "undecodable_batches", lambda path, _n, **kw: batches(path, batch_lines=2, **kw))
    monkeypatch.setattr(land_module, "UNDECODABLE_BATCH_LINES", 3)
    monkeypatch.setattr(land_module, "undecodable_lines", lambda path: pytest.fail("read whole"))
    monkeypatch.setattr(land_module, "probes_undecodable", lambda path: False)  # as if past the first MB
    monkeypatch.setattr("pipelines.quality.reconcile.probes_undecodable", lambda path: False)
    stats = land_partition(data, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (7, 1, {"malformed": 6})
    raws = [raw for _src, _reason, raw in _quarantine(data)]
    assert sorted(raws) == sorted(
        [f'{{"event_id":"x{i}\ufffdabc","event_time":"2025"}}' for i in range(5)] + ["zz\ufffd"]
    )
    assert count_raw_lines(data, "impressions", DAY) == 7


def test_the_reject_limit_shrinks_with_the_number_of_files() -> None:
    assert [rejects_per_file(n) for n in (0, 1, 100, 101, 1000, 5000, 10**6)] == [1000, 1000, 1000, 990, 100, 20, 1]


def test_many_files_with_undecodable_lines_keep_few_rejects_in_memory(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of files, each with fewer undecodable lines than a file's reject limit, past the probes:
    the reader's table would keep them all (5,000 files of 990 Latin-1 lines held 8 GiB). The limit per
    file shrinks with the number of files (here 3 files, about 6 rejects a read: 2 a file), and a file
    that reaches it is read again by Python, for landing and the check alike."""
    folder = _folder(data)
    for f in range(3):
        bad = [LATIN1.replace(b"x", b"f%dx%d" % (f, i)) for i in range(3)]
        good = GOOD.replace(b"good", b"good%d" % f)
        (folder / f"{f}.jsonl").write_bytes(b"\n".join([bad[0], good, *bad[1:]]) + b"\n")
    monkeypatch.setattr("pipelines.duck.REJECTS_PER_READ", 6)
    monkeypatch.setattr(land_module, "probes_undecodable", lambda path: False)  # as if past the probes
    monkeypatch.setattr("pipelines.quality.reconcile.probes_undecodable", lambda path: False)
    with duckdb.connect() as con:
        stats = land_partition(data, "impressions", DAY, con=con)
        kept = con.execute("SELECT file_id, count(*) FROM reject_errors GROUP BY 1").fetchall()
    assert sorted(n for _file, n in kept) == [2, 2, 2]
    assert (stats.landed, stats.accepted, stats.by_reason) == (12, 3, {"malformed": 9})
    assert sorted(raw for _src, _reason, raw in _quarantine(data)) == sorted(
        f'{{"event_id":"f{f}x{i}\ufffdabc","event_time":"2025"}}' for f in range(3) for i in range(3)
    )
    assert count_raw_lines(data, "impressions", DAY) == 12


def test_lines_read_again_share_parquet_files_across_small_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 files of 990 such lines wrote 5,000 Parquet files; a batch now holds several files' lines,
    in file order, and a folder left by an attempt before a retry is replaced."""
    paths = []
    for f in range(3):
        paths.append(tmp_path / f"{f}.jsonl")
        paths[-1].write_bytes(b"\n".join([GOOD, *(b"f%d-%d\xe9" % (f, i) for i in range(3))]) + b"\n")
    folder = tmp_path / "undecodable"
    folder.mkdir()
    (folder / "000009.parquet").write_bytes(b"left by an earlier attempt")
    monkeypatch.setattr(land_module, "UNDECODABLE_BATCH_LINES", 4)
    written = land_module._write_undecodable_batches(paths, folder)
    assert sorted(folder.iterdir()) == written
    frames = [pl.read_parquet(p) for p in written]
    assert [f.height for f in frames] == [6, 3]
    assert frames[0]["src"].to_list() == ["0.jsonl"] * 3 + ["1.jsonl"] * 3
    assert pl.concat(frames)["raw"].to_list() == [f"f{f}-{i}\ufffd" for f in range(3) for i in range(3)]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_file_in_another_encoding_is_split_before_duckdb_reads_it(
    data: DataDir, monkeypatch: pytest.MonkeyPatch, gz: bool
) -> None:
    """A file whose first megabyte is not UTF-8 (a Latin-1 producer) is copied without its undecodable
    lines, which are quarantined from Python's reading: DuckDB's reader rejects nothing, so its memory
    stays flat (its rejects cost 1.2 GiB a million lines)."""
    body = LATIN1 + b"\r\n" + GOOD + b"\r\n" + b"zz\xff\rcaf\xc3\xa9\n" + ALSO
    (_folder(data) / ("a.jsonl.gz" if gz else "a.jsonl")).write_bytes(gzip.compress(body) if gz else body)
    monkeypatch.setattr(land_module, "undecodable_lines", lambda path: pytest.fail("reject table used"))
    stats = land_partition(data, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (5, 2, {"malformed": 3})
    src = "a.jsonl.gz" if gz else "a.jsonl"
    assert _quarantine(data) == sorted(
        [
            (src, "malformed", '{"event_id":"x\ufffdabc","event_time":"2025"}'),
            (src, "malformed", "zz\ufffd"),
            (src, "malformed", "caf\u00e9"),  # valid UTF-8, not JSON
        ]
    )
    assert count_raw_lines(data, "impressions", DAY) == 5
    assert list(data.scratch.iterdir()) == []


def test_a_file_whose_rejects_fill_the_readers_table_loses_no_over_long_line(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past REJECTS_PER_FILE the reader's table keeps rejects of one kind and drops the others (an
    over-long line after many undecodable ones): Python's re-read finds both, and the check counts both."""
    long_line = json.dumps(impression("long", T) | {"pad": "x" * 150_000}).encode()
    body = GOOD + b"\n" + b"\n".join(LATIN1.replace(b"x", b"x%d" % i) for i in range(4)) + b"\n" + long_line + b"\n"
    (_folder(data) / "a.jsonl").write_bytes(body)
    monkeypatch.setattr("pipelines.duck.REJECTS_PER_FILE", 2)
    for module in ("pipelines.duck", "pipelines.landing.land", "pipelines.quality.reconcile"):
        monkeypatch.setattr(f"{module}.MAX_LINE_BYTES", 100_000)
    monkeypatch.setattr(land_module, "probes_undecodable", lambda path: False)  # as if past the probes
    monkeypatch.setattr("pipelines.quality.reconcile.probes_undecodable", lambda path: False)
    stats = land_partition(data, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (6, 1, {"malformed": 5})
    assert any(raw.startswith('{"event_id": "long"') for _src, _reason, raw in _quarantine(data))
    assert count_raw_lines(data, "impressions", DAY) == 6


def test_a_cut_gzip_file_in_another_encoding_fails_its_day_in_one_line(data: DataDir) -> None:
    body = b"\n".join(LATIN1.replace(b"x", b"x%d" % i) for i in range(100_000)) + b"\n"
    packed = gzip.compress(body)
    (_folder(data) / "a.jsonl.gz").write_bytes(packed[: len(packed) * 9 // 10])  # cut after the probe's megabyte
    with pytest.raises(land_module.RawFileError, match=r"cannot read raw file .*a\.jsonl\.gz \(Python's gzip: "):
        land_partition(data, "impressions", DAY)
    assert list(data.scratch.iterdir()) == []


def test_a_file_that_turns_to_another_encoding_after_its_first_megabyte_is_split_too(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probes also read the middle and the last megabyte of a plain file."""
    good = b"\n".join(json.dumps(impression(f"g{i}", T)).encode() for i in range(8_000)) + b"\n"
    bad = b"\n".join(LATIN1.replace(b"x", b"x%d" % i) for i in range(30_000)) + b"\n"
    assert len(good) > undecodable.PROBE_BYTES
    (_folder(data) / "a.jsonl").write_bytes(good + bad)
    monkeypatch.setattr(land_module, "undecodable_lines", lambda path: pytest.fail("reject table used"))
    stats = land_partition(data, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (38_000, 8_000, {"malformed": 30_000})
    assert count_raw_lines(data, "impressions", DAY) == 38_000


def test_the_landing_check_counts_two_days_at_once_each_with_its_own_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The landing check counts arrival days two at a time, on cursors of one DuckDB database. Each
    cursor has its own reject table, so one day's undecodable lines never count for another."""
    monkeypatch.setenv("REVWH_STEP_THREADS", "2")
    days = [DAY + dt.timedelta(days=i) for i in range(4)]
    write_reference(tmp_path, DAY, days[-1] + dt.timedelta(days=3))
    expected = {}
    for i, day in enumerate(days):
        undecodable = [LATIN1.replace(b"x", b"x%d-%d" % (i, j)) for j in range(3 * i)]
        lines = [GOOD.replace(b"good", b"good-%d" % i), *undecodable]
        write_raw(tmp_path, "impressions", day.isoformat(), [], "a.jsonl")
        (tmp_path / "raw" / "impressions" / f"dt={day}" / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        expected[day.isoformat()] = len(lines)
    for log in ("coin_purchases", "gifts", "orders", "fund_payouts"):
        DataDir.at(tmp_path).raw_partition(log, DAY).mkdir(parents=True)

    result = execute_range(tmp_path, DAY, days[-1], log_level="CRITICAL", instance=dg.DagsterInstance.ephemeral())

    [evaluation] = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "landed_equals_accepted_plus_quarantined"
        and e.asset_check_key.asset_key.path[-1] == "impressions"
    ]
    assert evaluation.passed
    counted = evaluation.metadata["days"].value
    assert {day: counts["raw_lines"] for day, counts in counted.items()} == expected
