"""SPEC §4 rules 1–4, one hand-written line per case, checked at the landing layer."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from pipelines.lake import DataDir
from pipelines.landing.land import land_partition
from tests.builders import coin_purchase, impression, order, write_raw

ARRIVAL = "2025-03-05"
DAY = dt.date(2025, 3, 5)
T = "2025-03-05T10:00:00Z"


def land(data: DataDir, log: str, lines: list, name: str = "part-0.jsonl"):
    write_raw(data.root, log, ARRIVAL, lines, name)
    return land_partition(data, log, DAY)


def reasons(data: DataDir, log: str = "impressions") -> dict[str, str | None]:
    q = data.quarantine_file("landing", log, DAY)
    rows = duckdb.sql(f"SELECT coalesce(event_id, raw), reason FROM read_parquet('{q}')").fetchall()
    return dict(rows)


def accepted_ids(data: DataDir, log: str = "impressions") -> set[str]:
    files = sorted(data.landing_partition(log, DAY).glob("*/*.parquet"))
    if not files:
        return set()
    paths = ", ".join(f"'{f}'" for f in files)
    return {r[0] for r in duckdb.sql(f"SELECT event_id FROM read_parquet([{paths}])").fetchall()}


def raw_line(row: dict, **changes) -> str:
    return json.dumps(row | changes)


@pytest.mark.parametrize(
    "line",
    [
        '{"event_id":"e1","event_time":"2025-03-05T10:00:00Z"',  # truncated
        "[1, 2]",  # an array, not an object
        '"just a string"',
        "null",
        "42",
        "not json at all",
        raw_line(impression("e1", T))[:-1] + ",}",  # trailing comma
        raw_line(impression("e1", T)).replace('"price": 5.0', '"price": NaN'),
        raw_line(impression("e1", T)) + " trailing",
        # what yyjson accepts and RFC 8259 does not, wherever it hides
        raw_line(impression("e1", T))[:-1] + ", }",  # trailing comma before blanks
        raw_line(impression("e1", T))[:-1] + ",\t}",
        json.dumps(impression("e1", T), separators=(",", ":"))[:-1] + ",}",  # minified, trailing comma
        raw_line(impression("e1", T))[:-1] + ', "note": NaN}',  # NaN in an undeclared field
        raw_line(impression("e1", T))[:-1] + ', "note": [1, -Infinity]}',
        raw_line(impression("e1", T))[:-1] + ', "note": [1, 2,]}',  # trailing comma in a nested array
        raw_line(impression("e1", T))[:-1] + ', "note": {"a": 1,}}',
        raw_line(impression("e1", T)).replace('"price": 5.0', '"price": -inf'),
        raw_line(impression("e1", T)).replace('"price": 5.0', '"price": Infinity'),
        raw_line(impression("e1", T)).replace('"country": "US"', '"country": nan'),
        raw_line(impression("e1", T)).replace('"user_id": "u1"', '"user_id": NaN'),
        # other JSON extensions: the parser itself refuses them
        raw_line(impression("e1", T))[:-1] + ", /* note */}",
        raw_line(impression("e1", T)).replace('"price": 5.0', "'price': 5.0"),
        raw_line(impression("e1", T)).replace('"price": 5.0', '"price": +5'),
        raw_line(impression("e1", T)).replace('"price": 5.0', '"price": 05'),
        raw_line(impression("e1", T)).replace('"price": 5.0', '"price": .5'),
        raw_line(impression("e1", T)).replace('"price": 5.0', '"price": 0x5'),
        # an escaped quote must not let a NaN pass as part of a string
        raw_line(impression("e1", T))[:-1] + ', "note": "a\\"b", "x": NaN}',
        # a lone UTF-16 surrogate encodes no character
        raw_line(impression("e1", T)).replace('"user_id": "u1"', '"user_id": "u\\ud800"'),
    ],
)
def test_rule1_malformed(data_dir: DataDir, line: str) -> None:
    stats = land(data_dir, "impressions", [line])
    assert stats.by_reason == {"malformed": 1}
    assert stats.accepted == 0


def _without(row: dict, field: str) -> dict:
    return {k: v for k, v in row.items() if k != field}


@pytest.mark.parametrize(
    "row",
    [
        _without(impression("e1", T), "price"),  # missing field
        impression("e1", T, country=None),  # null field
        impression("e1", T, price="5.0"),  # a string where a number is expected
        impression("e1", T, clicked=1),  # non-bool clicked
        impression("e1", T, clicked="true"),
        impression("", T),  # empty event_id
        impression(7, T),  # event_id not a string
        impression("e1", "2025-03-05T10:00:00"),  # no time zone
        impression("e1", "2025-03-05T10:00:00+01:00"),  # not UTC
        impression("e1", "2025-02-30T10:00:00Z"),  # no such day
        impression("e1", "2025-03-05 10:00:00Z"),  # not ISO-8601's T
        impression("e1", "2025-03-05T24:00:00Z"),
        impression("e1", "yesterday"),
        impression("e1", 1741168800),  # a number, not a string
        impression("e1", T, ad_format=3),  # a number where a string is expected
        impression("e1", T, price=True),
    ],
)
def test_rule2_schema_violation(data_dir: DataDir, row: dict) -> None:
    stats = land(data_dir, "impressions", [row])
    assert stats.by_reason == {"schema_violation": 1}


@pytest.mark.parametrize(
    "row",
    [
        coin_purchase("e1", T, coins=2.5),  # a fraction where an integer is expected
        coin_purchase("e1", T, coins=70.0),  # an integer must be written as one
        coin_purchase("e1", T, user_age="30"),
        _without(coin_purchase("e1", T), "user_age"),
    ],
)
def test_rule2_integers(data_dir: DataDir, row: dict) -> None:
    stats = land(data_dir, "coin_purchases", [row])
    assert stats.by_reason == {"schema_violation": 1}


def test_rule2_affiliate_creator_id_may_be_null_or_absent(data_dir: DataDir) -> None:
    rows = [
        order("o-null", T, affiliate_creator_id=None),
        _without(order("o-absent", T), "affiliate_creator_id"),
        order("o-set", T, affiliate_creator_id="cr9", affiliate_rate=0.1),
        order("o-bad", T, affiliate_creator_id=["cr9"]),
        # SPEC §2 types it "string or null": unlike the untyped ids, an integer is the wrong JSON type
        order("o-int", T, affiliate_creator_id=123, affiliate_rate=0.1),
        _without(order("o-no-rate", T), "affiliate_rate"),
    ]
    stats = land(data_dir, "orders", rows)
    assert accepted_ids(data_dir, "orders") == {"o-null", "o-absent", "o-set"}
    assert reasons(data_dir, "orders") == {
        "o-bad": "schema_violation",
        "o-int": "schema_violation",
        "o-no-rate": "schema_violation",
    }
    assert stats.landed == 6


def test_accepted_forms(data_dir: DataDir) -> None:
    """Integer amounts, +00:00, fractions of any length, extra fields, escapes, spaces: all fine."""
    rows = [
        impression("int-price", T, price=5),
        impression("plus-zero", "2025-03-05T10:00:00+00:00"),
        impression("fraction", "2025-03-05T10:00:00.123456789Z"),
        impression("extra", T, extra_field={"nested": [1, 2]}, another=None),
        impression("escaped", T, user_id='u"1\\n'),
        impression("numeric-user", T, user_id=12345),
        impression("colons", T, user_id="u:1:2", note="a: b, c}", tags=["x:", "NaN", "inf,]"]),
        impression("words", T, country="IN", note="Infinity and nan are only words here"),
        impression("unicode", T, user_id="üsér", note="naïve"),
    ]
    lines = [json.dumps(r) for r in rows] + [json.dumps(impression("compact", T), separators=(",", ":"))]
    lines += ['  {"event_id": "leading-blanks", ' + json.dumps(impression("x", T))[17:]]
    lines += ["", "   ", "\t"]  # blank lines are ignored, not counted
    stats = land(data_dir, "impressions", lines)
    assert stats.by_reason == {}
    assert stats.landed == 11
    assert accepted_ids(data_dir) == {r["event_id"] for r in rows} | {"compact", "leading-blanks"}
    files = ", ".join(f"'{f}'" for f in sorted(data_dir.landing_partition("impressions", DAY).glob("*/*.parquet")))
    users = dict(duckdb.sql(f"SELECT event_id, user_id FROM read_parquet([{files}])").fetchall())
    sent = {r["event_id"]: str(r["user_id"]) for r in rows}
    assert {k: users[k] for k in sent} == sent  # escapes decoded, unicode and colons kept, integer ids as text


def test_rule3_future_event(data_dir: DataDir) -> None:
    stats = land(data_dir, "impressions", [impression("f1", "2025-03-06T00:00:00Z"), impression("ok", T)])
    assert reasons(data_dir) == {"f1": "future_event"}
    assert stats.accepted == 1


def test_rule4_late_arrival_boundary(data_dir: DataDir) -> None:
    rows = [
        impression("lag3", "2025-03-02T00:00:00Z"),  # 3 days late: kept
        impression("lag4", "2025-03-01T23:59:59.999Z"),  # 4 days late: quarantined
    ]
    land(data_dir, "impressions", rows)
    assert accepted_ids(data_dir) == {"lag3"}
    assert reasons(data_dir) == {"lag4": "late_arrival"}


def test_years_start_at_0000(data_dir: DataDir) -> None:
    """ISO 8601 and RFC 3339 allow year 0000 (1 BC), so such a time parses and is far too late; a year
    written with another number of digits does not parse."""
    rows = [
        impression("y0", "0000-01-01T00:00:00Z"),
        impression("y1", "0001-01-01T00:00:00Z"),
        impression("y5", "12025-03-05T10:00:00Z"),
        impression("ok", T),
    ]
    land(data_dir, "impressions", rows)
    assert reasons(data_dir) == {"y0": "late_arrival", "y1": "late_arrival", "y5": "schema_violation"}


def test_rule_order_schema_before_timeliness(data_dir: DataDir) -> None:
    """A copy that breaks several rules gets the reason of the first one."""
    land(data_dir, "impressions", [impression("both", "2025-01-01T00:00:00Z", price="x")])
    assert reasons(data_dir) == {"both": "schema_violation"}


def test_gzip_and_several_files(data_dir: DataDir) -> None:
    write_raw(data_dir.root, "impressions", ARRIVAL, [impression("gz", T)], "a.jsonl.gz")
    write_raw(data_dir.root, "impressions", ARRIVAL, [impression("plain", T)], "b.jsonl")
    write_raw(data_dir.root, "impressions", ARRIVAL, [], "empty.jsonl")
    write_raw(data_dir.root, "impressions", ARRIVAL, [impression("ignored", T)], "notes.txt")
    stats = land_partition(data_dir, "impressions", DAY)
    assert accepted_ids(data_dir) == {"gz", "plain"}
    assert stats.files == 3


def test_crlf_line_ends_a_byte_order_mark_and_a_last_line_without_newline(data_dir: DataDir) -> None:
    folder = data_dir.root / "raw" / "impressions" / f"dt={ARRIVAL}"
    folder.mkdir(parents=True)
    (folder / "crlf.jsonl").write_bytes(b"\r\n".join(json.dumps(impression(f"crlf{i}", T)).encode() for i in range(2)))
    (folder / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(impression("bom", T)).encode() + b"\n")
    (folder / "blanks.jsonl").write_bytes(json.dumps(impression("trailing-blanks", T)).encode() + b" \t\r\n")
    stats = land_partition(data_dir, "impressions", DAY)
    assert accepted_ids(data_dir) == {"crlf0", "crlf1", "bom", "trailing-blanks"}
    assert (stats.landed, stats.quarantined) == (4, 0)


def test_a_lone_carriage_return_ends_a_line(data_dir: DataDir) -> None:
    """LF, CRLF and a lone CR all end a line, as in DuckDB's reader and Python's universal newlines
    (``open(path)``, ``bytes.splitlines``): a line holding a CR is two lines, each judged alone."""
    from pipelines.quality.reconcile import count_raw_lines

    folder = data_dir.root / "raw" / "impressions" / f"dt={ARRIVAL}"
    folder.mkdir(parents=True)
    good = json.dumps(impression("cr", T)).encode()
    split = json.dumps(impression("split", T)).encode().replace(b', "user_id"', b',\r"user_id"')
    (folder / "cr.jsonl").write_bytes(good + b"\r" + split + b"\ngarb\rage\n")
    stats = land_partition(data_dir, "impressions", DAY)
    assert accepted_ids(data_dir) == {"cr"}
    assert (stats.landed, stats.by_reason) == (5, {"malformed": 4})
    assert count_raw_lines(data_dir, "impressions", DAY) == 5


@pytest.mark.parametrize(
    "ends",
    [
        (b"\r\n", b"\r", b"\n"),  # CRLF first, then a lone CR
        (b"\r\r\n", b"\r\r\n", b"\n"),  # CR before CRLF: a blank line between
        (b"\n", b"\r\n", b"\r"),
        (b"\r", b"\n\r", b"\r\n"),
    ],
)
def test_line_ends_of_every_kind_mixed_in_one_file(data_dir: DataDir, ends: tuple[bytes, ...]) -> None:
    """Whatever line end comes first, every later LF, CRLF or lone CR still ends a line (DuckDB's
    reader, left to itself, settles on the first kind it meets and then read 'B\\rC' as 'B')."""
    from pipelines.quality.reconcile import count_raw_lines

    folder = data_dir.root / "raw" / "impressions" / f"dt={ARRIVAL}"
    folder.mkdir(parents=True)
    ids = ["a", "b", "c", "d"]
    lines = [json.dumps(impression(i, T)).encode() for i in ids]
    (folder / "mixed.jsonl").write_bytes(b"".join(line + end for line, end in zip(lines, (*ends, b""), strict=True)))
    stats = land_partition(data_dir, "impressions", DAY)
    assert accepted_ids(data_dir) == set(ids)
    assert (stats.landed, stats.by_reason) == (4, {})
    assert count_raw_lines(data_dir, "impressions", DAY) == 4


def test_a_name_given_twice_keeps_its_last_value(data_dir: DataDir) -> None:
    """RFC 8259 leaves repeated names open; Python's, JavaScript's and Go's readers keep the last
    value, and so does landing (DuckDB's reader would keep the first)."""
    base = json.dumps(impression("base", T))[:-1]
    lines = [
        base.replace("base", "price-twice") + ', "price": 7.5, "user_id": "u\\u00e9"}',
        json.dumps(impression("bad-then-good", T, price="bad"))[:-1] + ', "price": 2}',
        base.replace("base", "good-then-bad") + ', "price": "bad"}',
        base.replace("base", "extra-twice") + ', "note": 1, "note": 2}',
    ]
    stats = land(data_dir, "impressions", lines)
    assert (stats.accepted, reasons(data_dir)) == (3, {"good-then-bad": "schema_violation"})
    files = ", ".join(f"'{f}'" for f in sorted(data_dir.landing_partition("impressions", DAY).glob("*/*.parquet")))
    rows = duckdb.sql(f"SELECT event_id, price, user_id FROM read_parquet([{files}]) ORDER BY 1").fetchall()
    assert rows == [("bad-then-good", 2.0, "u1"), ("extra-twice", 5.0, "u1"), ("price-twice", 7.5, "u\u00e9")]


def test_missing_folder_is_an_empty_partition(data_dir: DataDir) -> None:
    stats = land_partition(data_dir, "gifts", DAY)
    assert (stats.landed, stats.accepted, stats.quarantined) == (0, 0, 0)
    assert data_dir.quarantine_file("landing", "gifts", DAY).exists()


def test_quarantine_keeps_the_raw_line(data_dir: DataDir) -> None:
    line = '{"event_id": "broken", '
    land(data_dir, "impressions", [line])
    q = data_dir.quarantine_file("landing", "impressions", DAY)
    row = duckdb.sql(f"SELECT log, event_id, arrival_date, reason, raw FROM read_parquet('{q}')").fetchall()[0]
    assert row == ("impressions", None, DAY, "malformed", line)


NUMERIC_IDS = {
    "1e21": "1e+21",
    "1.5e-7": "1.5e-07",
    "1E2": "100.0",
    "1E400": "inf",
    "1.7976931348623157e308": "1.7976931348623157e+308",
    "12345678901234567890.5": "1.2345678901234567e+19",
    "-0.0": "-0.0",
    "-0": "0",
    "123456789012345678901234": "123456789012345678901234",
}


def test_quarantine_event_id_is_the_id_as_written_and_null_for_malformed_lines(data_dir: DataDir) -> None:
    good = raw_line(impression("e-nan", T))
    lines = [
        good.replace('"price": 5.0', '"price": NaN'),  # DuckDB's parser reads it; it is still malformed
        good.replace('"e-nan"', '"e-comma"')[:-1] + ",}",
        raw_line(impression(123, T)),  # a number is no event_id, but it is the id as written
        raw_line(impression(-7, T)),
        raw_line(impression(True, T)),
        raw_line(impression(None, T)),
        raw_line(impression("e-str", T, price="5")),
        # other numbers as Python's str(json.loads(line)["event_id"]) writes them (JSON.stringify writes 1e+21
        # as 1e21), integers of any size as their digits
        *(raw_line(impression(0, T)).replace('"event_id": 0', f'"event_id": {n}') for n in NUMERIC_IDS),
    ]
    land(data_dir, "impressions", lines)
    q = data_dir.quarantine_file("landing", "impressions", DAY)
    rows = duckdb.sql(f"SELECT raw, event_id, reason FROM read_parquet('{q}')").fetchall()
    assert {raw: (event_id, reason) for raw, event_id, reason in rows} == {
        lines[0]: (None, "malformed"),
        lines[1]: (None, "malformed"),
        lines[2]: ("123", "schema_violation"),
        lines[3]: ("-7", "schema_violation"),
        lines[4]: (None, "schema_violation"),
        lines[5]: (None, "schema_violation"),
        lines[6]: ("e-str", "schema_violation"),
        **{line: (want, "schema_violation") for line, want in zip(lines[7:], NUMERIC_IDS.values(), strict=True)},
    }


def test_relanding_replaces_and_skips_when_unchanged(data_dir: DataDir) -> None:
    land(data_dir, "impressions", [impression("a", T), impression("b", T)])
    again = land_partition(data_dir, "impressions", DAY)
    assert again.skipped and again.accepted == 2
    write_raw(data_dir.root, "impressions", ARRIVAL, [impression("a", T)])  # file shrank
    third = land_partition(data_dir, "impressions", DAY)
    assert not third.skipped
    assert accepted_ids(data_dir) == {"a"}


def test_invalid_utf8_line_is_malformed_not_a_crash(data_dir: DataDir) -> None:
    folder = data_dir.root / "raw" / "impressions" / f"dt={ARRIVAL}"
    folder.mkdir(parents=True)
    good = json.dumps(impression("good", T)).encode()
    (folder / "part-0.jsonl").write_bytes(
        good + b"\n" + b'{"event_id": "bad\xff\xfe"}\n' + good.replace(b"good", b"also")
    )
    stats = land_partition(data_dir, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (3, 2, {"malformed": 1})
    from pipelines.quality.reconcile import count_raw_lines

    assert count_raw_lines(data_dir, "impressions", DAY) == 3


def test_raw_line_count_skips_blank_lines_only(data_dir: DataDir) -> None:
    """The reconciliation's independent count: whitespace-only lines are not lines, anything else is."""
    from pipelines.quality.reconcile import count_raw_lines

    folder = data_dir.root / "raw" / "impressions" / f"dt={ARRIVAL}"
    folder.mkdir(parents=True)
    good = json.dumps(impression("good", T))
    lines = [good, "", "   ", "\t\r", f"  {good}", "not json", "}", " x ", good]
    (folder / "part-0.jsonl").write_text("\n".join(lines) + "\n")
    assert count_raw_lines(data_dir, "impressions", DAY) == 6
    assert land_partition(data_dir, "impressions", DAY).landed == 6


def test_lines_holding_the_readers_separator_are_malformed_whole_not_cut_or_dropped(data_dir: DataDir) -> None:
    """The line reader splits at bytes valid JSON never holds (0x1F 0x1E); a line that holds them is
    malformed, is not cut to a valid head, and keeps its text in the quarantine."""
    from pipelines.duck import LINE_SEPARATOR
    from pipelines.quality.reconcile import count_raw_lines

    good = json.dumps(impression("good", T))
    odd = [
        json.dumps(impression("cut", T)) + LINE_SEPARATOR + " garbage",  # a valid head
        LINE_SEPARATOR,
        LINE_SEPARATOR + json.dumps(impression("tail", T)),
        "\x1e" + LINE_SEPARATOR + "\x1e",
        LINE_SEPARATOR + LINE_SEPARATOR,  # text after a second separator is not kept, the line is
    ]
    folder = data_dir.root / "raw" / "impressions" / f"dt={ARRIVAL}"
    folder.mkdir(parents=True)
    (folder / "part-0.jsonl").write_text("\n".join([good, *odd, "", good.replace("good", "also")]) + "\n")
    stats = land_partition(data_dir, "impressions", DAY)
    assert (stats.landed, stats.accepted, stats.by_reason) == (7, 2, {"malformed": 5})
    assert count_raw_lines(data_dir, "impressions", DAY) == 7
    assert accepted_ids(data_dir) == {"good", "also"}
    q = data_dir.quarantine_file("landing", "impressions", DAY)
    kept = sorted(r[0] for r in duckdb.sql(f"SELECT raw FROM read_parquet('{q}')").fetchall())
    assert kept == sorted([*odd[:-1], LINE_SEPARATOR])


def test_a_line_of_several_megabytes_is_read_whole(data_dir: DataDir) -> None:
    """The SPEC sets no line length: an event with a 3 MB extra field is accepted (DuckDB's reader
    stops at 2 MB by default)."""
    stats = land(data_dir, "impressions", [impression("long", T) | {"note": "x" * 3_000_000}, impression("a", T)])
    assert (stats.landed, stats.accepted) == (2, 2)


def test_large_files_are_scanned_alone_and_land_the_same(data_dir: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each large file gets a scan of its own (so DuckDB splits it across threads); the day's
    result, rejected undecodable lines and the independent raw count included, does not change."""
    import pipelines.duck as duck
    from pipelines.quality.reconcile import count_raw_lines

    folder = data_dir.root / "raw" / "impressions" / f"dt={ARRIVAL}"
    folder.mkdir(parents=True)
    for i in range(6):  # more files than twice the threads: DuckDB's per-file mode
        good = [json.dumps(impression(f"f{i}-{k}", T)).encode() for k in range(3 + 40 * (i == 3))]
        bad = b'{"event_id": "bad\xff"}'
        (folder / f"part-{i}.jsonl").write_bytes(b"\n".join([*good, bad, b"not json"]) + b"\n")
    files = sorted(folder.iterdir())
    expected = land_partition(data_dir, "impressions", DAY, force=True)
    expected_quarantine = reasons(data_dir)

    monkeypatch.setattr(duck, "LARGE_FILE_BYTES", 1000)  # part-3 is large, the others small
    assert duck.file_groups(files) == [[files[3]], [p for p in files if p != files[3]]]
    grouped = land_partition(data_dir, "impressions", DAY, force=True)
    assert (grouped.landed, grouped.accepted, grouped.by_reason) == (70, 58, {"malformed": 12})
    assert (grouped.landed, grouped.by_reason) == (expected.landed, expected.by_reason)
    assert len(accepted_ids(data_dir)) == 58
    assert reasons(data_dir) == expected_quarantine
    assert count_raw_lines(data_dir, "impressions", DAY) == 70


def test_file_groups_keep_one_scan_for_small_files_and_for_many_large_ones(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.duck as duck

    monkeypatch.setattr(duck, "LARGE_FILE_BYTES", 10)
    monkeypatch.setattr(duck, "MAX_SEPARATE_SCANS", 2)
    small, large, other = (tmp_path / n for n in ("small", "large", "other"))
    small.write_bytes(b"x")
    large.write_bytes(b"x" * 10)
    other.write_bytes(b"x" * 20)
    assert duck.file_groups([]) == []
    assert duck.file_groups([small]) == [[small]]
    assert duck.file_groups([small, large]) == [[large], [small]]
    assert duck.file_groups([small, large, other]) == [[large], [other], [small]]
    monkeypatch.setattr(duck, "MAX_SEPARATE_SCANS", 1)
    assert duck.file_groups([small, large, other]) == [[small, large, other]]
