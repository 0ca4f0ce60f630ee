"""revwh: the revenue warehouse of a short-video platform (Dagster code location)."""
