"""revwh: the revenue warehouse of a short-video platform (Dagster code location)."""

import os

# polars' jemalloc hands freed pages back to the kernel after 0.5 s (dirty) / 1 s (muzzy), its
# compiled-in defaults. The staged step frees and re-allocates gigabytes every few seconds, so it
# page-faulted the same memory back in: on 5 x 3M impressions 1.5M minor faults and 3.6-4.4 s of
# kernel time out of 21 CPU s. Keeping freed pages for 2 s cut its CPU by 8 %, for 0.06 GiB more
# peak RSS there and 0.12 GiB on a 30M-event day (docs/performance.md). Read once, when polars first allocates, so it is
# set here, before any module of the package imports polars; a value in the environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:2000,muzzy_decay_ms:2000")

# polars' streaming engine cuts data into morsels of 100k rows by default. The facts build unions
# five sources of some thirty columns into one Parquet sink and holds several morsels per source in
# flight: on a 30M-event day that step alone peaked at 2.5 GiB, 1.7 GiB with 20k-row morsels, and
# as fast. In that day's benchmark (with staged row groups of 256k rows, pipelines.staged.stage) the
# facts step went from 2.88 to 1.6 GiB; no stage got slower, and the 5 x 3M benchmark did not move
# (docs/performance.md). A value in the environment wins.
os.environ.setdefault("POLARS_IDEAL_MORSEL_SIZE", "20000")
