"""How a landing step schedules its days: small days land two at a time (fixed cost dominates),
a large day lands alone (DuckDB already keeps both cores busy on it, and two at once cost more
CPU); either way every day lands exactly as :func:`land_partition` would land it alone."""

from __future__ import annotations

import datetime as dt
import gzip
import threading
import time
from pathlib import Path

import pytest

from pipelines.lake import DataDir
from pipelines.landing import land
from pipelines.landing.land import land_days, raw_bytes, text_bytes
from tests.builders import impression, write_raw, write_reference

FIRST = dt.date(2025, 3, 1)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(4)]


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    write_reference(tmp_path, FIRST, FIRST + dt.timedelta(days=8))
    for i, day in enumerate(DAYS):
        # days 0 and 2 are "large" (many lines), 1 and 3 small
        n = 40 if i % 2 == 0 else 2
        events = [impression(f"{day}-{k}", f"{day}T10:00:00Z") for k in range(n)]
        write_raw(tmp_path, "impressions", day.isoformat(), events)
    return DataDir.at(tmp_path)


def _watch(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dt.date, int]]:
    """Record, for each landed day, how many days were landing at that moment."""
    seen: list[tuple[dt.date, int]] = []
    active: set[dt.date] = set()
    lock = threading.Lock()
    real = land.land_partition

    def watched(data: DataDir, log: str, arrival: dt.date, **kwargs):
        with lock:
            active.add(arrival)
        time.sleep(0.2)  # long enough that days landing together overlap
        with lock:
            seen.append((arrival, len(active)))
        try:
            return real(data, log, arrival, **kwargs)
        finally:
            with lock:
                active.discard(arrival)

    monkeypatch.setattr(land, "land_partition", watched)
    return seen


