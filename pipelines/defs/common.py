"""What every layer's assets share: the daily partitions, the data-dir resource, date helpers."""

from __future__ import annotations

import datetime as dt
import os
import warnings

import dagster as dg
from pydantic import PrivateAttr

from pipelines.contract import PARTITIONS_START
from pipelines.lake import DataDir
from pipelines.reference import Reference, load_reference

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAILY = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

DEFAULT_DATA_DIR = "data/demo"


class DataDirResource(dg.ConfigurableResource):
    """The data directory a run reads raw logs from and writes the lake and warehouse to."""

    data_dir: str = os.environ.get("REVWH_DATA_DIR", DEFAULT_DATA_DIR)
    _reference: Reference | None = PrivateAttr(default=None)

    def data(self) -> DataDir:
        return DataDir.at(self.data_dir)

    def reference(self) -> Reference:
        """The data directory's reference tables, loaded once per step process."""
        if self._reference is None:
            self._reference = load_reference(self.data())
        return self._reference


def partition_dates(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[dt.date]:
    """The days of the step's partition key range, oldest first."""
    window = context.partition_time_window
    start = window.start.date()
    return [start + dt.timedelta(days=i) for i in range((window.end.date() - start).days)]


def key(day: dt.date) -> str:
    return day.isoformat()
