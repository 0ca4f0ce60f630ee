"""Shared fixtures: a fresh data directory with the tiny reference tables of builders.py, and no
$DAGSTER_HOME for in-process runs."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.lake import DataDir
from tests.builders import write_reference

os.environ.setdefault("PANDERA_VALIDATION_DEPTH", "SCHEMA_AND_DATA")


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
