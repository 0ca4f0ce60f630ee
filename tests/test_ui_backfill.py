"""A backfill launched the way the UI launches it: every asset, a range of partitions, run by the daemon.

The UI's *Launch backfill* is an asset backfill: Dagster maps the chosen partitions from the root
assets (landing) downstream through each dependency's partition mapping and groups the result into
runs. When staged D declared that it reads landing D..D+3, the backfill of D..E became a run of
landing D..E alone (without the look-ahead days E+1..E+3) and a run of staged..warehouse over
D-3..E, which published marts that missed every copy arriving after E. This module starts a real
webserver and ``dagster-daemon`` on a throwaway instance, launches such a backfill over GraphQL and
checks what an operator would: one run over the chosen range, and marts equal to the independent
implementation of the SPEC over that range.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.definitions import build_definitions
from pipelines.generate import generate_dataset
from tests.dagster_server import LOCATION, REPO, REPOSITORY, Webserver, running_webserver
from tests.reference_impl import assert_same_results, published_marts, reference_run

pytestmark = pytest.mark.slow

FIRST = dt.date(2025, 3, 1)
START, END = dt.date(2025, 3, 4), dt.date(2025, 3, 5)  # raw data on both sides: 03-01..03-03 and 03-06..03-08
BACKFILL_TIMEOUT_S = 420.0
REPO_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _stop_automation(server: Webserver) -> None:
    """Schedules and sensors are RUNNING by default; switch them off before the daemon starts, so the
    only runs are the backfill's (the raw-files sensor would otherwise request the new raw days)."""
    found = server.graphql(
        """query($r: RepositorySelector!) {
             sensorsOrError(repositorySelector: $r) { ... on Sensors { results {
               name jobOriginId sensorState { selectorId } } } }
             schedulesOrError(repositorySelector: $r) { ... on Schedules { results {
               name scheduleState { id selectorId } } } } }""",
        {"r": REPO_SELECTOR},
    )
    for sensor in found["sensorsOrError"]["results"]:
        stopped = server.graphql(
            """mutation($o: String, $s: String) { stopSensor(jobOriginId: $o, jobSelectorId: $s) {
                 __typename ... on StopSensorMutationResult { instigationState { status } } } }""",
            {"o": sensor["jobOriginId"], "s": sensor["sensorState"]["selectorId"]},
        )["stopSensor"]
        assert stopped["instigationState"]["status"] == "STOPPED", (sensor["name"], stopped)
    for schedule in found["schedulesOrError"]["results"]:
        stopped = server.graphql(
            """mutation($o: String, $s: String) { stopRunningSchedule(scheduleOriginId: $o, scheduleSelectorId: $s) {
                 __typename ... on ScheduleStateResult { scheduleState { status } } } }""",
            {"o": schedule["scheduleState"]["id"], "s": schedule["scheduleState"]["selectorId"]},
        )["stopRunningSchedule"]
        assert stopped["scheduleState"]["status"] == "STOPPED", (schedule["name"], stopped)


# `dagster-daemon run` (what its console script runs), with the backfill daemon's pause between
# iterations cut from 30 s to 2 s. An asset backfill advances one iteration at a time: one to launch the
# pipeline run, one to launch the report's run after it, one to see both done; at 30 s a pause, about
# 30 of the module's 88 s went to the daemon sleeping. The daemon's code is otherwise Dagster's own.
DAEMON = """
import sys
import dagster._daemon.controller as controller
from dagster._daemon.cli import main

controller.DEFAULT_DAEMON_INTERVAL_SECONDS = 2  # read by the backfill loop at its start
sys.argv[0] = "dagster-daemon"
sys.exit(main())
"""


@contextlib.contextmanager
def _running_daemon(server: Webserver, data_dir: Path) -> Iterator[None]:
    """``dagster-daemon run`` on the webserver's instance and workspace (what ``make ui`` also starts),
    polling for backfill work every 2 s instead of every 30."""
    env = os.environ | {
        "DAGSTER_HOME": str(server.home),
        "REVWH_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    log = server.home / "daemon.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", DAEMON, "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _launch_backfill(server: Webserver, partitions: list[str]) -> str:
    keys = [node.key.path for node in build_definitions("data/unused").resolve_asset_graph().asset_nodes]
    launched = server.graphql(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
             __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {"p": {"partitionNames": partitions, "assetSelection": [{"path": k} for k in keys], "fromFailure": False}},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _wait_for_backfill(server: Webserver, backfill_id: str) -> dict:
    query = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
                 status error { message } runs { runId status tags { key value } } } } }"""
    backfill, deadline = {}, time.monotonic() + BACKFILL_TIMEOUT_S
    while time.monotonic() < deadline:
        backfill = server.graphql(query, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING"):
            return backfill
        time.sleep(0.5)
    raise AssertionError(f"backfill {backfill_id} not done after {BACKFILL_TIMEOUT_S:.0f}s: {backfill}")


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("ui_backfill")
    root = work / "data"
    generate_dataset(root, FIRST, 8, 3000, seed=13, dirt_rate=0.02, compress=False)
    with running_webserver(work, root) as server:
        _stop_automation(server)
        backfill_id = _launch_backfill(server, [START.isoformat(), END.isoformat()])
        with _running_daemon(server, root):
            backfill = _wait_for_backfill(server, backfill_id)
    return root, backfill


def test_the_backfill_is_one_run_over_the_chosen_range(backfilled: tuple[Path, dict]) -> None:
    _, backfill = backfilled
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert all(run["status"] == "SUCCESS" for run in backfill["runs"]), backfill["runs"]
    ranges = [
        (tags[RANGE_START], tags[RANGE_END])
        for tags in ({t["key"]: t["value"] for t in run["tags"]} for run in backfill["runs"])
        if RANGE_START in tags
    ]
    # The unpartitioned report runs once on its own; every daily asset is in ONE run over START..END.
    assert ranges == [(START.isoformat(), END.isoformat())], backfill["runs"]


def test_the_backfill_lands_the_look_ahead_days(backfilled: tuple[Path, dict]) -> None:
    root, _ = backfilled
    landed = sorted(p.name for p in (root / "lake" / "landing" / "impressions").glob("dt=*"))
    want = [f"dt={START + dt.timedelta(days=i)}" for i in range((END - START).days + 4)]
    assert landed == want


def test_backfilled_marts_equal_the_independent_implementation(backfilled: tuple[Path, dict]) -> None:
    root, _ = backfilled
    assert_same_results(published_marts(root), reference_run(root, START, END))
