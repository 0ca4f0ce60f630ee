"""Running `revwh` and the pipeline job in-process from tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from pipelines.bench.runs import execute_selection
from pipelines.cli import main

IMPRESSIONS_UP_TO_STAGED = {dg.AssetKey(["landing", "impressions"]), dg.AssetKey(["staged", "impressions"])}


def run_cli(argv: list[str]) -> int:
    """main()'s return code, or the code argparse exits with."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def run_impressions_to_staged(
    root: Path, first: dt.date, last: dt.date, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """A run of landing and staging of impressions only (and their checks), with the partition mapping of a
    full run (arrival days first..last+3): for the rule-5 cases that look at nothing past the staged layer.
    A core run would add facts, marts and the warehouse, about 3 s a run."""
    return execute_selection(root, first, last, instance, lambda spec: spec.key in IMPRESSIONS_UP_TO_STAGED)
