"""DuckDB's JSON parser is lenient where RFC 8259 is not: those lines are malformed (rule 1)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines.lake import DataDir
from pipelines.landing.land import land_partition
from tests.builders import impression, write_raw

DAY = dt.date(2025, 3, 5)
T = "2025-03-05T10:00:00Z"
GOOD = json.dumps(impression("e1", T), separators=(",", ":"))


@pytest.mark.parametrize(
    "line",
    [
        GOOD.replace('"price":5.0', '"price":nan'),
        GOOD.replace('"price":5.0', '"price":inf'),
        GOOD.replace('"price":5.0', '"price":-Inf'),
        GOOD.replace('"price":5.0', '"price":INFINITY'),
        GOOD[:-1] + ',"extra":[1,NAN]}',  # in a field the pipeline does not even read
        GOOD[:-1] + ",\t}",
        GOOD[:-1] + ',"extra":[1 ,2, ]}',
    ],
)
def test_lenient_json_is_malformed(data_dir: DataDir, line: str) -> None:
    write_raw(data_dir.root, "impressions", DAY.isoformat(), [line])
    stats = land_partition(data_dir, "impressions", DAY)
    assert stats.by_reason == {"malformed": 1}


def test_words_with_nan_or_inf_inside_strings_are_fine(data_dir: DataDir) -> None:
    rows = [impression("nan-inf", T, user_id="infinity_nanny"), impression("e2", T, campaign_id="Info,}")]
    write_raw(data_dir.root, "impressions", DAY.isoformat(), rows)
    stats = land_partition(data_dir, "impressions", DAY)
    assert (stats.accepted, stats.by_reason) == (2, {})
