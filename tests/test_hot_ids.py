"""Ids with a great many copies are staged apart, in DuckDB (pipelines.staged.hot_ids), and the
outputs are exactly those of the ordinary path: same staged events, same quarantine rows (raw lines
included), same counts. The ordinary path is the reference: with the default thresholds and a
piece limit of 10^9 copies no bucket is ever counted."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipelines.contract import LOGS
from pipelines.generate import generate_dataset
from pipelines.lake import DataDir
from pipelines.landing.land import land_partition, landing_sources
from pipelines.reference import load_reference
from pipelines.staged import hot_ids as hot_module
from pipelines.staged import stage as stage_module
from pipelines.staged.hot_ids import find_hot_ids, oversized_buckets
from pipelines.staged.rules import identity, identity_sql, instant_sql, instant_text
from pipelines.staged.stage import read_staged_stats, stage_range
from tests.builders import coin_purchase, impression, order, write_raw

START = dt.date(2025, 3, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(3)]
ARRIVALS = [START + dt.timedelta(days=i) for i in range(7)]
D = DAYS[1]  # the event date of the hot ids
T = "2025-03-02T10:00:00Z"
BUCKETS = 4
COPIES = 240  # copies of each hot id (the generated days hold about 800 impressions a bucket)


def _hot_lines() -> dict[tuple[str, dt.date, str], list[str]]:
    """(log, arrival day, file) -> lines: one hot id of each shape rule 5 knows."""
    same = impression("hot-same", T)
    bad = impression("hot-bad", T, ad_format="banner")  # identical copies that rule 6 rejects
    diff = impression("hot-diff", T)
    far = impression("hot-far", T)
    under = coin_purchase("hot-under", T, user_age=16)  # identical copies that rule 9 rejects
    plain = order("hot-order", T)  # affiliate_creator_id null on every copy: identical
    nulls = order("hot-null", T)

    def compact(row: dict) -> str:
        return json.dumps(row, separators=(",", ":"))

    lines: dict[tuple[str, dt.date, str], list[str]] = {
        # one instant, spelled three ways, over two arrival days: one event, kept from the first day
        ("impressions", D, "hot-a.jsonl"): [json.dumps(same)] * (COPIES // 2)
        + [json.dumps(same | {"event_time": "2025-03-02T10:00:00.000Z"})] * 10,
        ("impressions", D + dt.timedelta(days=1), "hot-a.jsonl"): [
            json.dumps(same | {"event_time": "2025-03-02T10:00:00+00:00"})
        ]
        * (COPIES // 2),
        # rejected by rule 6: the quarantine shows the smallest raw line of the kept copy's day and file
        ("impressions", D, "hot-b.jsonl"): [compact(bad), json.dumps(bad)] * (COPIES // 4)
        + [json.dumps(diff)] * (COPIES - 1)
        + [json.dumps(diff | {"price": 5.5})]
        + [json.dumps(far)] * COPIES,
        ("impressions", D, "hot-c.jsonl"): [" " + json.dumps(bad)] * 5,  # smaller, but in another file: not a tie
        ("impressions", D + dt.timedelta(days=2), "hot-b.jsonl"): [json.dumps(bad)] * (COPIES // 2),
        # hot-far also has a copy on D-1: every copy on both dates is conflicting (D-1 is staged
        # first, and learns of the hot id from D's ids, read ahead)
        ("impressions", D - dt.timedelta(days=1), "hot-far.jsonl"): [
            json.dumps(far | {"event_time": "2025-03-01T10:00:00Z"})
        ],
        ("coin_purchases", D, "hot.jsonl"): [compact(under), json.dumps(under)] * (COPIES // 2),
        ("orders", D, "hot.jsonl"): [json.dumps(plain)] * COPIES
        + [json.dumps(nulls)] * (COPIES - 1)
        + [json.dumps(nulls | {"affiliate_creator_id": "cr9", "affiliate_rate": 0.0})],
        # a late copy of an id that is hot on its own (arrival D+3 only)
        ("orders", D + dt.timedelta(days=3), "late.jsonl"): [json.dumps(order("hot-late", T))] * COPIES,
    }
    return lines


IMPRESSIONS_HOT = {"hot-same", "hot-bad", "hot-diff", "hot-far"}
HOT = IMPRESSIONS_HOT | {"hot-under", "hot-order", "hot-null", "hot-late"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hot-raw")
    generate_dataset(root, START, 3, 4000, seed=11, dirt_rate=0.02)
    for (log, arrival, name), lines in _hot_lines().items():
        existing = root / "raw" / log / f"dt={arrival}" / name
        assert not existing.exists()
        write_raw(root, log, arrival.isoformat(), lines, name=name)
    return root


def _land(raw: Path, target: Path, buckets: list[int]) -> Path:
    """The raw data landed with ``buckets[i % len(buckets)]`` buckets on the i-th arrival day."""
    shutil.copytree(raw, target, dirs_exist_ok=True)
    data = DataDir.at(target)
    for log in LOGS:
        for i, day in enumerate(ARRIVALS):
            land_partition(data, log, day, buckets=buckets[i % len(buckets)])
    return target


@pytest.fixture(scope="module")
def landed(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _land(raw, tmp_path_factory.mktemp("hot-landed"), [BUCKETS])


def _stage(landed: Path, target: Path, group_rows: int) -> dict[str, object]:
    """Stage every log (one range, the pieces of ``group_rows`` copies); return every output."""
    shutil.copytree(landed, target, dirs_exist_ok=True)
    data = DataDir.at(target)
    ref = load_reference(data)
    out: dict[str, object] = {}
    for log in LOGS:
        stage_range(data, log, DAYS, ref, buckets=BUCKETS, group_rows=group_rows)
        for day in DAYS:
            stats = read_staged_stats(data, log, day)
            out[f"stats/{log}/{day}"] = (stats.copies, stats.collapsed, stats.accepted, stats.by_reason)
    with duckdb.connect() as con:
        for log in LOGS:
            out[f"staged/{log}"] = con.execute(
                f"SELECT * FROM read_parquet('{data.lake}/staged/{log}/*.parquet') ORDER BY ALL"
            ).fetchall()
        out["quarantine"] = con.execute(
            f"SELECT * FROM read_parquet('{data.lake}/quarantine/staged/*/*.parquet') ORDER BY ALL"
        ).fetchall()
    return out


@pytest.fixture(scope="module")
def ordinary(landed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return _stage(landed, tmp_path_factory.mktemp("hot-ordinary"), group_rows=10**9)


def test_the_ordinary_run_decides_each_shape(ordinary: dict[str, object]) -> None:
    """The hand-made shapes mean what they say (the reference the hot path must match)."""
    quarantine = ordinary["quarantine"]
    reasons = {(row[1], row[3]) for row in quarantine if row[1] in HOT}
    assert reasons == {
        ("hot-bad", "invalid_value"),
        ("hot-diff", "conflicting_duplicate"),
        ("hot-far", "conflicting_duplicate"),
        ("hot-under", "underage"),
        ("hot-null", "conflicting_duplicate"),
    }
    # the kept copy is the first (compact) line; the smallest of its day and file is the spaced one
    raw = {row[1]: row[4] for row in quarantine if row[1] in ("hot-bad", "hot-under")}
    assert raw == {
        "hot-bad": json.dumps(impression("hot-bad", T, ad_format="banner")),
        "hot-under": json.dumps(coin_purchase("hot-under", T, user_age=16)),
    }
    assert sum(row[1] == "hot-far" for row in quarantine) == COPIES + 1  # both dates
    staged = {row[0] for log in LOGS for row in ordinary[f"staged/{log}"]}
    assert {"hot-same", "hot-order", "hot-late"} <= staged


@pytest.mark.parametrize(
    ("group_rows", "scan_factor"),
    # every bucket counted, the whole day one piece / a few buckets a piece; the buckets read in
    # slices, and counted because they hold more than twice a piece (the default)
    [(10**9, 0), (600, 0), (150, hot_module.SCAN_FACTOR)],
)
def test_hot_ids_staged_apart_give_the_same_outputs(
    landed: Path,
    tmp_path: Path,
    ordinary: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
    group_rows: int,
    scan_factor: int,
) -> None:
    monkeypatch.setenv("REVWH_HOT_ID_COPIES", "50")
    monkeypatch.setattr(hot_module, "SCAN_FACTOR", scan_factor)
    found: set[str] = set()
    largest: dict[str, int] = {}
    real_find, real_copies = stage_module.find_hot_ids, stage_module.stage_copies

    def finding(*args, **kwargs):
        hot = real_find(*args, **kwargs)
        found.update(i for frame in hot.by_day.values() for i in frame.get_column("event_id").to_list())
        return hot

    def staging(log, copies, *args, **kwargs):
        counts = copies.get_column("event_id").value_counts()
        largest[log] = max(largest.get(log, 0), int(counts.get_column("count").max() or 0))
        return real_copies(log, copies, *args, **kwargs)

    monkeypatch.setattr(stage_module, "find_hot_ids", finding)
    monkeypatch.setattr(stage_module, "stage_copies", staging)
    got = _stage(landed, tmp_path, group_rows)
    # every shape took the hot path, and no piece held a hot id's copies; with the default factor the
    # small logs' buckets (a few hundred copies) are not counted: a piece holds them anyway
    counted = (
        HOT if scan_factor == 0 else {i for i in HOT if i.startswith(("hot-same", "hot-bad", "hot-diff", "hot-far"))}
    )
    assert found == counted
    assert max(largest.values()) <= 50 if scan_factor == 0 else largest["impressions"] <= 50
    assert got.keys() == ordinary.keys()
    for name, rows in ordinary.items():
        assert got[name] == rows, name


def test_hot_ids_in_files_cut_another_way_are_staged_apart_too(
    raw: Path, tmp_path: Path, ordinary: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrival days landed before bucketing (one bucket) are read by hash: their hot ids are counted
    and left out of the pieces the same way, with the same outputs."""
    monkeypatch.setenv("REVWH_HOT_ID_COPIES", "50")
    monkeypatch.setattr(hot_module, "SCAN_FACTOR", 0)
    found: set[str] = set()
    real_find = stage_module.find_hot_ids

    def finding(*args, **kwargs):
        hot = real_find(*args, **kwargs)
        found.update(i for frame in hot.by_day.values() for i in frame.get_column("event_id").to_list())
        return hot

    monkeypatch.setattr(stage_module, "find_hot_ids", finding)
    mixed = _land(raw, tmp_path / "landed", [BUCKETS, 1])  # D and D+2 are cut the other way
    got = _stage(mixed, tmp_path / "staged", group_rows=600)
    assert found == HOT
    for name, rows in ordinary.items():
        assert got[name] == rows, name


