"""`revwh generate` from the command line: one clear line and exit code 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import run_cli as run

BASE = ["generate", "--start", "2025-03-01", "--days", "1", "--events-per-day", "500"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-02-30"], "not a date"),
        (["--start", "yesterday"], "not a date"),
        (["--days", "0"], "must be greater than 0"),
        (["--days", "-3"], "must be greater than 0"),
        (["--events-per-day", "0"], "must be greater than 0"),
        (["--seed", "-1"], "must be 0 or more"),
        (["--dirt-rate", "1.5"], "between 0 and 1"),
        (["--late-rate", "-0.1"], "between 0 and 1"),
        (["--dirt", "dragons=0.1"], "KIND=RATE"),
        (["--dirt", "malformed=2"], "between 0 and 1"),
        (["--dirt-rate", "0.5"], "add up to"),
        (["--start", "9999-12-30"], "runs past 9998-12-30, the last day generated"),
    ],
)
def test_bad_arguments_fail_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run([*BASE, "--data-dir", str(tmp_path / "d"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "d" / "raw").exists()


def test_unusable_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    for target in (a_file, a_file / "below"):
        assert run([*BASE, "--data-dir", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("revwh generate: error:") and "directory" in err and "\n" not in err


def test_success_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*BASE, "--data-dir", str(tmp_path), "--seed", "3", "--compress", "--dirt", "malformed=0.1"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "events/s" in out and out.count("\n") == 1
    assert list(tmp_path.glob("raw/impressions/dt=2025-03-01/part-*.jsonl.gz"))
    assert (tmp_path / "reference" / "fx_rates.csv").is_file()


def test_the_repositorys_own_data_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--data-dir data` in a checkout: the static tables are already in place, not copied onto themselves."""
    import shutil

    import pipelines.generate.reference as reference

    static = tmp_path / "checkout" / "data" / "reference"
    shutil.copytree(reference.STATIC_DIR, static, ignore=shutil.ignore_patterns("fx_rates.csv"))
    before = {p.name: p.read_bytes() for p in static.iterdir()}
    monkeypatch.setattr(reference, "STATIC_DIR", static)
    assert run([*BASE, "--data-dir", str(static.parent)]) == 0, capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in static.iterdir() if p.name != "fx_rates.csv"} == before
    assert (static / "fx_rates.csv").is_file() and list(static.parent.glob("raw/impressions/dt=*/*.jsonl"))


def test_generating_into_a_directory_that_holds_a_lake_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "d"
    assert run([*BASE, "--data-dir", str(target), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    (target / "lake").mkdir()
    (target / "warehouse.duckdb").write_bytes(b"")
    assert run([*BASE, "--data-dir", str(target), "--quiet", "--seed", "2"]) == 0
    assert capsys.readouterr().err == (
        f"revwh generate: warning: {target} already holds lake and warehouse.duckdb built from the raw files this "
        "replaced; `revwh run` over the dates lands the new ones (or generate into an empty directory)\n"
    )
