"""`revwh run`'s log: a step that fails with a message written to be read prints that message on one line,
not under Dagster's stack trace; a bug keeps its trace, and REVWH_TRACEBACK=1 brings every trace back."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.errors import DagsterAssetCheckFailedError, DagsterExecutionInterruptedError
from dagster._utils.error import serializable_error_info_from_exc_info

from pipelines.console_log import HINT, OneLineForAbandonedSteps, ShortFailures, self_explained_text
from pipelines.landing.land import RawFileError
from tests.builders import write_reference
from tests.cli_helpers import run_cli as run


def _error_info(exc: BaseException):
    try:
        raise exc
    except BaseException:
        return serializable_error_info_from_exc_info(sys.exc_info())


def _wrapped(exc: BaseException):
    """The shape of a step failure's error: Dagster's wrapper whose cause is the user's exception."""
    try:
        try:
            raise exc
        except BaseException as inner:
            raise RuntimeError('Error occurred while executing op "s":') from inner
    except BaseException:
        return serializable_error_info_from_exc_info(sys.exc_info())


def test_which_errors_explain_themselves() -> None:
    raw = RawFileError("landing/gifts dt=2025-03-01: cannot read raw file /x.gz", Path("/x.gz"))
    assert self_explained_text(_wrapped(raw)) == "landing/gifts dt=2025-03-01: cannot read raw file /x.gz"
    assert self_explained_text(_wrapped(dg.Failure(description="arrival day not landed"))) == ("arrival day not landed")
    assert self_explained_text(_wrapped(KeyError("bucket"))) is None  # a bug: its trace is needed
    assert self_explained_text(_wrapped(ValueError("pipelines.x: looks like ours"))) is None
    assert self_explained_text(None) is None
    failed_check = DagsterAssetCheckFailedError(
        "1 blocking asset check failed with ERROR severity:\nlanding/gifts: landed_equals_accepted_plus_quarantined"
    )
    assert self_explained_text(_error_info(failed_check)) == (
        "1 blocking asset check failed with ERROR severity: landing/gifts: landed_equals_accepted_plus_quarantined"
    )
    assert self_explained_text(_error_info(DagsterExecutionInterruptedError())) == "interrupted"  # Ctrl-C, SIGTERM
    assert self_explained_text(_wrapped(KeyboardInterrupt())) == "interrupted"
    assert self_explained_text(_wrapped(RuntimeError("Query interrupted"))) == "interrupted"  # DuckDB's, mid-statement
    assert self_explained_text(_wrapped(RuntimeError("something else"))) is None


class _Event:
    def __init__(self, error) -> None:
        self.event_specific_data = type("Data", (), {"error": error})()


def _record(message: str, error) -> logging.LogRecord:
    record = logging.LogRecord("dagster", logging.ERROR, __file__, 1, message, (), None)
    record.dagster_meta = {"dagster_event": _Event(error)}
    return record


def test_the_filter_shortens_only_self_explained_failures() -> None:
    raw = _wrapped(RawFileError("landing/orders dt=2025-03-02: cannot read raw file /y.gz", Path("/y.gz")))
    head = 'revenue_pipeline - id - 1 - landing__orders - STEP_FAILURE - Execution of step "landing__orders" failed.'
    record = _record(f"{head}\n\n{raw.to_string()}", raw)
    assert ShortFailures().filter(record)
    assert record.getMessage() == f"{head} landing/orders dt=2025-03-02: cannot read raw file /y.gz {HINT}"

    bug = _wrapped(KeyError("bucket"))
    full = f"{head}\n\n{bug.to_string()}"
    record = _record(full, bug)
    assert ShortFailures().filter(record)
    assert record.getMessage() == full and "Stack Trace" in full

    plain = logging.LogRecord("dagster", logging.INFO, __file__, 1, "landing/orders: 3 copies", (), None)
    assert ShortFailures().filter(plain) and plain.getMessage() == "landing/orders: 3 copies"


def _bad_gzip_day(tmp_path: Path) -> Path:
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 4))
    bad = tmp_path / "raw" / "orders" / "dt=2025-03-01" / "upload.jsonl.gz"
    bad.parent.mkdir(parents=True)
    bad.write_text("not gzip")
    return bad


def test_a_run_prints_the_failure_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REVWH_TRACEBACK", raising=False)
    bad = _bad_gzip_day(tmp_path)
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]) == 1
    err = capsys.readouterr().err
    assert "Stack Trace" not in err and "Traceback" not in err
    failure = [line for line in err.splitlines() if "STEP_FAILURE" in line]
    assert len(failure) == 1, err
    assert f"landing/orders dt=2025-03-01: cannot read raw file {bad}" in failure[0] and failure[0].endswith(HINT)
    assert "INFO - revenue_pipeline" in err  # the rest of the log is still there
    assert "Dependencies for step" not in err  # some thirty steps after the failure, in one line
    assert err.count("Steps that depend on a failed step are not executed") == 1


def test_revwh_traceback_brings_the_trace_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVWH_TRACEBACK", "1")
    _bad_gzip_day(tmp_path)
    assert run(["run", "--data-dir", str(tmp_path), "--start", "2025-03-01", "--end", "2025-03-01"]) == 1
    err = capsys.readouterr().err
    assert "Stack Trace" in err and 'File "' in err and "RawFileError" in err
    assert err.count("Dependencies for step") > 10  # and every step not executed


def test_the_steps_not_executed_after_a_failure_are_one_line() -> None:
    log = OneLineForAbandonedSteps()
    head = "revenue_pipeline - id - staged__orders - "
    first = logging.LogRecord(
        "dagster",
        logging.ERROR,
        __file__,
        1,
        f"{head}Dependencies for step staged__orders failed: ['a']. Not executing.",
        (),
        None,
    )
    assert log.filter(first)
    assert first.getMessage().startswith(f"{head}Steps that depend on a failed step are not executed")
    second = logging.LogRecord(
        "dagster",
        logging.ERROR,
        __file__,
        1,
        "x - Dependencies for step warehouse were not executed: ['b']. Not executing.",
        (),
        None,
    )
    assert not log.filter(second)
    other = logging.LogRecord("dagster", logging.ERROR, __file__, 1, "RUN_FAILURE - Steps failed: ['a']", (), None)
    assert log.filter(other) and other.getMessage() == "RUN_FAILURE - Steps failed: ['a']"
