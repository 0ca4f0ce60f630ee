"""`revwh run` and `revwh sql` on bad input: one clear line on stderr, a non-zero exit, no traceback,
and for a range that cannot run, nothing announced on stdout first."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.builders import impression, write_raw, write_reference
from tests.cli_helpers import run_cli as run
from tests.tiny_data import write_tiny_dataset


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--start", "2025-03-05", "--end", "2025-03-01"], "--end 2025-03-01 is before --start 2025-03-05"),
        (["--start", "2024-12-30", "--end", "2025-01-02"], "before the first daily partition 2025-01-01"),
        (["--start", "2025-3-1", "--end", "2025-03-02"], "not a date in YYYY-MM-DD form"),
        (["--start", "20250301", "--end", "2025-03-02"], "not a date in YYYY-MM-DD form"),  # fromisoformat takes it
        (["--start", "2025-W10-1", "--end", "2025-03-02"], "not a date in YYYY-MM-DD form"),
        (["--start", "2025-03-01"], "the following arguments are required: --end"),
        (["--start", "2025-01-01", "--end", "9999-12-31"], "--end 9999-12-31 is after 9999-12-28: a run lands"),
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
    assert run(["sql", "SELECT 1", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no warehouse" in err and "revwh run" in err and "\n" not in err


def test_data_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("x")
    assert run(["run", "--data-dir", str(file), "--start", "2025-03-01", "--end", "2025-03-01"]) == 2
    assert capsys.readouterr().err.strip() == f"revwh run: error: --data-dir {file} is a file, not a data directory"


def test_non_numeric_reference_value_names_file_line_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    fees = tmp_path / "reference" / "store_fees.csv"
    fees.write_text("platform,fee_rate\nios,0.3\nandroid,thirty\nweb,0\n")
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"revwh run: error: {fees}, line 3: fee_rate 'thirty' is not of type Float64 (1 such rows)"


def test_an_empty_region_fails_before_the_run_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    countries = tmp_path / "reference" / "countries.csv"
    countries.write_text(countries.read_text() + "XY,Nowhere, ,USD\n")
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]) == 2
    lines = len(countries.read_text().splitlines())
    err = capsys.readouterr().err.strip()
    assert err == f"revwh run: error: {countries}, line {lines}: region is empty (1 such rows)"


def test_a_range_without_raw_files_runs_but_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: no raw files for arrival days 2025-03-01..2025-03-04" in err


def test_quiet_failure_prints_the_summary_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    bad = tmp_path / "raw" / "orders" / "dt=2025-03-01" / "upload.jsonl.gz"
    bad.parent.mkdir(parents=True)
    bad.write_text("not gzip")
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "Stack Trace" not in captured.out + captured.err and "Traceback" not in captured.out + captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    step = "revwh run: error: step landing__orders failed: "
    assert lines[0].startswith(f"{step}landing/orders dt=2025-03-01: cannot read raw file {bad}")


def test_step_errors_read_as_sentences() -> None:
    """The summary of a failed run: the project's own errors without their class path, an interrupt in words."""
    from dagster_shared.error import SerializableErrorInfo

    from pipelines.runner import _error_text

    own = SerializableErrorInfo("pipelines.landing.land.RawFileError: cannot read raw file x\n", [], "RawFileError")
    assert _error_text(own) == "cannot read raw file x"
    failure = SerializableErrorInfo("dagster._core.definitions.events.Failure: day not landed\n", [], "Failure")
    assert _error_text(failure) == "day not landed"
    other = SerializableErrorInfo("ValueError: bad\n", [], "ValueError")
    assert _error_text(other) == "ValueError: bad"
    interrupt = SerializableErrorInfo(
        "dagster._core.errors.DagsterExecutionInterruptedError\n", [], "DagsterExecutionInterruptedError"
    )
    assert _error_text(interrupt).startswith("interrupted; every lake partition is whole")
    assert _error_text(None) == "unknown error"
    assert _error_text(interrupt, published=True).startswith("interrupted after the warehouse was published")
    duckdb_interrupt = SerializableErrorInfo("RuntimeError: Query interrupted\n", [], "RuntimeError")
    assert _error_text(duckdb_interrupt).startswith("interrupted; every lake partition is whole")


def test_an_interrupt_after_the_publish_does_not_claim_the_warehouse_unchanged() -> None:
    """Ctrl-C during the report, after the warehouse step succeeded: the summary says what happened; a
    blocking check's failure is reported once, by the check's own line."""
    from types import SimpleNamespace

    from dagster_shared.error import SerializableErrorInfo

    from pipelines.runner import failure_messages, was_interrupted

    def step(key: str, error: SerializableErrorInfo | None = None) -> SimpleNamespace:
        return SimpleNamespace(
            step_key=key,
            is_step_success=error is None,
            is_step_failure=error is not None,
            step_failure_data=SimpleNamespace(error=error),
            event_type_value="STEP_FAILURE" if error else "STEP_SUCCESS",
        )

    interrupt = SerializableErrorInfo("DagsterExecutionInterruptedError\n", [], "DagsterExecutionInterruptedError")
    check = SerializableErrorInfo("DagsterAssetCheckFailedError: 1 check\n", [], "DagsterAssetCheckFailedError")
    before = SimpleNamespace(all_events=[step("marts__revenue_by_stream", interrupt)])
    assert failure_messages(before) == [
        "step marts__revenue_by_stream failed: interrupted; every lake partition is whole (old or new), the "
        "published warehouse is unchanged: re-run the range"
    ]
    after = SimpleNamespace(all_events=[step("warehouse"), step("reports__revenue_report", interrupt)])
    assert failure_messages(after) == [
        "step reports__revenue_report failed: interrupted after the warehouse was published (it holds this "
        "run's checked partitions); the steps after it did not finish: re-run the range to finish them"
    ]
    assert failure_messages(SimpleNamespace(all_events=[step("marts__x_reconciles_with_facts", check)])) == []
    assert was_interrupted(before) and was_interrupted(after)
    assert not was_interrupted(SimpleNamespace(all_events=[step("marts__x_reconciles_with_facts", check)]))


