"""Incremental publish: only changed partition files are replaced, and the result equals a full rebuild."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.lake import DataDir
from pipelines.quality.quarantine import QUARANTINE_SCHEMA
from pipelines.warehouse.publish import QUARANTINE_COUNTS, publish_warehouse
from pipelines.warehouse.snapshot import SNAPSHOTS

D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)
MART = "revenue_by_stream"
COUNTS_SQL = f"SELECT stage, log, reason, arrival_date, rows FROM {QUARANTINE_COUNTS} ORDER BY ALL"


def _mart(data: DataDir, day: dt.date, net: float, events: int) -> None:
    path = data.mart_file(MART, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(
        {
            "event_date": [day],
            "stream": ["advertising"],
            "gross_revenue_usd": [net],
            "platform_fees_usd": [0.0],
            "creator_payouts_usd": [0.0],
            "net_revenue_usd": [net],
            "event_count": [events],
        }
    )
    frame.write_parquet(path)
    stamp = path.stat().st_mtime_ns + events  # a distinct mtime even within one clock tick
    os.utime(path, ns=(stamp, stamp))


def _quarantine(data: DataDir, day: dt.date, reasons: list[str]) -> None:
    path = data.quarantine_file("landing", "impressions", day)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(
        {
            "log": ["impressions"] * len(reasons),
            "event_id": [f"e{i}" for i in range(len(reasons))],
            "arrival_date": [day] * len(reasons),
            "reason": reasons,
            "raw": ["{}"] * len(reasons),
            "event_date": [day] * len(reasons),
            "stage": ["landing"] * len(reasons),
            "source_file": ["a.jsonl"] * len(reasons),
        },
        schema={c: (pl.Date if t == "DATE" else pl.String) for c, t in QUARANTINE_SCHEMA.items()},
    )
    frame.write_parquet(path)


def _read(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    data = DataDir.at(tmp_path)
    _mart(data, D1, 1.0, 10)
    _mart(data, D2, 2.0, 20)
    _quarantine(data, D1, ["malformed", "malformed", "late_arrival"])
    publish_warehouse(data)
    return data


def test_changed_added_and_removed_partitions_are_replaced(data: DataDir) -> None:
    _mart(data, D1, 1.5, 15)  # re-run of D1: deleted and re-inserted after D2's row
    _mart(data, D3, 3.0, 30)  # a new day
    _quarantine(data, D2, ["underage"])
    publish_warehouse(data)
    rows = _read(data.warehouse, f"SELECT event_date, net_revenue_usd, event_count FROM marts.{MART}")
    assert rows == [(D1, 1.5, 15), (D2, 2.0, 20), (D3, 3.0, 30)]  # replaced, never doubled, still in key order

    data.mart_file(MART, D1).unlink()
    publish_warehouse(data)
    rows = _read(data.warehouse, f"SELECT event_date FROM marts.{MART}")
    assert rows == [(D2,), (D3,)]


def test_incremental_equals_full_rebuild(data: DataDir, tmp_path: Path) -> None:
    _mart(data, D2, 7.0, 70)
    _quarantine(data, D1, ["underage"])
    publish_warehouse(data)
    incremental = _read(data.warehouse, f"SELECT * FROM marts.{MART} ORDER BY ALL")
    counts = _read(data.warehouse, COUNTS_SQL)
    publish_warehouse(data, full=True)
    assert _read(data.warehouse, f"SELECT * FROM marts.{MART} ORDER BY ALL") == incremental
    assert counts == [("landing", "impressions", "underage", D1, 1)]
    assert _read(data.warehouse, f"SELECT stage, log, reason, arrival_date, rows FROM {QUARANTINE_COUNTS}") == counts


def test_quarantine_counts_match_the_quarantine_view(data: DataDir) -> None:
    _quarantine(data, D2, ["malformed", "underage", "underage"])
    publish_warehouse(data)
    view = _read(
        data.warehouse,
        "SELECT stage, log, reason, arrival_date, count(*) FROM quality.quarantine GROUP BY ALL ORDER BY ALL",
    )
    counts = _read(data.warehouse, COUNTS_SQL)
    assert counts == view
    assert sum(r[-1] for r in counts) == 6  # 3 on D1, 3 on D2


def test_a_mart_with_new_columns_rebuilds_everything(data: DataDir) -> None:
    path = data.mart_file(MART, D2)
    pl.read_parquet(path).with_columns(pl.lit(1).alias("new_measure")).write_parquet(path)
    pl.read_parquet(data.mart_file(MART, D1)).with_columns(pl.lit(1).alias("new_measure")).write_parquet(
        data.mart_file(MART, D1)
    )
    publish_warehouse(data)
    columns = [r[0] for r in _read(data.warehouse, f"DESCRIBE marts.{MART}")]
    assert columns[-1] == "new_measure"
    assert len(_read(data.warehouse, f"SELECT * FROM marts.{MART}")) == 2


def test_a_mart_no_longer_defined_is_dropped(data: DataDir) -> None:
    with duckdb.connect(str(data.warehouse)) as con:
        con.execute("CREATE TABLE marts.retired AS SELECT 1 AS x")
    publish_warehouse(data)
    tables = {r[0] for r in _read(data.warehouse, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'")}
    assert "retired" not in tables
    assert MART in tables


def test_the_quarantine_is_a_table_the_file_stands_alone(data: DataDir, tmp_path: Path) -> None:
    """Copied away from the lake (the lake then deleted), the warehouse still answers for the contract tables."""
    _quarantine(data, D2, ["underage"])
    publish_warehouse(data)
    copy = tmp_path / "elsewhere" / "warehouse.duckdb"
    copy.parent.mkdir()
    copy.write_bytes(data.warehouse.read_bytes())
    for path in sorted(data.lake.rglob("*.parquet")):
        path.unlink()
    kinds = _read(copy, "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'quality'")
    assert ("quarantine", "BASE TABLE") in kinds
    rows = _read(copy, "SELECT log, event_id, arrival_date, reason, raw FROM quality.quarantine ORDER BY ALL")
    assert rows == [
        ("impressions", "e0", D1, "malformed", "{}"),
        ("impressions", "e0", D2, "underage", "{}"),
        ("impressions", "e1", D1, "malformed", "{}"),
        ("impressions", "e2", D1, "late_arrival", "{}"),
    ]
    assert len(_read(copy, f"SELECT * FROM marts.{MART}")) == 2


def test_a_rerun_partition_replaces_its_quarantine_rows(data: DataDir) -> None:
    _quarantine(data, D1, ["underage"])  # D1 re-landed: 3 rows become 1
    publish_warehouse(data)
    publish_warehouse(data)  # nothing changed: nothing doubled
    rows = _read(data.warehouse, "SELECT arrival_date, reason, count(*) FROM quality.quarantine GROUP BY ALL")
    assert rows == [(D1, "underage", 1)]


def test_a_quarantine_row_outside_its_partition_is_refused(data: DataDir) -> None:
    path = data.quarantine_file("landing", "impressions", D2)
    _quarantine(data, D2, ["underage"])
    pl.read_parquet(path).with_columns(arrival_date=pl.lit(D3)).write_parquet(path)  # landing file of D2, row of D3
    before = data.warehouse.read_bytes()
    with pytest.raises(ValueError, match="outside their file's partition"):
        publish_warehouse(data)
    assert data.warehouse.read_bytes() == before  # the published file is untouched
    assert sorted(p.name for p in data.warehouse.parent.iterdir() if p.name.startswith(".")) == []


def test_the_file_is_in_a_storage_format_duckdb_1x_reads(data: DataDir) -> None:
    version = _read(
        data.warehouse, "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'warehouse'"
    )
    assert version == [("v1.0.0+",)]


def test_a_warehouse_in_the_2_0_format_is_rebuilt_in_the_readable_one(data: DataDir) -> None:
    data.warehouse.unlink()
    with duckdb.connect(str(data.warehouse)) as con:  # as releases before this one wrote it
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.stale AS SELECT 1 AS x")
    publish_warehouse(data)
    version = _read(
        data.warehouse, "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'warehouse'"
    )
    assert version == [("v1.0.0+",)]
    assert len(_read(data.warehouse, f"SELECT * FROM marts.{MART}")) == 2


@pytest.mark.skipif(shutil.which("duckdb", path=str(Path(sys.executable).parent)) is None, reason="no DuckDB CLI")
def test_the_duckdb_1_5_cli_reads_the_warehouse(data: DataDir) -> None:
    """The DuckDB CLI on PyPI (1.5, in the dev dependencies) opens the file read-only, as the README shows."""
    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    out = subprocess.run(
        [cli, "-readonly", "-csv", str(data.warehouse), f"SELECT count(*) FROM marts.{MART}; SELECT version()"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert out[:2] == ["count_star()", "2"]
    assert out[-1].startswith("v1.")


def _published_copy(data: DataDir, target: Path) -> Path:
    """Publish a warehouse whose facts view reads two rows of ``data``'s lake, then copy the data directory."""
    facts = data.facts_file(D1)
    facts.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"event_date": [D1, D1], "stream": ["advertising", "ecommerce"]}).write_parquet(facts)
    publish_warehouse(data)
    shutil.copytree(data.root, target)
    return target


