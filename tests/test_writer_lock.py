"""One writer per data directory, and the sweep of what killed writers left behind (pipelines.writer_lock).

Before: two `revwh run`s (or one beside a UI run) on one directory interleaved their lake writes, and
the temporary files of a killed run (`.x.tmp-…`, `lake/_tmp/…`) stayed for ever.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipelines import writer_lock as wl
from pipelines.lake import DataDir
from tests.tiny_data import write_tiny_dataset

ROOT = Path(__file__).resolve().parents[1]
HOURS_AGO = time.time() - 2 * 3600


def _old(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (HOURS_AGO, HOURS_AGO))
    return path


def _hold_in_child(root: Path) -> subprocess.Popen[str]:
    """A process that holds the writer lock of ``root`` until it is killed."""
    code = textwrap.dedent(f"""
        import time
        from pipelines.lake import DataDir
        from pipelines.writer_lock import writer_lock
        with writer_lock(DataDir.at({str(root)!r}), "the test's holder"):
            print("held", flush=True)
            time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_the_sweep_removes_old_leftovers_and_keeps_fresh_files_and_the_producers(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path)
    stale = [
        _old(tmp_path / ".warehouse.duckdb.tmp-0123abcd"),
        _old(tmp_path / ".warehouse.duckdb.tmp-0123abcd.wal"),
        _old(tmp_path / "lake/staged/gifts/.event_date=2025-03-01.parquet.tmp-89abcdef"),
        _old(tmp_path / "lake/_tmp/staged-quarantine-gifts-2025-03-01-x/part-0.parquet"),
        _old(tmp_path / "lake/_tmp/duckdb_temp_storage_DEFAULT-0.tmp"),
    ]
    old_dir = tmp_path / "lake/landing/gifts/.dt=2025-03-01.old-00ff00ff"
    _old(old_dir / "event_date=2025-03-01/bucket-000-0.parquet")
    for path in (old_dir, old_dir / "event_date=2025-03-01", stale[3].parent):
        os.utime(path, (HOURS_AGO, HOURS_AGO))
    kept = [
        tmp_path / "lake/facts/revenue_events/.event_date=2025-03-02.parquet.tmp-deadbeef",  # being written
        _old(tmp_path / "lake/facts/revenue_events/event_date=2025-03-01.parquet"),
        _old(tmp_path / "raw/gifts/dt=2025-03-01/.part.jsonl.tmp-0123abcd"),  # the producer's own
        _old(tmp_path / "reference/.fx_rates.csv.tmp-0123abcd"),
        _old(tmp_path / "lake/staged/gifts/.event_date=2025-03-01.parquet.tmp-notahex1"),
    ]
    kept[0].write_text("fresh")

    swept = wl.sweep_leftovers(data)

    assert set(swept.paths) == {str(p.relative_to(tmp_path)) for p in [*stale[:3], old_dir, stale[3].parent, stale[4]]}
    assert swept.bytes == 6 and str(swept) == "6 leftover temporary file(s), 0.0 MB"
    assert not any(p.exists() for p in [*stale, old_dir])
    assert all(p.exists() for p in kept)
    assert (tmp_path / "lake/_tmp").is_dir()


def test_a_spill_folder_with_a_fresh_file_is_in_use(tmp_path: Path) -> None:
    folder = tmp_path / "lake/_tmp/staged-quarantine-orders-2025-03-01-y"
    _old(folder / "part-0.parquet")
    (folder / "part-1.parquet").write_text("just written")
    os.utime(folder, (HOURS_AGO, HOURS_AGO))
    assert wl.sweep_leftovers(DataDir.at(tmp_path)).paths == ()
    assert (folder / "part-0.parquet").exists()


def test_a_second_writer_waits_names_the_holder_and_goes_on_when_it_is_killed(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path)
    notes: list[str] = []
    entered = threading.Event()

    def second() -> None:
        with wl.writer_lock(DataDir.at(tmp_path), "second", on_wait=notes.append, poll_seconds=0.05):
            entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert not entered.wait(1.0)
        assert len(notes) == 1
        assert notes[0].startswith(f"waiting for the test's holder (pid {child.pid} on ")
        assert notes[0].endswith(f"to finish writing {tmp_path}")
    finally:
        child.send_signal(signal.SIGKILL)  # the kernel drops a dead holder's lock
        child.wait()
    assert entered.wait(10)
    thread.join()
    assert (tmp_path / wl.LOCK_NAME).read_text() == ""  # no holder left on record


def test_a_sweep_walks_the_directory_at_most_once_an_hour(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path)
    assert wl.sweep_if_due(data).paths == ()
    leftover = _old(tmp_path / "lake/.x.parquet.tmp-0123abcd")
    assert wl.sweep_if_due(data).paths == () and leftover.exists()  # swept a moment ago
    os.utime(tmp_path / wl.SWEPT_NAME, (HOURS_AGO, HOURS_AGO))
    assert wl.sweep_if_due(data).paths == ("lake/.x.parquet.tmp-0123abcd",)


def test_the_lock_is_reentrant_in_one_process_and_skips_a_missing_directory(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path)
    with wl.writer_lock(data, "outer"), wl.writer_lock(data, "inner", on_wait=pytest.fail):
        assert wl._held[tmp_path / wl.LOCK_NAME] == 2
    assert wl._held == {}
    with wl.writer_lock(DataDir.at(tmp_path / "missing"), "nobody"):
        assert not (tmp_path / "missing").exists()