def test_ordinary_buckets_are_never_counted(landed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a bucket of more than twice a piece's limit is counted: the row counts come from the
    Parquet footers, so an ordinary day costs no read."""
    data = DataDir.at(landed)  # only read
    sources = {d: landing_sources(data, "impressions", d, BUCKETS) for d in DAYS}

    def rows(day: dt.date, bucket: int) -> int:
        return sum(pq.read_metadata(p).num_rows for p in sources[day].bucket_files(bucket))

    for limit in (10**6, 400, 300):
        expected = {
            d: [p for b in range(BUCKETS) if rows(d, b) > 2 * limit for p in sources[d].bucket_files(b)] for d in DAYS
        }
        assert oversized_buckets(sources, BUCKETS, limit) == {d: files for d, files in expected.items() if files}
    assert oversized_buckets(sources, BUCKETS, 10**6) == {} and D in oversized_buckets(sources, BUCKETS, 400)
    sources = oversized_buckets(sources, BUCKETS, limit=300)
    with duckdb.connect() as con:
        hot = find_hot_ids(con, sources, BUCKETS, limit=300)  # hot: more than 300 // 8 copies
    assert set(hot.by_day) == {D}
    assert set(hot.by_day[D].get_column("event_id").to_list()) == IMPRESSIONS_HOT
    monkeypatch.setenv("REVWH_HOT_ID_COPIES", str(COPIES + 1))
    with duckdb.connect() as con:
        hot = find_hot_ids(con, sources, BUCKETS, limit=300)
    assert set(hot.by_day[D].get_column("event_id").to_list()) == {"hot-same", "hot-bad"}  # 250 and 245 copies


SPELLINGS = [
    "2025-03-02T10:00:00Z",
    "2025-03-02T10:00:00+00:00",
    "2025-03-02T10:00:00.0Z",
    "2025-03-02T10:00:00.000+00:00",
    "2025-03-02T10:00:00.5Z",
    "2025-03-02T10:00:00.50Z",
    "2025-03-02T10:00:00.500000+00:00",
    "2025-03-02T10:00:00.1234567Z",
    "2025-03-02T10:00:00.1234560Z",
    "2025-03-02T10:00:00.10203Z",
    "2025-03-02T10:00:00.0010Z",
    "2025-03-02T12:00:00+02:00",
    "2025-03-02T12:00:00.00+02:00",
]


def test_instant_sql_spells_each_instant_as_polars_does() -> None:
    frame = pl.DataFrame({"event_time": SPELLINGS})
    expected = frame.select(instant_text(pl.col("event_time"))).to_series().to_list()
    with duckdb.connect() as con:
        con.register("t", frame)
        got = [r[0] for r in con.execute(f"SELECT {instant_sql('event_time')} FROM t").fetchall()]
    assert got == expected


def test_identical_in_duckdb_means_one_variant_in_polars() -> None:
    """Random groups of copies differing (or not) in a spelling, a sign of zero, a null: DuckDB's
    min(row) = max(row) says what polars' n_unique of the identity struct says."""
    rng = random.Random(3)
    values = {
        "event_time": SPELLINGS[:7],
        "affiliate_creator_id": [None, "cr1", ""],
        "affiliate_rate": [0.0, -0.0, 0.1, None],
        "amount": [1.0, 1.0000000000000002],
        "channel": ["live", "video"],
    }
    base = order("x", T)
    rows = []
    for group in range(400):
        varied = rng.sample(list(values), rng.randrange(0, 3))
        for _ in range(rng.randrange(1, 4)):
            rows.append(base | {"event_id": f"g{group}"} | {k: rng.choice(values[k]) for k in varied})
    frame = pl.DataFrame(rows, schema=stage_module.copy_schema("orders"), strict=False)
    expected = dict(
        frame.group_by("event_id").agg((pl.struct(identity("orders")).n_unique() == 1).alias("same")).iter_rows()
    )
    with duckdb.connect() as con:
        con.register("t", frame)
        sql = identity_sql("orders")
        got = dict(
            con.execute(
                f"SELECT event_id, min({sql}) IS NOT DISTINCT FROM max({sql}) FROM t GROUP BY event_id"
            ).fetchall()
        )
    assert got == expected
    assert 50 < sum(expected.values()) < len(expected)  # both kinds occur
