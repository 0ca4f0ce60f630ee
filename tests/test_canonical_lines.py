"""The canonical-line shortcut of rule 1 (``canonical_line_sql``) never changes an outcome.

Most lines are the minified object of the declared members in their declared order. Landing proves
those strict by rebuilding them from the parsed values, which is cheaper than counting colons. The
shortcut must vouch only for lines that are strict, and must give every line the same reason and the
same values as the slower proofs; these lines are minified (where the shortcut applies), unlike most
of tests/test_landing_rules.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

from pipelines.contract import FIELDS
from pipelines.landing import rules_sql
from tests.builders import impression, order

T = "2025-03-05T10:00:00Z"
ARRIVAL = "2025-03-05"


def minified(row: dict) -> str:
    return json.dumps(row, separators=(",", ":"))


GOOD = minified(impression("e1", T))
ORDER_NULL = minified(order("o-null", T))  # "affiliate_creator_id":null
ORDER_SET = minified(order("o-set", T, affiliate_creator_id="cr9", affiliate_rate=0.1))
ORDER_ABSENT = minified({k: v for k, v in order("o-absent", T).items() if k != "affiliate_creator_id"})

IMPRESSION_LINES = [
    GOOD,
    GOOD.replace('"price":5.0', '"price":NaN'),
    GOOD.replace('"price":5.0', '"price":nan'),
    GOOD.replace('"price":5.0', '"price":-Infinity'),
    GOOD.replace('"price":5.0', '"price":INF'),
    GOOD.replace('"country":"US"', '"country":NaN'),
    GOOD.replace('"country":"US"', '"country":{"a":NaN}'),
    GOOD.replace('"country":"US"', '"country":{"a":1}'),
    GOOD.replace('"country":"US"', '"country":[1,2,]'),
    GOOD.replace('"user_id":"u1"', '"user_id":NaN'),
    GOOD.replace('"user_id":"u1"', '"user_id":-Infinity'),
    GOOD.replace('"user_id":"u1"', '"user_id":42'),
    GOOD.replace('"user_id":"u1"', '"user_id":-42'),
    GOOD.replace('"user_id":"u1"', '"user_id":4.0'),
    GOOD.replace('"user_id":"u1"', '"user_id":"u\\"1"'),
    GOOD.replace('"user_id":"u1"', '"user_id":"\\u0075\\u0031"'),
    GOOD.replace('"price":5.0', '"price":5.00'),
    GOOD.replace('"price":5.0', '"price":5'),
    GOOD.replace('"price":5.0', '"price":5e0'),
    GOOD.replace('"price":5.0', '"price":1e2'),
    GOOD.replace('"price":5.0', '"price":-5.0'),
    GOOD.replace('"clicked":false', '"clicked":true'),
    GOOD.replace('"clicked":false', '"clicked":nan'),
    GOOD.replace('"clicked":false', '"clicked":null'),
    GOOD[:-1] + ",}",
    GOOD[:-1] + ',"note":NaN}',
    GOOD[:-1] + ',"price":7.5}',  # a name given twice: the last value wins
    GOOD.replace('{"event_id":"e1",', '{"event_id":"e1","event_id":"e2",'),
    GOOD.replace(",", ", "),
    GOOD.replace(":", ": ", 1),
    GOOD + " ",
    GOOD.replace("T10:00:00Z", "T10:00:00+00:00"),
    GOOD.replace("T10:00:00Z", "T10:00:00.1234567Z"),
    GOOD.replace("T10:00:00Z", "T24:00:00Z"),
    GOOD.replace('"country":"US"', '"country":"NaN"'),  # a word inside a string is fine
]
ORDER_LINES = [
    ORDER_NULL,
    ORDER_SET,
    ORDER_ABSENT,
    ORDER_NULL.replace('"affiliate_creator_id":null', '"affiliate_creator_id":NaN'),
    ORDER_NULL.replace('"affiliate_creator_id":null', '"affiliate_creator_id":nan'),
    ORDER_NULL.replace('"affiliate_creator_id":null', '"affiliate_creator_id":7'),
    ORDER_NULL.replace('"affiliate_creator_id":null', '"affiliate_creator_id":"null"'),
    ORDER_NULL[:-1] + ',"affiliate_creator_id":"cr2"}',
    ORDER_NULL.replace(',"affiliate_rate":0.0}', ',"affiliate_rate":0.0,}'),
]


def landed(tmp_path: Path, log: str, lines: list[str], *, canonical: bool, monkeypatch) -> list[tuple]:
    """Every line's reason and typed values, by landing's SELECT (with or without the shortcut)."""
    if not canonical:
        monkeypatch.setattr(rules_sql, "canonical_line_sql", lambda fields: "false")
    path = tmp_path / f"{log}-{canonical}.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    con = duckdb.connect()
    rules_sql.register_udfs(con)
    select = rules_sql.landing_select(log, [path], ARRIVAL)
    columns = ", ".join(["raw", "reason", "event_id", "event_ts"] + [f.name for f in FIELDS[log]])
    rows = con.sql(f"SELECT {columns} FROM ({select}) ORDER BY raw").fetchall()
    monkeypatch.undo()
    # NaN is not equal to itself: compare it by name
    return [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row) for row in rows]


@pytest.mark.parametrize(("log", "lines"), [("impressions", IMPRESSION_LINES), ("orders", ORDER_LINES)])
def test_the_shortcut_changes_no_reason_and_no_value(tmp_path: Path, monkeypatch, log: str, lines: list[str]) -> None:
    fast = landed(tmp_path, log, lines, canonical=True, monkeypatch=monkeypatch)
    slow = landed(tmp_path, log, lines, canonical=False, monkeypatch=monkeypatch)
    assert len(fast) == len(lines)
    assert fast == slow


def test_the_lines_the_shortcut_lets_through_are_exactly_the_canonical_ones(tmp_path: Path, monkeypatch) -> None:
    rows = landed(tmp_path, "impressions", IMPRESSION_LINES, canonical=True, monkeypatch=monkeypatch)
    fast = {row[0]: row[1] for row in rows}
    assert fast[GOOD] is None
    for bad in ('"price":NaN', '"price":nan', '"country":{"a":NaN}', '"user_id":-Infinity', '"clicked":nan'):
        assert fast[next(line for line in IMPRESSION_LINES if bad in line)] == "malformed", bad
    assert fast[GOOD[:-1] + ",}"] == "malformed"
    assert fast[GOOD[:-1] + ',"note":NaN}'] == "malformed"


def test_a_present_null_and_an_absent_nullable_member_are_both_accepted(tmp_path: Path, monkeypatch) -> None:
    rows = landed(tmp_path, "orders", [ORDER_NULL, ORDER_ABSENT, ORDER_SET], canonical=True, monkeypatch=monkeypatch)
    assert {row[2]: row[1] for row in rows} == {"o-null": None, "o-absent": None, "o-set": None}


def canonical_flags(tmp_path: Path, log: str, lines: list[str]) -> dict[str, bool]:
    """Which lines the shortcut itself vouches for (the classification before the slower proofs)."""
    path = tmp_path / f"{log}-flags.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    select = rules_sql.landing_select(log, [path], ARRIVAL)
    head = select.split("checked AS (")[0].rstrip().rstrip(",")
    sql = f"{head} SELECT raw, coalesce({rules_sql.canonical_line_sql(FIELDS[log])}, false) FROM texts"
    return dict(duckdb.sql(sql).fetchall())


def test_the_shortcut_takes_the_usual_lines_and_leaves_the_rest(tmp_path: Path) -> None:
    flags = canonical_flags(tmp_path, "impressions", IMPRESSION_LINES)
    assert flags[GOOD]
    assert flags[GOOD.replace('"user_id":"u1"', '"user_id":42')]
    assert flags[GOOD.replace("T10:00:00Z", "T10:00:00+00:00")]
    left_out = ('"price":NaN', '"price":1e2', '"price":5.00', '"price":-5.0', '"country":{"a":1}')
    for text in (*left_out, '"user_id":"u\\"1"'):
        line = next(line for line in IMPRESSION_LINES if text in line)
        # escapes are kept as written, so an escaped string may be canonical; the others may not
        assert flags[line] == (text == '"user_id":"u\\"1"'), text
    assert not flags[GOOD.replace(",", ", ")]
    assert not flags[GOOD[:-1] + ',"price":7.5}']
    order_flags = canonical_flags(tmp_path, "orders", ORDER_LINES)
    assert order_flags[ORDER_NULL] and order_flags[ORDER_SET]
    assert not order_flags[ORDER_ABSENT]
