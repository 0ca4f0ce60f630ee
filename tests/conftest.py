"""Shared fixtures: a fresh data directory with the tiny reference tables of builders.py, and no
$DAGSTER_HOME for in-process runs. The order and grouping of test modules for pytest-xdist."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.lake import DataDir
from tests.builders import write_reference
from tests.dagster_server import Webserver, running_webserver
from tests.tiny_data import write_tiny_dataset

os.environ.setdefault("PANDERA_VALIDATION_DEPTH", "SCHEMA_AND_DATA")

# Test modules that share a session-wide fixture: `make test` (pytest-xdist, --dist loadfile) hands each group
# to one worker as if it were one module (GroupedScheduling below), so the fixture is built once, not once
# per worker. kpi: the pipeline run of tests/kpi_data.py; webserver: tiny_webserver below.
SHARED_GROUPS = {
    "kpi": (
        "test_kpi_marts.py",
        "test_kpi_reconcile.py",
        "test_report.py",
        "test_examples.py",
        "test_warehouse_comments.py",
        "test_report_browser.py",
    ),
    "webserver": ("test_webserver.py", "test_ui_browser.py"),
}
# Work units (a module, or a group above) by how long they take on a `make test` worker, longest first;
# the rest follow in xdist's own order. Handing out the long ones first leaves the short ones to even out
# the two workers at the end (xdist's own order, by number of tests, started test_ui_backfill, ~70 s,
# near the end of the run, when the other worker had nothing left).
LONGEST_FIRST = (  # measured at 23c4cfe+1 (`--durations=0`, summed per unit; 928 s in all)
    "test_bucketing.py",  # ~118 s
    "webserver",  # ~77 s
    "test_ui_backfill.py",  # ~76 s
    "test_bench.py",  # ~76 s
    "test_outdated_dates.py",
    "test_storage.py",
    "test_hot_ids.py",  # ~59 s
    "test_far_conflicts.py",  # ~49 s
    "test_concurrency.py",
    "test_pool_slots.py",
    "test_writer_lock.py",
    "kpi",  # ~29 s
    "test_publish_scope.py",
    "test_pipeline_contract.py",
    "test_foreign_producer_e2e.py",
    "test_run_cli.py",
    "test_reference_sensor.py",
    "test_generated_e2e.py",
    "test_arrival_days_landed.py",
    "test_adversarial_e2e.py",  # ~18 s
)


def _work_unit(module_path: str) -> str:
    """The xdist work unit of a test module: its group's name, or the module path."""
    name = module_path.rsplit("/", 1)[-1]
    return next((group for group, modules in SHARED_GROUPS.items() if name in modules), module_path)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """--dist loadfile, with SHARED_GROUPS kept together and LONGEST_FIRST handed out first."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}

    class GroupedScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(super()._split_scope(nodeid))

        def _assign_work_unit(self, node) -> None:  # node: xdist's WorkerController
            # the longest unit left goes next (xdist pops the first one of its queue)
            scope = min(self.workqueue, key=lambda s: rank.get(s.rsplit("/", 1)[-1], len(rank)))
            self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return GroupedScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def _no_dagster_home() -> Iterator[None]:
    """In-process `revwh run`s (``run_range``, ``main``) record to an ephemeral instance, as under a bare
    ``pytest``: not to the developer's $DAGSTER_HOME, which `make test` exports as .dagster_home. That
    instance is SQLite on disk, shared by both xdist workers, and kept the tests' runs in `make ui`'s
    history; it cost 6-7 s more per run than the in-memory one. The tests that need a persistent
    instance (test_pool_slots, tests/distributed, the webserver tests) give their processes their own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        yield


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    write_reference(tmp_path, dt.date(2025, 2, 20), dt.date(2025, 3, 20))
    return DataDir.at(tmp_path)


WEBSERVER_FIRST_DAY = dt.date(2025, 3, 1)


@pytest.fixture(scope="session")
def tiny_webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Webserver, Path]]:
    """A dagster-webserver (tests/dagster_server.py) on the tiny data set of tests/tiny_data.py, event
    dates WEBSERVER_FIRST_DAY and the day after, and that data directory. test_webserver and
    test_ui_browser share it (the "webserver" group): starting one costs 10-20 s."""
    work = tmp_path_factory.mktemp("webserver")
    data = work / "data"
    write_tiny_dataset(data, WEBSERVER_FIRST_DAY, 2)
    with running_webserver(work, data) as server:
        yield server, data
