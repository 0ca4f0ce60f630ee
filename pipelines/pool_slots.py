"""Free Dagster pool slots left behind by runs that can no longer release them.

The ``warehouse`` step is in the Dagster pool ``warehouse`` (limit 1 once
``dagster.yaml`` is in ``$DAGSTER_HOME``, where ``make run`` and ``make ui`` put it). A run
frees its slot when the step ends, but a ``revwh run`` killed hard in that step
(``kill -9``, the OOM killer, a reboot) never does: its run stays STARTED and
every later run waits for the slot forever, spinning a core. Dagster's daemon
frees slots of *finished* runs (``run_monitoring`` in ``dagster.yaml``), but
nothing notices a CLI run whose process is gone and nothing runs the daemon
when only the CLI is used.

So every ``revwh run`` records its host and process id in its run tags, and
before it starts it frees the slots of runs that are known to be dead:

- runs the instance does not know (a claim without a run);
- runs that have finished (their slot should already be free);
- STARTED/STARTING/CANCELING ``revwh run``s of this host whose process no
  longer exists; those are also marked failed, so the UI stops showing them
  as running.

Runs launched from the UI or on another host carry no such tags (or another
host's) and are left to Dagster: a live run keeps its slot.
"""

from __future__ import annotations

import os
import socket

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES

HOST_TAG = "revwh/host"
PID_TAG = "revwh/pid"
IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}


def owner_tags() -> dict[str, str]:
    """Tags that say which process runs a `revwh run`, so a later one can tell whether it died."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_exists(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks without sending one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _dead_cli_run(run: dg.DagsterRun) -> bool:
    """An in-progress `revwh run` of this host whose process is gone (and is not this process)."""
    host, pid = run.tags.get(HOST_TAG), run.tags.get(PID_TAG)
    if host != socket.gethostname() or not pid or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not process_exists(int(pid))


def release_stale_slots(instance: dg.DagsterInstance) -> list[str]:
    """Free the pool slots (claimed or waited for) of runs that cannot free them; returns one line
    per released run, saying why."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = set(storage.get_concurrency_run_ids())  # runs with a claimed or awaited slot
    for pool in storage.get_concurrency_keys():
        holders.update(slot.run_id for slot in storage.get_concurrency_info(pool).claimed_slots)
    released: list[str] = []
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is None:
            why = "unknown to this Dagster instance"
        elif run.status in FINISHED_STATUSES:
            why = f"already {run.status.value}"
        elif run.status in IN_PROGRESS and _dead_cli_run(run):
            why = f"its process {run.tags[PID_TAG]} is gone; marked failed"
            instance.report_run_failed(
                run, f"revwh run: process {run.tags[PID_TAG]} on {run.tags[HOST_TAG]} died without ending the run"
            )
        else:
            continue
        storage.free_concurrency_slots_for_run(run_id)
        released.append(f"freed the pool slots of run {run_id} ({why})")
    return released
