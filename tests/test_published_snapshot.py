"""The views over facts and staged read the files as they were published, not a later unpublished run's.

Before, they read the lake's live files: after a run that failed a blocking check, `facts.revenue_events`
showed that run's events beside the marts of the last good run."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.errors import CliError
from pipelines.lake import DataDir, temp_sibling
from pipelines.warehouse import snapshot as snapshot_module
from pipelines.warehouse.publish import PublishScope, publish_warehouse
from pipelines.warehouse.snapshot import SNAPSHOT_TABLE, SNAPSHOTS, restore_snapshot
from tests.test_publish import D1, D2, D3, MART, _mart, _quarantine, _read

FACTS_SQL = "SELECT event_date, sum(net_revenue_usd) FROM facts.revenue_events GROUP BY ALL ORDER BY ALL"
STAGED_SQL = "SELECT event_date, count(*) FROM staged.impressions GROUP BY ALL ORDER BY ALL"


def _write(path: Path, frame: pl.DataFrame) -> None:
    """As the pipeline writes a partition: beside it, then renamed into place (a new inode)."""
    tmp = temp_sibling(path)
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def _facts(data: DataDir, day: dt.date, net: float) -> None:
    _write(data.facts_file(day), pl.DataFrame({"event_date": [day], "net_revenue_usd": [net]}))


def _staged(data: DataDir, day: dt.date, events: int) -> None:
    _write(data.staged_file("impressions", day), pl.DataFrame({"event_date": [day] * events}))


def _folders(data: DataDir) -> list[Path]:
    return sorted(p for p in (data.lake / SNAPSHOTS).iterdir() if not p.name.startswith("."))


def _recorded(data: DataDir) -> Path:
    return Path(_read(data.warehouse, f"SELECT folder FROM {SNAPSHOT_TABLE}")[0][0])


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    """D1 and D2 published, each with a mart, facts and staged impressions."""
    data = DataDir.at(tmp_path)
    for day, net in ((D1, 1.0), (D2, 2.0)):
        _mart(data, day, net, 1)
        _facts(data, day, net)
        _staged(data, day, 1)
    publish_warehouse(data)
    return data


def test_a_later_runs_files_stay_unpublished_until_a_run_of_their_date_passes(data: DataDir) -> None:
    _facts(data, D1, 99.0)  # a run of D1 that then failed a blocking check
    _staged(data, D1, 5)
    _mart(data, D1, 99.0, 5)
    _mart(data, D3, 3.0, 1)  # a run of D3 that passed
    _facts(data, D3, 3.0)
    _staged(data, D3, 1)

    publish_warehouse(data, scope=PublishScope.of_run([D3]))
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 2.0), (D3, 3.0)]
    assert _read(data.warehouse, STAGED_SQL) == [(D1, 1), (D2, 1), (D3, 1)]
    marts = "SELECT event_date, net_revenue_usd FROM marts.revenue_by_stream ORDER BY ALL"
    assert _read(data.warehouse, marts) == _read(data.warehouse, FACTS_SQL)  # the marts are sums of the facts

    publish_warehouse(data, scope=PublishScope.of_run([D1]))  # a run of D1 passed its checks
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 99.0), (D2, 2.0), (D3, 3.0)]
    assert _read(data.warehouse, STAGED_SQL) == [(D1, 5), (D2, 1), (D3, 1)]


def test_a_date_removed_outside_the_scope_stays_published_and_a_never_published_one_stays_out(data: DataDir) -> None:
    data.facts_file(D2).unlink()
    _facts(data, D3, 3.0)  # written, never published: no mart of D3 either
    _mart(data, D1, 1.0, 1)
    publish_warehouse(data, scope=PublishScope.of_run([D1]))
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 2.0)]


def test_revwh_publish_takes_the_lake_as_it_is_and_says_which_files_no_run_published(data: DataDir) -> None:
    _facts(data, D1, 99.0)  # a run of D1 that then failed a blocking check
    notes: list[str] = []
    publish_warehouse(data, on_note=notes.append)  # no scope, as `revwh publish` does
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 99.0), (D2, 2.0)]
    assert notes == [
        f"1 lake partition file(s) of {D1}..{D1} changed since the warehouse was last published "
        f"(facts/revenue_events/event_date={D1}.parquet): a run that failed a blocking check or was killed left "
        f"them, and this publish takes them unchecked; `revwh run --data-dir {data.root} --start {D1} --end {D1}` "
        "publishes them checked"
    ]
    publish_warehouse(data, full=True, on_note=notes.append)  # now published: nothing more to say
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 99.0), (D2, 2.0)]
    assert len(notes) == 1


def test_revwh_publish_prints_the_warning_and_a_warehouse_deleted_since_is_compared_with_the_last_snapshot(
    data: DataDir, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main

    for day in (D1, D2):  # a range run that failed a check after writing its marts (beside, then renamed)
        _write(data.mart_file(MART, day), pl.read_parquet(data.mart_file(MART, day)).with_columns(event_count=7))
    data.warehouse.unlink()
    assert main(["publish", "--data-dir", str(data.root)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"revwh publish: warning: 2 lake partition file(s) of {D1}..{D2} changed since the ")
    assert f"marts/{MART}/event_date={D1}.parquet, marts/{MART}/event_date={D2}.parquet" in err
    assert f"`revwh run --data-dir {data.root} --start {D1} --end {D2}` publishes them checked" in err
    assert main(["publish", "--data-dir", str(data.root)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("keeps_times", [True, False])
def test_a_copied_data_directory_is_not_taken_for_unchecked_files(
    data: DataDir, tmp_path: Path, keeps_times: bool
) -> None:
    """A copy has no hard links to its snapshot: files that kept their size and time are the published ones,
    and a copy that kept neither (`cp -r`) tells nothing, rather than calling every file unchecked."""
    copy = tmp_path.parent / f"{tmp_path.name}-copy"
    shutil.copytree(data.root, copy, copy_function=shutil.copy2 if keeps_times else shutil.copyfile)
    copied = DataDir.at(copy)
    notes: list[str] = []
    publish_warehouse(copied, on_note=notes.append)
    assert notes == []
    if keeps_times:
        _facts(copied, D2, 5.0)
        publish_warehouse(copied, on_note=notes.append)
        assert len(notes) == 1 and f"(facts/revenue_events/event_date={D2}.parquet)" in notes[0]
    shutil.rmtree(copy)


def test_the_snapshot_is_hard_links_and_only_two_are_kept(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVWH_SNAPSHOT_KEEP_MINUTES", "0")  # no grace: the current folder and the one before
    first = _recorded(data)
    linked = first / "facts" / "revenue_events" / data.facts_file(D1).name
    assert linked.stat().st_ino == data.facts_file(D1).stat().st_ino  # a link: no second copy of the bytes
    assert sorted(p.relative_to(first).as_posix() for p in first.rglob("*.parquet")) == [
        "facts/revenue_events/event_date=2025-03-01.parquet",
        "facts/revenue_events/event_date=2025-03-02.parquet",
        "marts/revenue_by_stream/event_date=2025-03-01.parquet",
        "marts/revenue_by_stream/event_date=2025-03-02.parquet",
        "staged/impressions/event_date=2025-03-01.parquet",
        "staged/impressions/event_date=2025-03-02.parquet",
    ]

    publish_warehouse(data, scope=PublishScope.of_run([D1]))
    second = _recorded(data)
    assert _folders(data) == [first, second]  # a reader that opened the warehouse before still reads `first`
    publish_warehouse(data, scope=PublishScope.of_run([D2]))
    assert _folders(data) == [second, _recorded(data)]


def test_without_hard_links_the_views_read_the_lake(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(snapshot_module.os, "link", no_links)
    _facts(data, D1, 99.0)
    publish_warehouse(data, scope=PublishScope.of_run([D2]))
    notes: list[str] = []
    publish_warehouse(data, scope=PublishScope.of_run([D2]), on_note=notes.append)
    assert notes == []  # nothing was recorded to lose: no warning on every run of such a file system
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 99.0), (D2, 2.0)]  # the live files, as before
    assert _read(data.warehouse, f"SELECT count(*) FROM {SNAPSHOT_TABLE}") == [(0,)]
    assert not [p for p in (data.lake / SNAPSHOTS).iterdir() if p.name.startswith(".")]  # no half-made folder


def test_a_failed_publish_leaves_no_snapshot(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _folders(data)

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("pipelines.warehouse.publish.apply_comments", broken)
    _mart(data, D1, 5.0, 1)
    with pytest.raises(RuntimeError):
        publish_warehouse(data, scope=PublishScope.of_run([D1]))
    assert _folders(data) == before
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 2.0)]


def test_a_pulled_cache_links_the_snapshot_again(data: DataDir) -> None:
    """Object storage holds no links (the sync skips them): after a pull, the folder is made from the lake."""
    folder = _recorded(data)
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    folder.rmdir()
    assert restore_snapshot(data) == folder
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 2.0)]
    assert restore_snapshot(data) is None  # already there


def test_another_link_error_fails_the_publish_and_leaves_the_warehouse(
    data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot_module.os, "link", disk_full)
    before = _folders(data)
    _mart(data, D1, 5.0, 1)
    with pytest.raises(OSError, match="No space left"):
        publish_warehouse(data, scope=PublishScope.of_run([D1]))
    assert _folders(data) == before
    assert not [p for p in (data.lake / SNAPSHOTS).iterdir() if p.name.startswith(".")]
    assert _read(data.warehouse, "SELECT net_revenue_usd FROM marts.revenue_by_stream ORDER BY ALL") == [(1.0,), (2.0,)]


def test_a_replaced_snapshot_is_kept_for_an_hour(data: DataDir) -> None:
    """A backfill publishes once per run: a reader that opened the warehouse a few runs ago still reads."""
    first = _recorded(data)
    for day in (D1, D2, D1):
        publish_warehouse(data, scope=PublishScope.of_run([day]))
    folders = _folders(data)
    assert len(folders) == 4 and folders[0] == first and folders[-1] == _recorded(data)

    # An hour after the second folder replaced the first (but not yet after the third replaced the
    # second), only the first may go.
    second, third = (int(f.name.split("-")[0]) / 1e9 for f in folders[1:3])
    snapshot_module.prune_snapshots(data, keep=[folders[-1]], now=(second + third) / 2 + 3600)
    assert _folders(data) == folders[1:]
    # Long after: the current folder and (passed by the publish) the one before stay.
    snapshot_module.prune_snapshots(data, keep=folders[-2:], now=third + 10 * 86400)
    assert _folders(data) == folders[-2:]


def test_a_reader_holding_the_warehouse_open_across_publishes_still_reads_its_facts(data: DataDir) -> None:
    """A notebook's connection keeps the warehouse file it opened (each publish renames a new one into
    place), so the folder its views read must outlive the next publishes."""
    with duckdb.connect(str(data.warehouse), read_only=True) as notebook:
        for day, net in ((D1, 10.0), (D2, 20.0), (D1, 30.0)):
            _facts(data, day, net)
            publish_warehouse(data, scope=PublishScope.of_run([day]))
        assert notebook.execute(FACTS_SQL).fetchall() == [(D1, 1.0), (D2, 2.0)]  # what it opened
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 30.0), (D2, 20.0)]


@pytest.mark.parametrize("value", ["an hour", "-5", "nan", "inf"])
def test_a_bad_keep_setting_fails_before_the_publish_changes_anything(
    data: DataDir, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REVWH_SNAPSHOT_KEEP_MINUTES", value)
    before = _folders(data)
    _facts(data, D1, 99.0)
    with pytest.raises(CliError, match="REVWH_SNAPSHOT_KEEP_MINUTES must be a number of minutes"):
        publish_warehouse(data, scope=PublishScope.of_run([D1]))
    assert _folders(data) == before
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 2.0)]


MARTS_SQL = "SELECT event_date, net_revenue_usd FROM marts.revenue_by_stream ORDER BY ALL"


def _a_run_fails_for(data: DataDir, day: dt.date) -> None:
    """A run of ``day`` that rewrote every layer in the lake and then failed a blocking check."""
    _facts(data, day, 99.0)
    _staged(data, day, 5)
    data.mart_file(MART, day).unlink(missing_ok=True)  # as the pipeline replaces it: a new file (inode)
    _mart(data, day, 99.0, 5)


def test_a_full_publish_keeps_the_snapshot_a_reader_holds(data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVWH_SNAPSHOT_KEEP_MINUTES", "0")  # only the rule "the one before is kept" applies
    with duckdb.connect(str(data.warehouse), read_only=True) as notebook:
        publish_warehouse(data, full=True)
        assert notebook.execute(FACTS_SQL).fetchall() == [(D1, 1.0), (D2, 2.0)]


def test_the_first_publish_of_a_data_directory_shows_only_its_run(tmp_path: Path) -> None:
    """Nothing was published yet: a killed first run's files (D1) stay out of a later run's publish (D2)."""
    data = DataDir.at(tmp_path)
    _a_run_fails_for(data, D1)
    _quarantine(data, D1, ["malformed"])  # arrival day D1: not one of D2's (D2..D5)
    _mart(data, D2, 2.0, 1)
    _facts(data, D2, 2.0)
    _staged(data, D2, 1)
    publish_warehouse(data, scope=PublishScope.of_run([D2]))
    assert _read(data.warehouse, FACTS_SQL) == [(D2, 2.0)]
    assert _read(data.warehouse, STAGED_SQL) == [(D2, 1)]
    assert _read(data.warehouse, MARTS_SQL) == [(D2, 2.0)]
    assert _read(data.warehouse, "SELECT count(*) FROM quality.quarantine") == [(0,)]

    publish_warehouse(data)  # `revwh publish` takes the lake as it is
    assert _read(data.warehouse, MARTS_SQL) == [(D1, 99.0), (D2, 2.0)]


def test_a_rebuild_in_a_run_shows_the_other_dates_as_published(data: DataDir) -> None:
    """A mart added to sql/marts (here: missing from the warehouse) makes the run rebuild every table."""
    _a_run_fails_for(data, D1)
    with duckdb.connect(str(data.warehouse)) as con:
        con.execute("DROP TABLE marts.revenue_by_stream")
    _mart(data, D2, 20.0, 2)
    _facts(data, D2, 20.0)
    publish_warehouse(data, scope=PublishScope.of_run([D2]))
    assert _read(data.warehouse, MARTS_SQL) == [(D1, 1.0), (D2, 20.0)]
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 20.0)]
    assert _read(data.warehouse, STAGED_SQL) == [(D1, 1), (D2, 1)]


def test_a_deleted_warehouse_is_rebuilt_from_the_last_snapshot(data: DataDir) -> None:
    _a_run_fails_for(data, D1)
    data.warehouse.unlink()
    publish_warehouse(data, scope=PublishScope.of_run([D2]))
    assert _read(data.warehouse, MARTS_SQL) == [(D1, 1.0), (D2, 2.0)]
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 2.0)]


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_data_directory_keeps_its_published_dates(data: DataDir, tmp_path: Path, how: str) -> None:
    """The warehouse names its snapshot by the old path; the new directory has the same folder."""
    _a_run_fails_for(data, D1)
    target = tmp_path.parent / f"{tmp_path.name}-{how}"
    if how == "move":
        os.rename(data.root, target)
    else:
        shutil.copytree(data.root, target, symlinks=True)
    moved = DataDir.at(target)
    publish_warehouse(moved, scope=PublishScope.of_run([D2]))
    assert _read(moved.warehouse, MARTS_SQL) == [(D1, 1.0), (D2, 2.0)]
    assert _read(moved.warehouse, FACTS_SQL) == [(D1, 1.0), (D2, 2.0)]
    assert _recorded(moved).parent == moved.lake / SNAPSHOTS


def test_the_first_publish_after_a_snapshot_of_facts_and_staged_only_takes_the_lake(data: DataDir) -> None:
    """A snapshot made by the release before links no marts, so it cannot stand for them: the first run
    after the upgrade publishes the lake as it is (as that release did), and the next ones keep it."""
    (_recorded(data) / snapshot_module.ALL_LAYERS_MARKER).unlink()
    _a_run_fails_for(data, D1)
    publish_warehouse(data, scope=PublishScope.of_run([D2]))
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 99.0), (D2, 2.0)]
    assert (_recorded(data) / snapshot_module.ALL_LAYERS_MARKER).is_file()


def test_without_its_snapshot_folder_a_run_takes_the_lake_and_says_so(data: DataDir) -> None:
    """A deleted lake/_published (or a warehouse restored from a backup older than its snapshots): the
    published facts of other dates are gone, so the lake's are taken, with a warning in the run's log."""
    shutil.rmtree(data.lake / SNAPSHOTS)
    _a_run_fails_for(data, D1)
    notes: list[str] = []
    publish_warehouse(data, scope=PublishScope.of_run([D2]), on_note=notes.append)
    assert len(notes) == 1 and "snapshot" in notes[0] and "is not in" in notes[0] and "re-run such dates" in notes[0]
    assert _read(data.warehouse, FACTS_SQL) == [(D1, 99.0), (D2, 2.0)]
    notes.clear()
    publish_warehouse(data, scope=PublishScope.of_run([D2]), on_note=notes.append)  # it has one again
    assert notes == []


@pytest.mark.parametrize("layer", ["staged", "marts"])
def test_revwh_publish_of_a_damaged_lake_file_is_one_line_and_changes_nothing(
    data: DataDir, layer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main

    damaged = data.staged_file("impressions", D1) if layer == "staged" else data.mart_file(MART, D1)
    tmp = temp_sibling(damaged)
    tmp.write_bytes(b"PAR1 cut")  # a disk fault or a copy cut short, written as a new file
    os.replace(tmp, damaged)
    before = data.warehouse.read_bytes()
    capsys.readouterr()
    assert main(["publish", "--data-dir", str(data.root), "--full"]) == 2
    warning, error = capsys.readouterr().err.splitlines()  # the changed file is named before the attempt
    assert warning.startswith("revwh publish: warning: 1 lake partition file(s) of 2025-03-01..2025-03-01 changed")
    assert error.startswith(f"revwh publish: error: cannot publish {data.warehouse}: a lake file cannot be read (")
    assert damaged.name in error and error.endswith(
        "Re-run the dates of the file it names (`revwh run`), which writes it again."
    )
    assert data.warehouse.read_bytes() == before


def test_a_data_directory_that_cannot_be_written_is_one_line(
    data: DataDir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Root ignores permissions here, so the refusal a read-only directory gives is simulated where it happens."""
    from pipelines.cli import main
    from pipelines.warehouse import publish

    def refuse(source: Path, target: Path) -> None:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(publish, "clone_file", refuse)
    with pytest.raises(CliError, match=r"cannot write the new warehouse beside .*warehouse\.duckdb: Permission denied"):
        publish_warehouse(data)
    assert main(["publish", "--data-dir", str(data.root)]) == 2
    assert capsys.readouterr().err.startswith("revwh publish: error: cannot write the new warehouse beside ")

    def unreadable(self: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_dir", unreadable)  # the lake itself cannot be looked at
    assert main(["publish", "--data-dir", str(data.root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("revwh publish: error: Permission denied: ") and err.count("\n") == 1
