"""`revwh generate`: a realistic, deterministic, vectorised event-log generator (SPEC §1–4).

Modules, one job each: markets (behaviour knobs), reference (reference tables, fx),
population (users, creators, campaigns, sellers), timing (volumes, clocks), events (clean
events per log), dirt (SPEC §4 dirt), schema_breaks (rule-2 dirt as line edits), encode
(NDJSON text), writer (partition files), dataset (orchestration), cli (argparse).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.generate.options import DEFAULT_CHUNK_SIZE, DEFAULT_DIRT_RATE, DEFAULT_LATE_RATE, DIRT_KINDS

if TYPE_CHECKING:
    from pipelines.generate.dataset import GenerateStats, generate_dataset

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DIRT_RATE",
    "DEFAULT_LATE_RATE",
    "DIRT_KINDS",
    "GenerateStats",
    "generate_dataset",
]


def __getattr__(name: str) -> Any:
    """Import the heavy part (numpy, polars) on first use, not when `revwh` parses arguments."""
    if name in ("generate_dataset", "GenerateStats"):
        from pipelines.generate import dataset

        return getattr(dataset, name)
    raise AttributeError(name)
