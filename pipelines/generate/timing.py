"""When events happen: daily volumes with a weekday cycle, times with a local diurnal cycle."""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipelines.generate import markets as mk
from pipelines.generate.rng import Sampler

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
EPOCH = dt.date(1970, 1, 1)
_HOUR_SAMPLER = Sampler(mk.DIURNAL)
_LATENESS_SAMPLER = Sampler(mk.LATENESS_MIX)
_WEEKDAY = np.array(mk.WEEKDAY) / np.mean(mk.WEEKDAY)


def epoch_day(day: dt.date) -> int:
    return (day - EPOCH).days


def daily_counts(day: dt.date, events_per_day: int) -> dict[str, int]:
    """Events per log on `day`: events_per_day is the weekly mean, weekends run higher."""
    total = events_per_day * float(_WEEKDAY[day.weekday()])
    return {log: round(total * share) for log, share in mk.LOG_SHARE.items()}


def times_in_day(rng: np.random.Generator, day: int, utc_offset: np.ndarray) -> np.ndarray:
    """Epoch milliseconds on epoch day `day`, following the diurnal curve of each event's
    local clock (offset in hours per event), wrapped into the UTC day."""
    n = len(utc_offset)
    local_hour = _HOUR_SAMPLER.draw(rng, n).astype(np.int64)
    utc_hour = (local_hour - utc_offset) % 24
    return day * DAY_MS + utc_hour * HOUR_MS + rng.integers(0, HOUR_MS, n)


def lateness(rng: np.random.Generator, n: int, late_rate: float) -> np.ndarray:
    """Days between event date and arrival: 0 mostly, 1–3 for the legitimately late."""
    late = rng.random(n) < late_rate
    days = _LATENESS_SAMPLER.draw(rng, n).astype(np.int64) + 1
    return np.where(late, days, 0)
