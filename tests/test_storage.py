"""Data directories given as URLs (pipelines.storage): a memory:// run publishes the same marts as a local one.

fsspec's memory:// file system stands in for object storage: it lives in this
process, so the run goes through the CLI in-process (``pipelines.cli.main``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from pipelines.cli import main
from pipelines.storage import Location, StorageError
from pipelines.warehouse.snapshot import SNAPSHOTS
from tests.builders import coin_purchase, fund_payout, gift, impression, order, write_raw, write_reference

D1, D2, D3 = "2025-03-03", "2025-03-04", "2025-03-05"
START, END = "2025-03-03", "2025-03-04"

QUERIES = {
    "revenue_by_stream": "SELECT * FROM marts.revenue_by_stream ORDER BY ALL",
    "revenue_by_region": "SELECT * FROM marts.revenue_by_region ORDER BY ALL",
    "quarantine": "SELECT log, reason, count(*) AS n FROM quality.quarantine GROUP BY ALL ORDER BY ALL",
}


def t(day: str, clock: str = "10:00:00") -> str:
    return f"{day}T{clock}Z"


def build_small(root: Path) -> None:
    """Two event dates with some of everything: clean revenue, a late copy, a duplicate, a malformed line."""
    write_reference(root, dt.date(2025, 2, 20), dt.date(2025, 3, 20))
    write_raw(
        root,
        "impressions",
        D1,
        [
            impression("i1", t(D1), price=5),
            impression("i2", t(D1), country="DE", pricing_model="cpc", price=0.5, currency="EUR", clicked=True),
            impression("i2", t(D1), country="DE", pricing_model="cpc", price=0.5, currency="EUR", clicked=True),
            "{not json",
        ],
    )
    write_raw(root, "impressions", D2, [impression("i3", t(D2), country="JP", price=700, currency="JPY")])
    write_raw(root, "coin_purchases", D1, [coin_purchase("c1", t(D1)), coin_purchase("c2", t(D1), user_age=15)])
    write_raw(root, "gifts", D2, [gift("g1", t(D2), coins=100, gift_type="lion")], "gifts.jsonl.gz")
    write_raw(root, "orders", D3, [order("o1", t(D2), amount=100), order("o2", t(D3), category="toys")])
    write_raw(root, "fund_payouts", D3, [fund_payout("f1", t(D1), country="BR", amount=10, currency="BRL")])


@pytest.fixture
def remote() -> Iterator[str]:
    """A fresh memory:// prefix, removed afterwards (memory:// is global to the process). Its name holds
    a quote, a blank and brackets, which fsspec's rm() and find() would take for a glob."""
    fs = fsspec.filesystem("memory")
    root = f"/revwh-test-{uuid.uuid4().hex[:8]}/o'brien's [eu] warehouse"
    yield f"memory://{root}"
    if fs.exists(root.rsplit("/", 1)[0]):
        fs.rm(root.rsplit("/", 1)[0], recursive=True)


@pytest.fixture(autouse=True)
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("REVWH_CACHE_DIR", str(root))
    return root


def upload(local: Path, url: str) -> None:
    fs, root = fsspec.core.url_to_fs(url)
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.pipe_file(f"{root}/{file.relative_to(local).as_posix()}", file.read_bytes())