def test_large_days_land_alone_and_small_ones_together(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = raw_bytes(data, "impressions", DAYS[1]), raw_bytes(data, "impressions", DAYS[0])
    assert small < large
    monkeypatch.setattr(land, "CONCURRENT_DAY_MAX_BYTES", large)
    seen = _watch(monkeypatch)
    stats = land_days(data, "impressions", DAYS, threads=2)
    assert [s.arrival_date for s in stats] == [d.isoformat() for d in DAYS]  # the order asked for
    assert [s.accepted for s in stats] == [40, 2, 40, 2]
    together = dict(seen)
    assert together[DAYS[0]] == 1 and together[DAYS[2]] == 1  # each large day alone
    assert max(together[DAYS[1]], together[DAYS[3]]) == 2  # the small ones side by side


def test_every_day_small_lands_two_at_a_time(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _watch(monkeypatch)
    stats = land_days(data, "impressions", DAYS, threads=2)
    assert [s.accepted for s in stats] == [40, 2, 40, 2]
    assert max(n for _, n in seen) == 2


def test_a_missing_day_has_no_bytes(data: DataDir) -> None:
    assert raw_bytes(data, "impressions", FIRST - dt.timedelta(days=1)) == 0


def test_a_gzip_day_counts_the_lines_it_inflates_to(tmp_path: Path) -> None:
    """A 107 MB .gz of 717 MB of lines is a large day: its size is read from the trailer (several
    members, padding: at least four times the file)."""
    text = b"".join(b'{"event_id":"e%d","price":5.0}\n' % i for i in range(20_000))
    one = tmp_path / "one.jsonl.gz"
    one.write_bytes(gzip.compress(text))
    assert text_bytes(one) == len(text) > 10 * one.stat().st_size
    several = tmp_path / "several.jsonl.gz"
    several.write_bytes(gzip.compress(text) + gzip.compress(text[:100]))
    assert text_bytes(several) == 4 * several.stat().st_size
    padded = tmp_path / "padded.jsonl.gz"
    padded.write_bytes(gzip.compress(text) + b"\0" * 8)
    assert text_bytes(padded) == 4 * padded.stat().st_size
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(text)
    assert text_bytes(plain) == len(text)
    tiny = tmp_path / "tiny.jsonl.gz"
    tiny.write_bytes(b"\x1f")
    assert text_bytes(tiny) == 1


def test_a_gzip_file_that_cannot_be_opened_is_left_to_the_landing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sizing days must not fail before landing can name the file (tests run as root: chmod cannot say no)."""
    locked = tmp_path / "locked.jsonl.gz"
    locked.write_bytes(gzip.compress(b"{}\n" * 1000))
    real_open = Path.open

    def refuse(self: Path, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert text_bytes(locked) == 4 * locked.stat().st_size


def test_a_landing_that_fails_late_leaves_the_day_and_its_quarantine_both_as_they_were(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the new quarantine was moved into place before the accepted copies' swap: a failure in
    between left the day's quarantine of the new raw files beside the accepted copies of the old ones."""
    day = DAYS[1]
    land.land_partition(data, "impressions", day)
    quarantine = data.quarantine_file("landing", "impressions", day)
    accepted = sorted(p.relative_to(data.lake) for p in data.landing_partition("impressions", day).rglob("*"))
    before = quarantine.read_bytes()
    write_raw(data.root, "impressions", day.isoformat(), ["{not json", "[1, 2]"], name="late.jsonl")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(land, "write_id_index", fail)
    with pytest.raises(OSError, match="disk full"):
        land.land_partition(data, "impressions", day)
    assert quarantine.read_bytes() == before
    assert sorted(p.relative_to(data.lake) for p in data.landing_partition("impressions", day).rglob("*")) == accepted
    monkeypatch.undo()
    stats = land.land_partition(data, "impressions", day)
    assert stats.by_reason == {"malformed": 2}


@pytest.mark.parametrize("damage", ["{not json", "[]", '{"log": "impressions"}', ""])
def test_a_damaged_manifest_counts_as_never_landed_and_the_day_lands_again(data: DataDir, damage: str) -> None:
    """A manifest cut short or edited by hand is not a traceback: the day lands again and gets a new one."""
    land_days(data, "impressions", [DAYS[1]])
    landed = land.read_manifest(data, "impressions", DAYS[1])
    assert landed is not None and landed.accepted == 2
    data.manifest_file("landing", "impressions", DAYS[1]).write_text(damage)
    assert land.read_manifest(data, "impressions", DAYS[1]) is None
    land_days(data, "impressions", [DAYS[1]])
    again = land.read_manifest(data, "impressions", DAYS[1])
    assert again is not None and again.accepted == 2 and again.landed == landed.landed


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "quarantine"])
def test_a_damaged_landing_lands_again_instead_of_failing_its_check_on_every_run(data: DataDir, damage: str) -> None:
    """The raw files are unchanged, so the fingerprint alone would skip the day; its landed files no longer
    hold the rows the manifest counts, so it lands again (the landing check then passes)."""
    first = land_days(data, "impressions", [DAYS[0]])[0]
    buckets = sorted(data.landing_partition("impressions", DAYS[0]).glob("*/*.parquet"))
    if damage == "delete":
        buckets[0].unlink()
    elif damage == "truncate":
        buckets[0].write_bytes(buckets[0].read_bytes()[:10])
    elif damage == "garbage":
        buckets[0].write_bytes(b"not parquet at all" * 10)
    else:
        data.quarantine_file("landing", "impressions", DAYS[0]).write_bytes(b"PAR1")
    again = land_days(data, "impressions", [DAYS[0]])[0]
    assert not again.skipped and (again.accepted, again.quarantined) == (first.accepted, first.quarantined)
    assert land_days(data, "impressions", [DAYS[0]])[0].skipped  # intact again: skipped as before


def test_an_unreadable_id_index_is_rebuilt(data: DataDir) -> None:
    from pipelines.duck import connect
    from pipelines.landing.id_index import INDEX_FILE, id_index_rows

    land_days(data, "impressions", [DAYS[0]])
    path = data.landing_partition("impressions", DAYS[0]) / INDEX_FILE
    path.write_bytes(b"garbage")
    with connect() as con:
        assert id_index_rows(data, "impressions", DAYS[0], con) == (path, 40)