def test_revwh_run_waits_for_a_holder_then_sweeps_and_succeeds(tmp_path: Path) -> None:
    write_tiny_dataset(tmp_path, dt.date(2025, 3, 1), 1)
    holder = _hold_in_child(tmp_path)
    leftover = _old(tmp_path / "lake/marts/revenue_by_stream/.event_date=2025-03-01.parquet.tmp-0badc0de")
    _old(tmp_path / wl.SWEPT_NAME)  # the holder's sweep was an hour ago: the run's is due
    run = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--data-dir", str(tmp_path), "--start", "2025-03-01"]
        + ["--end", "2025-03-01", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
    )
    try:
        assert run.stderr is not None
        waiting = run.stderr.readline()
        assert waiting.startswith(f"revwh run: waiting for the test's holder (pid {holder.pid} on ")
        assert leftover.exists() and run.poll() is None
    finally:
        holder.kill()
        holder.wait()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "revwh run: removed 1 leftover temporary file(s), 0.0 MB of killed runs" in err
    assert "revwh run: ok in" in out
    assert not leftover.exists()


def test_a_run_launched_like_the_ui_does_waits_for_the_holder_then_succeeds(tmp_path: Path) -> None:
    """The UI, schedule, sensors and backfills execute the job's own executor (not `revwh run`'s
    in-process call), so that executor holds the lock: the run waits, logs whom for, then runs."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from pipelines.definitions import PIPELINE_JOB, build_definitions
    from pipelines.runner import run_tags

    day = dt.date(2025, 3, 1)
    write_tiny_dataset(tmp_path, day, 1)
    holder = _hold_in_child(tmp_path)
    job = ReconstructableRepository.for_module("pipelines.definitions", "defs").get_reconstructable_job(PIPELINE_JOB)
    instance = dg.DagsterInstance.ephemeral()
    results: list[dg.JobExecutionResult] = []

    def launch() -> None:
        run_config = {
            "resources": {"revwh": {"config": {"data_dir": str(tmp_path)}}},
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},  # the event log keeps every level
        }
        results.append(dg.execute_job(job, instance, run_config=run_config, tags=run_tags(day, day)))

    thread = threading.Thread(target=launch)
    thread.start()
    try:
        # until the run says it waits (a slow host may take seconds to start the run at all)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            "waiting for" in r.user_message for run in instance.get_runs() for r in instance.all_logs(run.run_id)
        ):
            time.sleep(0.2)
        assert thread.is_alive() and not (tmp_path / "lake" / "landing").exists()  # no step has started
    finally:
        holder.kill()
        holder.wait()
    thread.join(timeout=300)
    (result,) = results
    assert result.success
    notes = [r.user_message for r in instance.all_logs(result.run_id) if "waiting for" in r.user_message]
    assert len(notes) == 1 and f"waiting for the test's holder (pid {holder.pid} on " in notes[0]
    assert (tmp_path / "warehouse.duckdb").exists()
    assert (tmp_path / wl.LOCK_NAME).read_text() == ""  # released
    # the UI's Materialize and backfills run the implicit asset job, the Celery job its own executor
    defs = build_definitions(tmp_path)
    executors = [defs.resolve_implicit_global_asset_job_def().executor_def]
    executors += [defs.resolve_job_def(name).executor_def for name in (PIPELINE_JOB, "revenue_pipeline_celery")]
    assert all(e.description.endswith("holding the data directory's writer lock") for e in executors)


def test_terminating_a_run_that_waits_for_the_lock_stops_it_at_once(tmp_path: Path) -> None:
    """Dagster's run worker only records SIGINT/SIGTERM and acts on it between steps; a run waiting for
    the lock has no step yet, so it must raise the request itself (the UI's Terminate)."""
    write_tiny_dataset(tmp_path, dt.date(2025, 3, 1), 1)
    holder = _hold_in_child(tmp_path)
    code = textwrap.dedent(f"""
        import datetime as dt
        import dagster as dg
        from dagster._core.definitions.reconstruct import ReconstructableRepository
        from pipelines.runner import run_tags
        day = dt.date(2025, 3, 1)
        job = ReconstructableRepository.for_module("pipelines.definitions", "defs").get_reconstructable_job(
            "revenue_pipeline"
        )
        run_config = {{"resources": {{"revwh": {{"config": {{"data_dir": {str(tmp_path)!r}}}}}}}}}
        result = dg.execute_job(
            job, dg.DagsterInstance.ephemeral(), run_config=run_config, tags=run_tags(day, day), raise_on_error=False
        )
        print("success" if result.success else "failed", flush=True)
    """)
    run = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert run.stderr is not None
        for line in run.stderr:
            if "waiting for the test's holder" in line:
                break
        else:
            pytest.fail("the run never reported waiting for the lock")
        run.send_signal(signal.SIGINT)  # what the run worker gets for Terminate (SIGTERM maps to it)
        out, _err = run.communicate(timeout=30)  # without raising it, the run waited for the holder
    finally:
        if run.poll() is None:
            run.kill()
        holder.kill()
        holder.wait()
    assert out.strip() == "failed"
    assert not (tmp_path / "lake" / "landing").exists()
