"""`make bench` / `python -m pipelines.bench`: throughput, stage times and memory of the pipeline.

Modes (``--mode``):

- ``full`` (default): generate ``--days`` × ``--events-per-day`` events, run the whole
  pipeline through Dagster (``pipelines.runner.execute_range``, in this process), then
  compute revenue by stream with ONE bare DuckDB statement over the same raw files
  (``read_json`` joined to the reference tables, dirt rules aside): the engine's ceiling,
  timed ``--repeats`` times (3 by default: once before the pipeline, the others after it, so
  the host's drift falls on both sides; the median counts).
  Reports events/s end to end, time per stage (from Dagster's step events), the share
  of pandera validation, peak RSS of this process and the ratio pipeline / bare DuckDB.
  ``--days 1 --events-per-day 30000000`` measures the peak RSS of one large day.
  ``--ruled`` also times the contract's rules as ONE DuckDB statement that writes nothing
  (``pipelines.bench.ruled``): ruled / bare is what the rules cost in the engine, pipeline /
  ruled what the warehouse adds; its revenue must equal the marts.
- ``incremental``: for each history length H in ``--histories`` (default 7,90): land and
  stage H days, then time the run of the next day (its arrival days land fresh). Every H
  ends on the same calendar day, so the timed runs do the same work; each is timed
  ``--repeats`` times from the same state, the histories' runs alternating (ABBA), and the
  median counts. The goal is the same cost whatever H.
- ``all``: both.

The generator and the bare statement run in child processes so that this process's
peak RSS (``ru_maxrss``) is the pipeline's. Results are printed and written as JSON
(``--out``, default ``bench-results.json``). No pass/fail: the goals are reported next
to the numbers. Timings on a shared machine vary; CPU seconds and the load average
are recorded to help read them.

One module a job: ``measure`` (stages, CPU, RSS), ``bare`` and ``ruled`` (the two yardsticks),
``runs`` (generator and pipeline runs), ``full`` and ``incremental`` (the modes), ``cli``.
"""

from __future__ import annotations

from pipelines.bench.bare import bare_sql, reference_ctes, stream_differences
from pipelines.bench.full import bench_full
from pipelines.bench.incremental import bench_incremental
from pipelines.bench.measure import STAGES, lower_median, median_run, peak_rss_by_stage, step_stages, summarize_run

__all__ = [
    "STAGES",
    "bare_sql",
    "bench_full",
    "bench_incremental",
    "lower_median",
    "median_run",
    "peak_rss_by_stage",
    "reference_ctes",
    "step_stages",
    "stream_differences",
    "summarize_run",
]
