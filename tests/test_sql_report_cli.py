"""`revwh sql` and `revwh report` on bad input and bad output: one clear line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.cli_helpers import run_cli as run


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose warehouse.duckdb holds one table of 200k rows (enough to fill a pipe)."""
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(200000)")
    return tmp_path


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "no SQL statement given"),
        ("   ", "no SQL statement given"),
        ("-- only a comment", "no SQL statement given"),
        ("SELECT 1; SELECT 2", "one SQL statement at a time, got 2"),
    ],
)
def test_sql_needs_exactly_one_statement(
    data_dir: Path, capsys: pytest.CaptureFixture[str], sql: str, message: str
) -> None:
    assert run(["sql", sql, "--data-dir", str(data_dir)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"revwh sql: error: {message}" and captured.out == ""


def test_sql_with_a_trailing_semicolon_is_one_statement(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sql", "SELECT count(*) AS n FROM numbers;", "--data-dir", str(data_dir), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "200000"]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_into_a_pipe_closed_early_stops_quietly(data_dir: Path, fmt: str) -> None:
    """`revwh sql … | head -1`: the reader leaves; no BrokenPipeError traceback, SIGPIPE's exit code."""
    command = [sys.executable, "-m", "pipelines.cli", "sql", "SELECT * FROM numbers", "--data-dir", str(data_dir)]
    proc = subprocess.Popen([*command, "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert first and err == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_sql_output_that_cannot_be_written_is_one_line(data_dir: Path) -> None:
    command = [sys.executable, "-m", "pipelines.cli", "sql", "SELECT 42", "--data-dir", str(data_dir)]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "revwh sql: error: cannot write the result: No space left on device"


def test_report_into_a_folder_that_cannot_be_made(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = data_dir / "a-file"
    blocker.write_text("x")
    assert run(["report", "--data-dir", str(data_dir), "--out", str(blocker / "report.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"revwh report: error: cannot write the report to {blocker / 'report.html'}: ")
    assert "\n" not in err


def test_report_on_a_warehouse_without_marts(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["report", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"revwh report: error: cannot read {data_dir / 'warehouse.duckdb'}: Catalog Error")
    assert "\n" not in err


def test_report_on_a_file_that_is_not_duckdb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "warehouse.duckdb").write_text("not a database")
    assert run(["report", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"revwh report: error: cannot read {tmp_path / 'warehouse.duckdb'}: ") and "\n" not in err


def test_report_days_from_the_environment_must_be_a_number(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVWH_REPORT_DAYS", "abc")
    assert run(["report", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "revwh report: error: REVWH_REPORT_DAYS must be 0 (all history) or a number of days, got 'abc'"
