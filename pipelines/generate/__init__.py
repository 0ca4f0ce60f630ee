"""`revwh generate`: a realistic, deterministic, vectorised event-log generator (SPEC §1–4).

Modules, one job each: markets (behaviour knobs), reference (reference tables, fx),
population (users, creators, campaigns, sellers), timing (volumes, clocks), events (clean
events per log), dirt (SPEC §4 dirt), encode (NDJSON text), writer (partition files),
dataset (orchestration), cli (argparse).
"""

from pipelines.generate.dataset import DEFAULT_CHUNK_SIZE, DEFAULT_LATE_RATE, GenerateStats, generate_dataset
from pipelines.generate.dirt import DEFAULT_DIRT_RATE, DIRT_KINDS

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DIRT_RATE",
    "DEFAULT_LATE_RATE",
    "DIRT_KINDS",
    "GenerateStats",
    "generate_dataset",
]