def marts(data_dir: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The published marts as CSV text, read through `revwh sql` (which pulls a URL's warehouse first)."""
    out = {}
    for name, sql in QUERIES.items():
        capsys.readouterr()
        assert main(["sql", sql, "--data-dir", data_dir, "--format", "csv"]) == 0
        out[name] = capsys.readouterr().out
    return out


def test_plain_path_and_file_url_are_local(tmp_path: Path) -> None:
    assert Location.parse(tmp_path).local == tmp_path
    assert not Location.parse(str(tmp_path)).is_remote
    loc = Location.parse(f"file://{tmp_path}")
    assert not loc.is_remote and loc.local == tmp_path


def test_cache_is_per_url(remote: str, cache_root: Path) -> None:
    a, b = Location.parse(remote), Location.parse(remote + "-other")
    assert a.is_remote and a.local.parent == cache_root
    assert a.local != b.local
    assert Location.parse(remote + "/").local == a.local


def test_unknown_scheme_is_one_line_error() -> None:
    with pytest.raises(StorageError, match="cannot open"):
        Location.parse("nosuchscheme://bucket/x")


def test_pull_copies_only_new_or_changed_files(tmp_path: Path, remote: str) -> None:
    src = tmp_path / "src"
    build_small(src)
    upload(src, remote)
    loc = Location.parse(remote)
    n_files = sum(1 for p in src.rglob("*") if p.is_file())

    first = loc.pull()
    assert (first.copied, first.unchanged, first.deleted) == (n_files, 0, 0)
    assert (loc.local / "raw" / "gifts" / f"dt={D2}" / "gifts.jsonl.gz").read_bytes() == (
        src / "raw" / "gifts" / f"dt={D2}" / "gifts.jsonl.gz"
    ).read_bytes()

    again = loc.pull()
    assert (again.copied, again.unchanged, again.deleted) == (0, n_files, 0)

    fs, root = fsspec.core.url_to_fs(remote)
    fs.pipe_file(f"{root}/raw/orders/dt={D3}/part-0.jsonl", b"{}\n")  # changed
    fs.rm_file(f"{root}/raw/fund_payouts/dt={D3}/part-0.jsonl")  # removed
    third = loc.pull()
    assert (third.copied, third.unchanged, third.deleted) == (1, n_files - 2, 1)
    assert (loc.local / "raw" / "orders" / f"dt={D3}" / "part-0.jsonl").read_text() == "{}\n"
    assert not (loc.local / "raw" / "fund_payouts" / f"dt={D3}").exists()


def test_missing_url_and_missing_warehouse_fail_cleanly(remote: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--data-dir", remote, "--start", START, "--end", END]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sql", "SELECT 1", "--data-dir", remote]) == 2
    assert "no warehouse.duckdb" in capsys.readouterr().err


def test_memory_url_run_publishes_the_same_marts_as_a_local_run(
    tmp_path: Path, remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "local"
    build_small(local)
    upload(local, remote)  # before the local run: the URL holds only reference/ and raw/

    assert main(["run", "--data-dir", str(local), "--start", START, "--end", END, "--quiet"]) == 0
    assert main(["run", "--data-dir", remote, "--start", START, "--end", END, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "pulled memory://" in out
    assert "pushed" in out

    fs, root = fsspec.core.url_to_fs(remote)
    assert fs.isfile(f"{root}/warehouse.duckdb")
    assert fs.find(f"{root}/lake/marts/revenue_by_stream")  # the lake went back too
    # no scratch or temp files, and not the published snapshot's hard links (a second copy of facts and staged)
    assert not [p for p in fs.find(f"{root}/lake") if "/_tmp/" in p or "/." in p or f"/{SNAPSHOTS}/" in p]

    expected = marts(str(local), capsys)
    assert "advertising" in expected["revenue_by_stream"]
    assert "malformed" in expected["quarantine"] and "underage" in expected["quarantine"]
    assert marts(remote, capsys) == expected

    # A second run pulls nothing new (the cache already equals the URL) and still agrees.
    assert main(["run", "--data-dir", remote, "--start", START, "--end", END, "--quiet"]) == 0
    assert ": 0 files copied" in capsys.readouterr().out.splitlines()[1]
    assert marts(remote, capsys) == expected


def test_fresh_cache_sees_earlier_runs(
    tmp_path: Path, remote: str, cache_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run from another machine (here: another cache) on a later range keeps the earlier range's marts."""
    src = tmp_path / "src"
    build_small(src)
    upload(src, remote)
    assert main(["run", "--data-dir", remote, "--start", START, "--end", START, "--quiet"]) == 0
    first = marts(remote, capsys)["revenue_by_stream"]
    assert D1 in first and D2 not in first

    monkeypatch.setenv("REVWH_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    assert main(["run", "--data-dir", remote, "--start", END, "--end", END, "--quiet"]) == 0
    monkeypatch.setenv("REVWH_CACHE_DIR", str(cache_root))
    both = marts(remote, capsys)["revenue_by_stream"]
    assert D1 in both and D2 in both


def test_push_deletes_the_remote_files_the_run_replaced(tmp_path: Path, remote: str) -> None:
    """A lake file gone from the cache is deleted from the URL, by its exact name (brackets and all)."""
    src = tmp_path / "src"
    build_small(src)
    upload(src, remote)
    loc = Location.parse(remote)
    loc.pull()
    kept, replaced = (
        loc.local / "lake" / "marts" / "m" / "kept.parquet",
        loc.local / "lake" / "marts" / "m" / "x[1].parquet",
    )
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"k")
    replaced.write_bytes(b"r")
    assert loc.push().copied == 2

    replaced.unlink()
    stats = loc.push()
    assert (stats.copied, stats.deleted) == (0, 1)
    fs, root = fsspec.core.url_to_fs(remote)
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(f"{root}/lake")) == ["kept.parquet"]


def test_sql_on_a_fresh_cache_links_the_published_snapshot_again(
    tmp_path: Path, remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The views over facts read a folder of hard links that object storage does not hold: `revwh sql`
    makes it again from the pulled lake."""
    src = tmp_path / "src"
    build_small(src)
    upload(src, remote)
    assert main(["run", "--data-dir", remote, "--start", START, "--end", END, "--quiet"]) == 0
    query = ["sql", "SELECT count(*) AS n FROM facts.revenue_events", "--data-dir", remote, "--format", "csv"]
    capsys.readouterr()
    assert main(query) == 0
    counted = capsys.readouterr().out
    assert counted.split()[0] == "n" and int(counted.split()[1]) > 0

    snapshots = Location.parse(remote).local / "lake" / SNAPSHOTS
    shutil.rmtree(snapshots)  # as on a machine whose cache was pulled, never published
    assert main(query) == 0
    assert capsys.readouterr().out == counted
    assert [p.name for p in snapshots.iterdir()]