def test_a_moved_data_directory_gets_a_hint_and_revwh_publish_repoints_it(
    data: DataDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main

    moved = _published_copy(data, tmp_path.parent / f"{tmp_path.name}-moved")
    shutil.rmtree(data.lake)  # the old location is gone
    query = ["sql", "SELECT count(*) AS n FROM facts.revenue_events", "--data-dir", str(moved), "--format", "csv"]
    capsys.readouterr()
    assert main(query) == 1
    err = capsys.readouterr().err
    assert f"revwh publish --data-dir {moved}" in err and "another location" in err
    assert main(["publish", "--data-dir", str(moved)]) == 0
    capsys.readouterr()
    assert main(query) == 0
    assert capsys.readouterr().out.split() == ["n", "2"]
    own_file = tmp_path / "nowhere.csv"  # the query's own missing file is not taken for a view's
    assert main(["sql", f"SELECT * FROM read_csv('{own_file}')", "--data-dir", str(moved)]) == 1
    err = capsys.readouterr().err
    assert "No files found" in err and "revwh publish" not in err
    shutil.rmtree(moved)


def test_revwh_publish_without_a_lake_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli import main

    assert main(["publish", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no lake with marts" in capsys.readouterr().err


def test_views_in_a_folder_with_brackets_read_it_and_give_no_moved_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The views' patterns escape the folder's glob characters; a query that finds no files there
    is not told the warehouse was published for another location."""
    from pipelines.cli import main

    data = DataDir.at(tmp_path / "eu [old] data")
    _mart(data, D1, 1.0, 10)
    facts = data.facts_file(D1)
    facts.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"event_date": [D1, D1], "stream": ["advertising", "ecommerce"]}).write_parquet(facts)
    publish_warehouse(data)
    query = ["sql", "SELECT count(*) AS n FROM facts.revenue_events", "--data-dir", str(data.root), "--format", "csv"]
    capsys.readouterr()
    assert main(query) == 0
    assert capsys.readouterr().out.split() == ["n", "2"]
    facts.unlink()  # a later run's file in the lake: the published snapshot still holds the old one
    assert main(query) == 0
    assert capsys.readouterr().out.split() == ["n", "2"]
    shutil.rmtree(data.lake / SNAPSHOTS)  # the lake is where the views say, but their snapshot is gone
    assert main(query) == 1
    err = capsys.readouterr().err
    assert "No files found" in err and "another location" not in err
    assert "snapshot of the lake" in err and "revwh publish" in err
    assert f"revwh publish --data-dir '{data.root}'" in err  # quoted: it can be pasted into a shell
    assert main(["report", "--data-dir", str(data.root)]) == 2  # the report says the same
    err = capsys.readouterr().err
    assert "snapshot of the lake" in err and f"revwh publish --data-dir '{data.root}'" in err


def test_a_damaged_warehouse_is_one_line_that_says_how_to_rebuild_it(
    data: DataDir, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cut-short warehouse.duckdb failed every later publish with DuckDB's traceback and left a
    full-size temporary copy behind each time."""
    from pipelines.cli import main

    data.warehouse.write_bytes(data.warehouse.read_bytes()[:100_000])
    assert main(["publish", "--data-dir", str(data.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be read" in err
    assert f"revwh publish --data-dir {data.root} --full" in err
    assert sorted(p.name for p in data.root.iterdir() if "warehouse" in p.name) == ["warehouse.duckdb"]
    assert main(["publish", "--data-dir", str(data.root), "--full"]) == 0
    rows = _read(data.warehouse, f"SELECT event_date, net_revenue_usd, event_count FROM marts.{MART}")
    assert rows == [(D1, 1.0, 10), (D2, 2.0, 20)]


def test_revwh_publish_takes_a_file_url_and_refuses_a_remote_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`file:///srv/d` is the folder /srv/d, not a relative folder "file:/srv/d"; another URL is one line."""
    from pipelines.cli import main

    folder = tmp_path / "my data"
    assert main(["publish", "--data-dir", folder.as_uri()]) == 2
    assert f"no lake with marts in {folder}:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["publish", "--data-dir", "s3://bucket/data"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'s3://bucket/data' is not local: this command needs a local data directory" in err
    assert "Traceback" not in err


def test_a_copied_data_directory_warns_that_its_views_read_the_original(
    data: DataDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cp -r` keeps the original lake, so the copy's views answer from it without an error: a warning says so."""
    from pipelines.cli import main

    copy = _published_copy(data, tmp_path.parent / f"{tmp_path.name}-copy")
    query = ["sql", "SELECT count(*) AS n FROM facts.revenue_events", "--data-dir", str(copy), "--format", "csv"]
    capsys.readouterr()
    assert main(query) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["n", "2"]  # still answers, from the original's lake
    assert err.startswith("revwh sql: warning: the warehouse's views over facts and staged read another")
    assert f"not {(copy / 'lake').resolve()}" in err and f"revwh publish --data-dir {copy}" in err

    assert main(["sql", "SELECT 1", "--data-dir", str(data.root)]) == 0  # the original: no warning
    assert capsys.readouterr().err == ""
    assert main(["publish", "--data-dir", str(copy)]) == 0
    capsys.readouterr()
    assert main(query) == 0
    assert capsys.readouterr().err == ""
    shutil.rmtree(copy)


def test_deleting_quarantine_partitions_removes_exactly_the_rows_whose_key_they_name() -> None:
    """The delete says each stage's date range and (log, day) pairs, so DuckDB can skip the row groups of
    other dates; it removes the same rows as comparing every row's key (``_QUARANTINE_ROW_KEY``), the
    oracle here: landing rows by arrival day, staged rows by event date, other logs and days kept, keys
    whose day is no date (a stray file's) removing nothing."""
    from pipelines.warehouse import publish

    columns = ", ".join(f"{c} {t}" for c, t in QUARANTINE_SCHEMA.items())
    rows = [
        # log, event_id, arrival_date, reason, raw, event_date, stage, source_file
        ("gifts", "a", "2025-03-02", "malformed", "{", None, "landing", "f"),
        ("gifts", "b", "2025-03-02", "late_arrival", "{}", "2025-02-20", "landing", "f"),
        ("gifts", "c", "2025-03-03", "malformed", "{", None, "landing", "f"),
        ("orders", "d", "2025-03-02", "malformed", "{", None, "landing", "f"),
        ("gifts", "e", "2025-03-04", "conflicting_duplicate", "{}", "2025-03-02", "staged", "f"),
        ("gifts", "f", "2025-03-02", "conflicting_duplicate", "{}", "2025-02-28", "staged", "f"),
        ("orders", "g", "2025-03-02", "unknown_currency", "{}", "2025-03-02", "staged", "f"),
        ("gifts", "h", "2025-03-05", "unknown_currency", "{}", "2025-03-05", "staged", "f"),
    ]
    keys = ["landing/gifts/2025-03-02", "staged/gifts/2025-03-02", "staged/gifts/2025-03-05"]
    keys += ["landing/gifts/2025-02-30", "landing/gifts/notes"]  # no date: no row has such a key
    left = {}
    for how in ("by_key", "by_date_range"):
        with duckdb.connect() as con:
            con.execute("CREATE SCHEMA quality")
            con.execute(f"CREATE TABLE {publish.QUARANTINE} ({columns})")
            con.executemany(f"INSERT INTO {publish.QUARANTINE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if how == "by_key":
                values = ", ".join(f"('{k}')" for k in keys)
                key = publish._QUARANTINE_ROW_KEY
                con.execute(f"DELETE FROM {publish.QUARANTINE} WHERE {key} IN (VALUES {values})")
            else:
                publish._delete_quarantine_rows(con, keys)
            left[how] = sorted(r[0] for r in con.execute(f"SELECT event_id FROM {publish.QUARANTINE}").fetchall())
    assert left["by_date_range"] == left["by_key"] == ["c", "d", "f", "g"]
