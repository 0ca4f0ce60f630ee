"""Shared fixtures: a fresh data directory with the tiny reference tables of builders.py."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from pipelines.lake import DataDir
from tests.builders import write_reference

os.environ.setdefault("PANDERA_VALIDATION_DEPTH", "SCHEMA_AND_DATA")


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    write_reference(tmp_path, dt.date(2025, 2, 20), dt.date(2025, 3, 20))
    return DataDir.at(tmp_path)
