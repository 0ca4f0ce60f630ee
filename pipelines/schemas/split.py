"""Split a frame into rows that pass a pandera model's value checks and rows that don't."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pandera.polars as pa
import polars as pl


class ValidationTimer:
    """Seconds spent inside pandera validation in this process (read by the benchmark)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    @contextmanager
    def measure(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - began
                self.calls += 1


VALIDATION_TIMER = ValidationTimer()


def failing_rows(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.Series:
    """Boolean mask: True where a row breaks a value check of ``schema``.

    pandera runs every check vectorised and reports failing row indexes; a
    schema-level error (a wrong dtype, a missing column) is a bug upstream, not
    bad data, so it is raised.
    """
    mask = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).alias("failed")
    if frame.height == 0:
        return mask
    try:
        with VALIDATION_TIMER.measure():
            schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        row_level = cases.filter(pl.col("index").is_not_null())
        if row_level.height < cases.height:
            raise
        bad = row_level.get_column("index").unique().cast(pl.Int64)
        mask = pl.int_range(frame.height, eager=True).is_in(bad.implode()).alias("failed")
    return mask
