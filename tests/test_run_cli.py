"""`revwh run` and `revwh sql` on bad input: one clear line on stderr, a non-zero exit, no traceback,
and for a range that cannot run, nothing announced on stdout first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.builders import write_reference
from tests.cli_helpers import run_cli as run


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--start", "2025-03-05", "--end", "2025-03-01"], "--end 2025-03-01 is before --start 2025-03-05"),
        (["--start", "2024-12-30", "--end", "2025-01-02"], "before the first daily partition 2025-01-01"),
        (["--start", "2025-3-1", "--end", "2025-03-02"], "not a date in YYYY-MM-DD form"),
        (["--start", "2025-03-01"], "the following arguments are required: --end"),
    ],
)
def test_bad_range_is_one_line_and_announces_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dates: list[str], message: str
) -> None:
    assert run(["run", "--data-dir", str(tmp_path), *dates]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_missing_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert run(["run", "--data-dir", str(missing), "--start", "2025-03-01", "--end", "2025-03-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"revwh run: error: data directory {missing} does not exist (create it with `revwh generate`)"
    assert not missing.exists()


def test_missing_reference_table_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    (tmp_path / "reference" / "store_fees.csv").unlink()
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("revwh run: error:") and "store_fees.csv" in err and "\n" not in err


def test_sql_without_a_warehouse_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sql", "SELECT 1", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no warehouse" in err and "revwh run" in err and "\n" not in err
