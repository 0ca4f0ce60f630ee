"""Schema-violation dirt as line edits gives, byte for byte, what one regular expression per break gives.

The regular expressions below are the readable definition of each break (the generator used them until
their thirty compilations a chunk cost a tenth of its time); the line edits must agree with them on every
log's encoded lines, and each broken line must still be caught by rule 2 and by nothing before it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.contract import FIELDS, LOGS, JsonType, Reason
from pipelines.generate import generate_dataset
from pipelines.generate.schema_breaks import BREAKS, Break, Edit, schema_break
from pipelines.landing.rules_sql import landing_select, register_udfs

_VALUE = r'("[^"]*"|[^,}]*)'


def _regex_breaks(log: str) -> list[tuple[str, str]]:
    """(regex, replacement) per break, in the order of BREAKS[log]."""
    out = [
        (r'"event_id":"[^"]*"', '"event_id":""'),
        (r'"event_id":"[^"]*",', ""),
        (r'"event_time":"(\d{4})-\d\d-\d\dT', '"event_time":"${1}-13-40T'),
        (r'"event_time":"([^"]*?)(Z|\+00:00)"', '"event_time":"${1}"'),
        (r'"event_time":"[^"]*"', '"event_time":1740787200000'),
        (r'"country":"[^"]*"', '"country":840'),
    ]
    for f in FIELDS[log][1:]:
        if f.json_type is JsonType.NULLABLE_STRING:
            out.append((rf'"{f.name}":("[^"]*"|null)', f'"{f.name}":4711'))
            continue
        out.append((rf',"{f.name}":{_VALUE}', ""))
        out.append((rf'"{f.name}":{_VALUE}', f'"{f.name}":null'))
        if f.json_type in (JsonType.NUMBER, JsonType.INTEGER):
            out.append((rf'"{f.name}":([^,}}]*)', f'"{f.name}":"${{1}}"'))
        if f.json_type is JsonType.INTEGER:
            out.append((rf'"{f.name}":(-?\d+)', f'"{f.name}":${{1}}.5'))
        if f.json_type is JsonType.BOOLEAN:
            out.append((rf'"{f.name}":(true|false)', f'"{f.name}":1'))
            out.append((rf'"{f.name}":(true|false)', f'"{f.name}":"yes"'))
    return out


def _by_regex(log: str, lines: pl.Series, rng: np.random.Generator) -> pl.Series:
    """Each line through its own break's regular expression (drawn as schema_break draws it)."""
    variants = _regex_breaks(log)
    which = rng.integers(0, len(variants), len(lines))
    out = lines.clone()
    for i, (pattern, replacement) in enumerate(variants):
        rows = np.flatnonzero(which == i)
        if len(rows):
            out = out.scatter(rows, lines.gather(rows).str.replace(pattern, replacement))
    return out


@pytest.fixture(scope="module")
def encoded_lines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.Series]:
    """Clean encoded lines of every log (both time zone spellings, nulls and strings of the affiliate)."""
    root = tmp_path_factory.mktemp("clean")
    generate_dataset(root, dt.date(2025, 3, 1), 1, 20_000, seed=3, dirt_rate=0)
    out = {}
    for log in LOGS:
        text = "".join(p.read_text() for p in sorted((root / "raw" / log).glob("dt=*/*.jsonl")))
        out[log] = pl.Series("line", text.splitlines(keepends=True)[:1500], dtype=pl.Utf8)
    return out


@pytest.mark.parametrize("log", LOGS)
def test_line_edits_equal_the_regular_expressions(encoded_lines: dict[str, pl.Series], log: str) -> None:
    lines = encoded_lines[log]
    assert len(_regex_breaks(log)) == len(BREAKS[log])
    for seed in range(3):
        expected = _by_regex(log, lines, np.random.default_rng(seed))
        got = schema_break(log, lines, np.random.default_rng(seed))
        assert got.to_list() == expected.to_list()


@pytest.mark.parametrize("log", LOGS)
def test_chunks_of_one_or_two_lines_equal_the_regular_expressions(
    encoded_lines: dict[str, pl.Series], log: str
) -> None:
    """Small chunks (a small day, a small --chunk-size) hand over one or two lines: polars treats a
    one-row column like a scalar in places, which once broke the edits."""
    lines = encoded_lines[log]
    drawn = set()
    for seed in range(120):
        for n in (1, 2):
            chunk = lines.slice(seed * 2 % (len(lines) - 1), n)
            expected = _by_regex(log, chunk, np.random.default_rng(seed))
            assert schema_break(log, chunk, np.random.default_rng(seed)).to_list() == expected.to_list()
        drawn.add(int(np.random.default_rng(seed).integers(0, len(BREAKS[log]), 1)[0]))
    assert drawn == set(range(len(BREAKS[log])))  # every break, alone in its chunk


def test_every_edit_kind_is_used() -> None:
    used = {b.edit for breaks in BREAKS.values() for b in breaks}
    assert used == set(Edit)
    assert Break("event_id", Edit.VALUE, '""') in BREAKS["impressions"]
    assert Break("price", Edit.QUOTE) in BREAKS["impressions"]


def test_an_empty_chunk_stays_empty() -> None:
    assert schema_break("gifts", pl.Series("line", [], dtype=pl.Utf8), np.random.default_rng(0)).len() == 0


@pytest.mark.parametrize("log", LOGS)
def test_every_broken_line_is_a_schema_violation(encoded_lines: dict[str, pl.Series], log: str, tmp_path: Path) -> None:
    """Landing's own SQL classifies each broken line as rule 2, whichever break it got."""
    lines = encoded_lines[log][:300]
    broken = schema_break(log, lines, np.random.default_rng(11))
    path = tmp_path / "part-0.jsonl"
    path.write_text("".join(broken.to_list()))
    with duckdb.connect() as con:
        register_udfs(con)
        reasons = con.sql(f"SELECT reason, count(*) FROM ({landing_select(log, [path], '2025-03-01')}) GROUP BY 1")
        assert dict(reasons.fetchall()) == {str(Reason.SCHEMA_VIOLATION): len(lines)}
