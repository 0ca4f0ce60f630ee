"""A `revwh run` killed in the warehouse step must not block every later run.

The warehouse step holds a slot of the Dagster pool ``warehouse`` (limit 1 once
``dagster.yaml`` is in ``$DAGSTER_HOME``). A run killed with ``kill -9`` never
frees it; before this fix the next run waited for it forever at 100 % CPU.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest

from pipelines.pool_slots import HOST_TAG, PID_TAG, owner_tags, process_exists, release_stale_slots
from tests.tiny_data import write_tiny_dataset

POOL = "warehouse"
ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_exists(child.pid)
    return child.pid


@pytest.fixture
def instance(tmp_path: Path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        inst.event_log_storage.set_concurrency_slots(POOL, 1)  # the limit dagster.yaml gives the pool
        yield inst


def _run_holding_slot(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, tags: dict[str, str]) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="revenue_pipeline", run_id=run_id, status=status, tags=tags))
    claim = instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "warehouse")
    assert claim.is_claimed
    return run_id


def _holders(instance: dg.DagsterInstance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def test_a_dead_cli_run_is_marked_failed_and_its_slot_freed(instance: dg.DagsterInstance) -> None:
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(_dead_pid())}
    dead = _run_holding_slot(instance, dg.DagsterRunStatus.STARTED, tags)
    lines = release_stale_slots(instance)
    assert lines == [f"freed the pool slots of run {dead} (its process {tags[PID_TAG]} is gone; marked failed)"]
    assert _holders(instance) == set()
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    # the freed slot can be claimed again at once
    assert instance.event_log_storage.claim_concurrency_slot(POOL, "next-run", "warehouse").is_claimed


@pytest.mark.parametrize(
    ("status", "tags", "why"),
    [
        (None, {}, "unknown to this Dagster instance"),
        (dg.DagsterRunStatus.SUCCESS, {}, "already SUCCESS"),
        (dg.DagsterRunStatus.FAILURE, {}, "already FAILURE"),
        (dg.DagsterRunStatus.CANCELED, {}, "already CANCELED"),
    ],
)
def test_claims_of_unknown_or_finished_runs_are_freed(
    instance: dg.DagsterInstance, status: dg.DagsterRunStatus | None, tags: dict[str, str], why: str
) -> None:
    if status is None:
        run_id = "no-such-run"
        assert instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "warehouse").is_claimed
    else:
        run_id = _run_holding_slot(instance, status, tags)
    assert release_stale_slots(instance) == [f"freed the pool slots of run {run_id} ({why})"]
    assert _holders(instance) == set()


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param(owner_tags(), id="this live process"),
        pytest.param({HOST_TAG: "another-host", PID_TAG: "999999999"}, id="another host"),
        pytest.param({}, id="launched from the UI (no revwh tags)"),
    ],
)
def test_live_or_unknowable_runs_keep_their_slot(instance: dg.DagsterInstance, tags: dict[str, str]) -> None:
    run_id = _run_holding_slot(instance, dg.DagsterRunStatus.STARTED, tags)
    assert release_stale_slots(instance) == []
    assert _holders(instance) == {run_id}
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED


def test_without_pools_nothing_happens(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        assert release_stale_slots(inst) == []


def test_revwh_run_after_a_killed_run_publishes(tmp_path: Path) -> None:
    """End to end: `revwh run` with the repository's dagster.yaml, after a run died holding the slot."""
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    first = dt.date(2025, 3, 1)
    write_tiny_dataset(data, first, 1)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    setup = f"""
import dagster as dg, socket
i = dg.DagsterInstance.get()
s = i.event_log_storage
s.initialize_concurrency_limit_to_default("{POOL}")
i.add_run(dg.DagsterRun(job_name="revenue_pipeline", run_id="killed-run", status=dg.DagsterRunStatus.STARTED,
                        tags={{"{HOST_TAG}": socket.gethostname(), "{PID_TAG}": "{_dead_pid()}"}}))
assert s.claim_concurrency_slot("{POOL}", "killed-run", "warehouse").is_claimed
"""
    subprocess.run([sys.executable, "-c", setup], env=env, check=True)
    revwh = Path(sys.executable).with_name("revwh")
    try:
        done = subprocess.run(
            [str(revwh), "run", "--data-dir", str(data), "--start", str(first), "--end", str(first), "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,  # before the fix: forever
        )
    except subprocess.TimeoutExpired:
        pytest.fail("revwh run waited for the pool slot of a run that was killed")
    assert done.returncode == 0, done.stderr
    assert "freed the pool slots of run killed-run" in done.stderr
    assert (data / "warehouse.duckdb").exists()
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert inst.get_run_by_id("killed-run").status == dg.DagsterRunStatus.FAILURE
