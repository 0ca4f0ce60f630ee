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


def _with(event_id: str, extra: str) -> str:
    """GOOD with another id and ``extra`` members appended (``extra`` starts with a comma)."""
    return GOOD.replace('"e1"', f'"{event_id}"')[:-1] + extra + "}"


def test_extra_members_take_the_python_check_only_where_a_value_may_be_nan_or_a_comma_trails(
    data_dir: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines with undeclared members are proven by no shortcut; a word holding "nan" or "inf" in their
    strings ("financial", "influencer") must not send them one by one to Python (2.5x slower landing)."""
    from pipelines.landing import rules_sql

    checked: list[str] = []
    strict = rules_sql.strict_json_object
    monkeypatch.setattr(rules_sql, "strict_json_object", lambda raw: checked.append(raw) or strict(raw))
    plain = _with("plain", ',"device":{"os":"ios","v":"17.1"},"tags":["a","b"],"note":"financial information"')
    words = _with("words", ',"who":"influencer","x":"INFO","y":"nanny"')
    nested_nan = _with("nested-nan", ',"device":{"scores":[1, -NaN]}')
    looks_like_one = _with("in-a-string", ',"note":"ratio: NaN, then [inf"')  # checked, and fine
    trailing = _with("trailing", ',"tags":["a",]')
    write_raw(data_dir.root, "impressions", DAY.isoformat(), [plain, words, nested_nan, looks_like_one, trailing])
    stats = land_partition(data_dir, "impressions", DAY)
    assert (stats.accepted, stats.by_reason) == (3, {"malformed": 2})
    assert sorted(checked) == sorted([nested_nan, looks_like_one, trailing])


def test_a_declared_name_given_twice_is_found_however_it_is_spelled(data_dir: DataDir) -> None:
    """Only a repeated declared name changes a value (the last wins); an escape may spell it."""
    import duckdb

    lines = [
        _with("escaped", ',"pr\\u0069ce":9.5'),  # "price" again, written with an escape
        _with("plain", ',"price":7.5'),
        _with("undeclared", ',"x":1,"x":2'),  # changes no value
        _with("nested", ',"x":{"price":3}'),  # not a member of the line's object
        _with("in-a-value", ',"x":"\\"price\\":4"'),
    ]
    write_raw(data_dir.root, "impressions", DAY.isoformat(), lines)
    assert land_partition(data_dir, "impressions", DAY).accepted == 5
    files = sorted(str(p) for p in data_dir.landing_partition("impressions", DAY).glob("*/*.parquet"))
    prices = dict(duckdb.sql(f"SELECT event_id, price FROM read_parquet({files})").fetchall())
    assert prices == {"escaped": 9.5, "plain": 7.5, "undeclared": 5.0, "nested": 5.0, "in-a-value": 5.0}


def test_lines_nested_deeper_than_pythons_recursion_limit_are_read(data_dir: DataDir) -> None:
    """json.loads raises RecursionError near 1,000 levels; inside the landing query that failed the whole
    day. Such lines are read on a thread with a large stack (RFC 8259 §9: up to 1,000,000 levels)."""
    deep = "[" * 3000 + "]" * 3000
    lines = [
        _with("deep-repeat", f',"x":{deep},"price":7'),  # the last price wins
        _with("deep-nan", f',"x":{deep},"y":NaN'),
        _with("deep-comma", f',"x":[{deep},]'),
        _with("deep-fine", f',"x":{deep},"note":"ratio: nan"'),  # checked strictly, and strict
        _with("too-deep", ',"x":' + "[" * 1_000_001 + "]" * 1_000_001 + ',"y":inf'),
    ]
    write_raw(data_dir.root, "impressions", DAY.isoformat(), lines)
    stats = land_partition(data_dir, "impressions", DAY)
    assert (stats.accepted, stats.by_reason) == (2, {"malformed": 3})
    files = sorted(str(p) for p in data_dir.landing_partition("impressions", DAY).glob("*/*.parquet"))
    import duckdb

    prices = dict(duckdb.sql(f"SELECT event_id, price FROM read_parquet({files})").fetchall())
    assert prices == {"deep-repeat": 7.0, "deep-fine": 5.0}
