"""Entries under raw/ that landing skips are named, never skipped without a word (SPEC §1's layout)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.lake import DataDir
from pipelines.landing.land import raw_files
from pipelines.landing.unread_raw import arrival_folder_day, unknown_log_folders, unread_log_entries, unread_raw_notes
from tests.builders import impression, write_raw, write_reference
from tests.cli_helpers import run_cli

DAY = dt.date(2025, 3, 1)


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("dt=2025-03-01", DAY),
        ("dt=2025-3-01", None),
        ("dt=20250301", None),  # Python's fromisoformat takes it; landing does not
        ("2025-03-01", None),
        ("dt=2025-02-30", None),
        ("date=2025-03-01", None),
        ("dt=2025-03-01 ", None),
    ],
)
def test_only_the_canonical_arrival_folder_name_is_a_day(name: str, day: dt.date | None) -> None:
    assert arrival_folder_day(name) == day


def test_a_clean_layout_has_no_notes(tmp_path: Path) -> None:
    write_raw(tmp_path, "impressions", "2025-03-01", [impression("e1", "2025-03-01T00:00:00Z")])
    write_raw(tmp_path, "orders", "2025-03-01", [], name="part-1.jsonl.gz")
    (tmp_path / "raw" / "gifts" / "dt=2025-03-02").mkdir(parents=True)  # an empty folder is an empty partition
    assert unread_raw_notes(DataDir.at(tmp_path), [DAY, DAY + dt.timedelta(days=1)]) == []
    assert unread_raw_notes(DataDir.at(tmp_path / "nothing-here"), [DAY]) == []


def test_a_misspelt_log_folder_is_named(tmp_path: Path) -> None:
    _touch(tmp_path / "raw" / "impresions" / "dt=2025-03-01" / "part-0.jsonl")
    _touch(tmp_path / "raw" / "README.txt")
    _touch(tmp_path / "raw" / ".DS_Store")
    assert unknown_log_folders(DataDir.at(tmp_path)) == [
        "raw/ holds README.txt, impresions/, not one of the logs "
        "(impressions, coin_purchases, gifts, orders, fund_payouts): nothing in it is read"
    ]


def test_misnamed_and_early_arrival_folders_are_named(tmp_path: Path) -> None:
    log_dir = tmp_path / "raw" / "orders"
    for name in ("dt=2025-3-01", "dt=20250301", "2025-03-02", "dt=2024-12-31"):
        _touch(log_dir / name / "part-0.jsonl")
    _touch(log_dir / "stray.jsonl")  # a file beside the folders
    _touch(log_dir / "dt=2025-03-01" / "part-0.jsonl")
    notes = unread_log_entries(DataDir.at(tmp_path), "orders")
    assert notes == [
        "raw/orders/ holds 2025-03-02/, dt=2025-3-01/, dt=20250301/ and 1 more, not a folder named "
        "dt=YYYY-MM-DD: nothing in it is read",
        "raw/orders/ holds dt=2024-12-31/, before the first daily partition 2025-01-01: not read",
    ]


def test_files_of_an_arrival_day_that_are_not_jsonl_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "raw" / "gifts" / "dt=2025-03-01"
    for name in ("part-0.jsonl", "part-1.jsonl.gz", "part-2.json", "part-3.ndjson", ".part-4.jsonl.tmp"):
        _touch(folder / name)
    (folder / "retry").mkdir()
    _touch(tmp_path / "raw" / "gifts" / "dt=2025-03-05" / "part-0.json")  # not one of the days asked about
    notes = unread_log_entries(DataDir.at(tmp_path), "gifts", [DAY])
    assert notes == [
        "raw/gifts/dt=2025-03-01/ holds part-2.json, part-3.ndjson, retry/, not read: only files named "
        "*.jsonl or *.jsonl.gz are"
    ]


def test_entries_named_like_logs_that_are_not_files_are_named_apart(tmp_path: Path) -> None:
    """A folder, a link to nothing and a link in a loop named *.jsonl: not read, and said why (a link in a
    loop made the listing raise)."""
    folder = tmp_path / "raw" / "gifts" / "dt=2025-03-01"
    _touch(folder / "part-0.jsonl")
    (folder / "a-folder.jsonl").mkdir()
    (folder / "gone.jsonl").symlink_to(folder / "nowhere.jsonl")
    (folder / "loop.jsonl").symlink_to(folder / "loop.jsonl")
    data = DataDir.at(tmp_path)
    assert [p.name for p in raw_files(data, "gifts", DAY)] == ["part-0.jsonl"]
    assert unread_log_entries(data, "gifts", [DAY]) == [
        "raw/gifts/dt=2025-03-01/ holds a-folder.jsonl/, gone.jsonl, loop.jsonl, not read: not a regular file "
        "(a folder, a broken or looping link, a pipe)"
    ]


def test_a_raw_folder_that_cannot_be_listed_stops_revwh_run_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_reference(tmp_path, DAY, DAY + dt.timedelta(days=4))
    write_raw(tmp_path, "gifts", "2025-03-01", [])
    locked = tmp_path / "raw" / "gifts"
    real = Path.iterdir

    def iterdir(self: Path):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))  # root ignores chmod: as a user would see it
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert run_cli(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]) == 2
    assert capsys.readouterr().err == f"revwh run: error: cannot list {locked}: Permission denied\n"


def test_landing_reads_the_jsonl_files_of_a_folder_in_name_order(tmp_path: Path) -> None:
    """Regular files (or links to one) named *.jsonl or *.jsonl.gz, not hidden, sorted by name; a
    folder named like a file, a link to nothing and a hidden file being written are not read."""
    folder = tmp_path / "raw" / "gifts" / "dt=2025-03-01"
    for name in ("b.jsonl", "a.jsonl.gz", "C.jsonl", ".part-0.jsonl", "notes.txt"):
        _touch(folder / name)
    (folder / "dir.jsonl").mkdir()
    (folder / "link.jsonl").symlink_to(folder / "b.jsonl")
    (folder / "dangling.jsonl").symlink_to(folder / "gone.jsonl")
    names = [p.name for p in raw_files(DataDir.at(tmp_path), "gifts", DAY)]
    assert names == ["C.jsonl", "a.jsonl.gz", "b.jsonl", "link.jsonl"]
    assert raw_files(DataDir.at(tmp_path), "gifts", DAY + dt.timedelta(days=1)) == []  # no folder


@pytest.mark.parametrize("quiet", [True, False])
def test_revwh_run_warns_once_and_still_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str], quiet: bool) -> None:
    """Before the run, whatever the log level; not again from the landing step's own warning (which is
    for the UI), so a run that is not quiet shows each note once too."""
    write_reference(tmp_path, DAY, DAY + dt.timedelta(days=3))
    write_raw(tmp_path, "impressions", "2025-03-01", [impression("e1", "2025-03-01T00:00:00Z")])
    write_raw(tmp_path, "impressions", "2025-3-02", [impression("e2", "2025-03-01T01:00:00Z")])
    write_raw(tmp_path, "impressions", "2025-03-01", [impression("e3", "2025-03-01T02:00:00Z")], name="late.json")
    args = ["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]
    assert run_cli(args + ["--quiet"] * quiet) == 0
    err = capsys.readouterr().err
    misnamed = "raw/impressions/ holds dt=2025-3-02/, not a folder named dt=YYYY-MM-DD"
    unread = "raw/impressions/dt=2025-03-01/ holds late.json, not read"
    assert f"revwh run: warning: {misnamed}" in err and f"revwh run: warning: {unread}" in err
    assert err.count(misnamed) == err.count(unread) == 1
    if not quiet:
        assert "landing__impressions" in err  # the run's own log was printed


def test_a_hidden_jsonl_file_is_neither_read_nor_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A producer still writing `.part-1.jsonl` (renamed when complete): its lines, a cut last line among
    them, are not landed yet, and the run does not warn about it."""
    write_reference(tmp_path, DAY, DAY + dt.timedelta(days=3))
    write_raw(tmp_path, "impressions", "2025-03-01", [impression("e1", "2025-03-01T00:00:00Z")])
    hidden = [impression("e2", "2025-03-01T01:00:00Z"), '{"event_id": "e3", "event_ti']
    write_raw(tmp_path, "impressions", "2025-03-01", hidden, name=".part-1.jsonl")
    assert unread_raw_notes(DataDir.at(tmp_path), [DAY]) == []
    args = ["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01", "--quiet"]
    assert run_cli(args) == 0
    assert "warning" not in capsys.readouterr().err
    assert run_cli(["sql", _EVENTS_SQL, "--data-dir", str(tmp_path), "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["events,rejected", "1,0"]


_EVENTS_SQL = (
    "SELECT (SELECT sum(event_count) FROM marts.revenue_by_stream) AS events, "
    "(SELECT count(*) FROM quality.quarantine) AS rejected"
)