def test_a_failed_check_is_summarised_by_its_problems() -> None:
    """The one line `revwh run` ends with says what the check found, not the repr of its metadata."""
    from types import SimpleNamespace

    import dagster as dg

    from pipelines.runner import failure_messages

    def evaluation(metadata: dict) -> SimpleNamespace:
        data = SimpleNamespace(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            asset_check_key=dg.AssetCheckKey(
                dg.AssetKey(["landing", "gifts"]), "landed_equals_accepted_plus_quarantined"
            ),
            metadata={k: dg.MetadataValue.json(v) for k, v in metadata.items()},
        )
        return SimpleNamespace(
            is_step_success=False,
            is_step_failure=False,
            event_type_value="ASSET_CHECK_EVALUATION",
            event_specific_data=data,
        )

    problems = ["dt=2025-03-01: 1253 lines != 1175 accepted + 18 quarantined", "dt=2025-03-02: 3 lines != 2 + 0"]
    found = failure_messages(SimpleNamespace(all_events=[evaluation({"problems": problems, "days": {"x": 1}})]))
    assert found == [
        "check landing/gifts:landed_equals_accepted_plus_quarantined failed: dt=2025-03-01: 1253 lines != 1175 "
        "accepted + 18 quarantined; dt=2025-03-02: 3 lines != 2 + 0"
    ]
    other = failure_messages(SimpleNamespace(all_events=[evaluation({"rows": [3]})]))
    assert other == ["check landing/gifts:landed_equals_accepted_plus_quarantined failed: {'rows': [3]}"]
    long = failure_messages(SimpleNamespace(all_events=[evaluation({"problems": ["x" * 2000]})]))
    assert len(long[0]) < 900 and long[0].endswith("…")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_during_a_run_exits_130_with_one_line_and_leaves_no_temporary_warehouse(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """The shell's convention for a command ended by SIGINT, as the README's exit codes promise (SIGTERM,
    from a supervisor or `kill`, ends it the same way)."""
    run = _revwh_run_in_child(tmp_path, days=2)
    try:
        assert run.stderr is not None
        seen = []
        for line in run.stderr:  # Dagster's log: interrupt once the steps are under way
            seen.append(line)
            if " - staged__" in line:
                break
        else:
            pytest.fail("the run never reached the staged steps: " + "".join(seen[-5:]))
        run.send_signal(signum)
        _out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, err[-2000:]
    summary = [line for line in err.splitlines() if line.startswith("revwh run: error:")]
    assert summary and all("interrupted" in line for line in summary), summary
    assert "Stack Trace" not in err and "Traceback" not in err, err[-3000:]  # Dagster's failure lines, one line each
    assert not list(tmp_path.glob(".warehouse.duckdb.tmp-*"))


def test_an_extra_arrival_day_whose_folder_was_removed_re_lands_as_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run over START..END lands END+1..END+3 too; when one of those folders is removed after it
    landed, the next run re-lands it as the empty partition it now is (instead of failing its check)."""
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    write_raw(tmp_path, "impressions", "2025-03-01", [impression("on-time", "2025-03-01T10:00:00Z")])
    late = write_raw(tmp_path, "impressions", "2025-03-02", [impression("late", "2025-03-01T11:00:00Z")])
    args = ["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01", "--quiet"]
    assert run(args) == 0
    assert _advertising_events(tmp_path) == 2
    late.unlink()
    late.parent.rmdir()
    assert run(args) == 0, capsys.readouterr().err
    assert _advertising_events(tmp_path) == 1


def _advertising_events(root: Path) -> int:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT event_count FROM marts.revenue_by_stream WHERE stream = 'advertising'").fetchone()[0]


def _revwh_run_in_child(root: Path, days: int) -> subprocess.Popen[str]:
    """`revwh run` of a tiny data set of ``days`` days, in a process of its own (to be signalled)."""
    dates = write_tiny_dataset(root, dt.date(2025, 3, 1), days)
    revwh = Path(sys.executable).with_name("revwh")
    args = [str(revwh), "run", "--data-dir", str(root), "--start", str(dates[0]), "--end", str(dates[-1])]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_before_the_run_starts_exits_130_too(tmp_path: Path) -> None:
    run = _revwh_run_in_child(tmp_path, days=1)
    try:
        assert run.stdout is not None
        assert run.stdout.readline().startswith("revwh run: event dates")  # the command is under way
        run.send_signal(signal.SIGTERM)
        _out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, err[-2000:]
    assert "interrupted" in err.strip().splitlines()[-1] and "Traceback" not in err


def test_a_bad_snapshot_keep_setting_stops_revwh_run_before_it_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_dataset(tmp_path, dt.date(2025, 3, 1), 1)
    monkeypatch.setenv("REVWH_SNAPSHOT_KEEP_MINUTES", "an hour")
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]) == 2
    assert capsys.readouterr().err.strip() == (
        "revwh run: error: REVWH_SNAPSHOT_KEEP_MINUTES must be a number of minutes, 0 or more (got 'an hour')"
    )
    assert not (tmp_path / "lake").exists()
