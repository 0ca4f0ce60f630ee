"""DuckDB SQL that types raw NDJSON lines and applies the per-copy rules 1–4.

The SQL is generated from ``pipelines.contract.FIELDS`` so the wire types of
SPEC §2 are written down once. Every line is parsed once (``from_json`` into
a struct of JSON texts); each field's JSON type is then read off the first
character of its minified text, which is much cheaper than re-parsing.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from pipelines.contract import FIELDS, MAX_LATENESS_DAYS, Field, JsonType, Reason
from pipelines.duck import read_lines_sql, union_of_scans
from pipelines.landing.deep_json import TooDeep, call_deep

# ISO-8601 in UTC as the contract allows it: Z or +00:00, optional fraction.
TIMESTAMP_PATTERN = r"\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|\+00:00)"

# DuckDB's JSON reader accepts trailing commas and NaN/Infinity (any case, also nan/inf, signed), RFC 8259 does
# not. Most lines are proven strict by counting (see plainly_strict_sql); the others are scanned for them, and
# those that might contain them are re-checked strictly by a Python UDF (rare). Such a literal can only stand
# where a value starts, after ':', '[' or ',' and blanks, so a word like "financial" in a string is no
# reason to call the UDF; a match inside a string only costs that call.
LENIENT_JSON_PATTERN = r"(?i)[:\[,][ \t\r\n]*[-+]?(nan|inf)|,[ \t\r\n]*[}\]]"
# A member name holding an escape: from a backslash (and the character it escapes) through the rest of a
# string to its closing quote, then ':' (a value's closing quote is followed by ',', '}' or ']', never ':').
# Such a name may spell a declared name another way ("ev\u0065nt_id").
ESCAPED_NAME_PATTERN = r'\\.([^"\\]|\\.)*"[ \t\r\n]*:'
STRICT_JSON_OBJECT_UDF = "revwh_strict_json_object"
# yyjson keeps the first of two members with one name; Python, JavaScript and Go keep the last, and
# so do we. Only lines the counting proof cannot vouch for may repeat a member (each adds a ':').
LAST_MEMBER_WINS_UDF = "revwh_last_member_wins"

_SQL_TYPE = {
    JsonType.STRING: "VARCHAR",
    JsonType.ID: "VARCHAR",
    JsonType.NULLABLE_STRING: "VARCHAR",
    JsonType.NUMBER: "DOUBLE",
    JsonType.INTEGER: "BIGINT",
    JsonType.BOOLEAN: "BOOLEAN",
    JsonType.TIMESTAMP: "VARCHAR",
}


_NOT_JSON = object()


def _reject_constant(_: str) -> None:
    raise ValueError("NaN/Infinity are not JSON")


def _strict_loads(raw: str | None) -> object:
    """``raw`` parsed as RFC 8259 JSON (no NaN, no trailing commas), or ``_NOT_JSON``. A line nested
    deeper than Python's recursion limit is parsed again by :func:`call_deep`."""
    if raw is None:
        return _NOT_JSON

    def loads() -> object:
        return json.loads(raw, parse_constant=_reject_constant)

    try:
        try:
            return loads()
        except RecursionError:
            return call_deep(loads, raw)
    except (ValueError, TooDeep, RecursionError):
        return _NOT_JSON


def strict_json_object(raw: str | None) -> bool:
    """True when ``raw`` is an RFC 8259 JSON object (no NaN, no trailing commas)."""
    return isinstance(_strict_loads(raw), dict)


def last_member_wins(raw: str | None) -> str | None:
    """The object re-written with one member per name, the last one (as Python's, JavaScript's
    and Go's readers keep it), for lines that repeat a name; NULL when not strict JSON."""
    value = _strict_loads(raw)
    if value is _NOT_JSON:
        return None

    def dumps() -> str:
        return json.dumps(value, separators=(",", ":"))

    try:
        return dumps()
    except RecursionError:
        return call_deep(dumps, raw)  # raw was read to this depth already: not TooDeep


def register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """Register the Python helpers :func:`landing_select` calls on rare lines."""
    con.create_function(STRICT_JSON_OBJECT_UDF, strict_json_object, ["VARCHAR"], "BOOLEAN", null_handling="special")
    con.create_function(LAST_MEMBER_WINS_UDF, last_member_wins, ["VARCHAR"], "VARCHAR", null_handling="special")


def sql_type(field: Field) -> str:
    return _SQL_TYPE[field.json_type]


def _is_string(text: str) -> str:
    """Whether the field's JSON text ``x_<name>`` is a string: the flag ``q_<name>`` computed once per
    line in the ``texts`` step (several rules ask)."""
    return "q_" + text.removeprefix("x_")


def _is_integer(text: str) -> str:
    # A JSON integer literal: no fraction, no exponent (2.0 and 1e3 are not integers).
    return f"regexp_full_match({text}, '-?[0-9]+')"


def _string_value(text: str) -> str:
    # Only strings with escapes need a real JSON decode; substr is cheaper than slicing ([2:-2]).
    decoded, unquoted = f"json_extract_string({text}, '$')", f"substr({text}, 2, length({text}) - 2)"
    return f"CASE WHEN contains({text}, '\\') THEN {decoded} ELSE {unquoted} END"


def _typed(field: Field) -> tuple[str, str]:
    """(value expression, is-valid expression) over the field's JSON text ``x_<name>``."""
    x = f"x_{field.name}"
    match field.json_type:
        case JsonType.STRING | JsonType.TIMESTAMP:
            return f"CASE WHEN {_is_string(x)} THEN {_string_value(x)} END", _is_string(x)
        case JsonType.ID:
            value = f"CASE WHEN {_is_string(x)} THEN {_string_value(x)} WHEN {_is_integer(x)} THEN {x} END"
            # CASE, not OR: the regex runs only on the rare ids that are not strings
            return value, f"CASE WHEN {_is_string(x)} THEN true ELSE {_is_integer(x)} END"
        case JsonType.NULLABLE_STRING:
            # SPEC §2 types it "string or null" (unlike the other ids): an integer is the wrong JSON type.
            value = f"CASE WHEN {_is_string(x)} THEN {_string_value(x)} END"
            return value, f"{x} IS NULL OR {x} = 'null' OR {_is_string(x)}"
        case JsonType.NUMBER:
            # Strings, booleans and null do not cast; NaN/Infinity never get here (malformed).
            return f"TRY_CAST({x} AS DOUBLE)", f"TRY_CAST({x} AS DOUBLE) IS NOT NULL"
        case JsonType.INTEGER:
            value = f"CASE WHEN {_is_integer(x)} THEN TRY_CAST({x} AS BIGINT) END"
            return value, f"({value}) IS NOT NULL"
        case JsonType.BOOLEAN:
            return f"CASE WHEN {x} IN ('true', 'false') THEN {x} = 'true' END", f"({x} IN ('true', 'false'))"
    raise AssertionError(field)


def _plain_scalar(field: Field) -> str:
    """True when the field's JSON text is a scalar that strict JSON allows, in the form the field
    usually has: a string, true/false, or a number starting with a digit or '-digit' (so never
    NaN / Infinity). False (not NULL) otherwise, including when the field is missing or null."""
    x = f"x_{field.name}"
    number = f"(ascii({x}) BETWEEN 48 AND 57 OR (starts_with({x}, '-') AND ascii(substr({x}, 2, 1)) BETWEEN 48 AND 57))"
    match field.json_type:
        case JsonType.STRING | JsonType.TIMESTAMP:
            test = _is_string(x)
        case JsonType.BOOLEAN:
            test = f"{x} IN ('true', 'false')"
        case JsonType.NUMBER | JsonType.INTEGER:
            test = number
        case JsonType.ID:
            test = f"CASE WHEN {_is_string(x)} THEN true ELSE {number} END"
        case JsonType.NULLABLE_STRING:
            # a present null is a member without ':' in its value; an absent field is not plain
            # (the colon count assumes every declared member is there)
            test = f"({_is_string(x)} OR {x} = 'null')"
        case _:
            raise AssertionError(field)
    return f"coalesce({test}, false)"


def plainly_strict_sql(fields: tuple[Field, ...]) -> str:
    """A cheap proof that a line yyjson parsed is also RFC 8259 strict (no NaN, no trailing comma).

    yyjson, as DuckDB configures it, accepts two things RFC 8259 does not: NaN/Infinity literals
    and trailing commas (comments, single quotes, '+1', '01', '.5' and hex are refused; checked
    in tests/test_landing_rules.py). When the line has no backslash (so its strings hold exactly
    the characters of their decoded values), every declared field is present as a plain scalar,
    and the line holds one ':' per declared member plus those inside the declared values, the
    object has no other member at any depth: no NaN can hide in an undeclared field, and a
    trailing comma can only sit right before the final '}'. Lines this cannot prove (almost no
    well-formed ones) take the full check. Scanning for ':' is cheap (few occurrences).
    """
    values = f"concat({', '.join(f'x_{f.name}' for f in fields)})"
    colons = "strlen({0}) - strlen(replace({0}, ':', ''))"
    before_end = " OR ".join(f"ends_with(raw, chr({c}) || '}}')" for c in (44, 32, 9, 10, 13))  # ',' or blank
    return f"""(NOT contains(raw, '\\')
            AND {" AND ".join(_plain_scalar(f) for f in fields)}
            AND {colons.format("raw")} = {len(fields)} + {colons.format(values)}
            AND ends_with(raw, '}}') AND NOT ({before_end}))"""


def _canonical_scalar(field: Field) -> str:
    """Whether the field's JSON text can stand in a canonical line (see :func:`canonical_line_sql`):
    a scalar that is not NaN / Infinity, in the form the field usually has. A value written any other
    way (a negative number, a string where an id usually is) leaves the line to the colon count."""
    x, q = f"x_{field.name}", _is_string(f"x_{field.name}")
    match field.json_type:
        case JsonType.STRING | JsonType.TIMESTAMP:
            return q
        case JsonType.NULLABLE_STRING:
            # DuckDB hands back a JSON null as NULL, like a missing member; the rebuilt line spells it
            # null, so a line without the member is not canonical
            return f"({q} OR {x} IS NULL)"
        case JsonType.BOOLEAN:
            return f"{x} IN ('true', 'false')"
        case JsonType.NUMBER | JsonType.INTEGER:
            return f"ascii({x}) BETWEEN 48 AND 57"
        case JsonType.ID:
            return f"({q} OR ascii({x}) BETWEEN 48 AND 57)"
    raise AssertionError(field)


def _canonical_text(field: Field) -> str:
    x = f"x_{field.name}"
    return f"coalesce({x}, 'null')" if field.json_type is JsonType.NULLABLE_STRING else x


def canonical_line_sql(fields: tuple[Field, ...]) -> str:
    """A cheaper proof for the usual line: it is, byte for byte, the minified object of the declared
    members in their declared order, each value written as DuckDB's JSON reader hands it back
    (``x_<name>``; it re-writes numbers, ``1.50`` as ``1.5``, and keeps strings as they are).

    Such a line has no other member, no repeated name and no trailing comma, and with every value a
    plain scalar it holds no NaN: it is RFC 8259 strict. The first member's name is checked before
    the line is rebuilt, so lines laid out any other way (spaces, another member order) cost little
    here and take :func:`plainly_strict_sql`, which does not depend on layout. On 2.7M impressions
    lines this took the classification from 3.3 to 1.7 s of one core.
    """
    members = ", ',', ".join(f"'\"{f.name}\":', {_canonical_text(f)}" for f in fields)
    scalars = " AND ".join(_canonical_scalar(f) for f in fields)
    return f"""CASE WHEN starts_with(raw, '{{"{fields[0].name}":') AND {scalars}
                 THEN raw = concat('{{', {members}, '}}') ELSE false END"""


def _twice_pattern(fields: tuple[Field, ...]) -> str:
    """A regex: some declared member name's quoted text occurs twice in the line (or a value or a nested
    member repeats it: that only costs the closer look)."""
    return "|".join(f'"{f.name}".*"{f.name}"' for f in fields)


def bucket_expr(buckets: int) -> str:
    """The landing bucket of an accepted copy: a hash of its event_id modulo ``buckets``.

    Every copy of one event_id lands in the same bucket whatever its arrival day, so
    rule 5 (duplicates are per event_id) can run one bucket at a time.
    """
    return f"CAST(hash(event_id) % CAST({int(buckets)} AS UBIGINT) AS INTEGER)"


def _read_lines(files_sql: str, *, rejects_limit: int) -> str:
    """Every line of the files, as text with its file name (see :func:`pipelines.duck.read_lines_sql`)."""
    scan = read_lines_sql(files_sql, filename=True, rejects_limit=rejects_limit)
    return f"SELECT raw, parse_filename(filename) AS src FROM ({scan})"


def landing_select(log: str, files: list[Path], arrival_date: str) -> str:
    """The SELECT that reads every raw line of one arrival day and classifies it.

    ``files``: the day's raw files; ``arrival_date`` is 'YYYY-MM-DD'. Output: the typed
    fields of SPEC §2 plus event_ts, event_date, arrival_date, src, raw and ``reason``
    (NULL = accepted so far).
    Blank lines are dropped here, as the contract says they are ignored.
    """
    fields = FIELDS[log]
    struct = "{" + ", ".join(f'"{f.name}": "JSON"' for f in fields) + "}"
    texts = ",\n        ".join(
        f"CAST(j.{f.name} AS VARCHAR) AS x_{f.name}, starts_with(CAST(j.{f.name} AS VARCHAR), '\"') AS q_{f.name}"
        for f in fields
    )
    # the same texts from the last-member-wins object, on the rare lines that repeat a name
    repaired = ",\n        ".join(
        f"CASE WHEN repeated THEN CAST(j2.{f.name} AS VARCHAR) ELSE x_{f.name} END AS x_{f.name}, "
        f"CASE WHEN repeated THEN starts_with(CAST(j2.{f.name} AS VARCHAR), '\"') ELSE q_{f.name} END AS q_{f.name}"
        for f in fields
    )
    typed = [(f, *_typed(f)) for f in fields]
    values = ",\n        ".join(f"{expr} AS {f.name}" for f, expr, _ in typed)
    checks = "\n        AND ".join(f"coalesce({ok}, false)" for _, _, ok in typed)
    return f"""
WITH lines AS (
    SELECT raw, src FROM ({union_of_scans(files, _read_lines)})
    -- CASE, not OR: DuckDB evaluates both sides of an OR, and trim() with a set is slow
    WHERE CASE WHEN starts_with(raw, '{{') THEN true ELSE trim(raw, ' ' || chr(9) || chr(13)) <> '' END
),
parsed AS (
    -- try() alone falls back to row-at-a-time evaluation for a whole vector once one line fails
    -- (10x slower); json_valid first keeps from_json on well-formed lines, try() stays as a safety net.
    SELECT raw, src, try(CASE WHEN json_valid(raw) THEN from_json(raw, '{struct}') END) AS j
    FROM lines
),
texts AS (
    SELECT raw, src, j,
        {texts}
    FROM parsed
),
checked AS (
    -- CASE, not AND / OR: DuckDB evaluates every operand of AND / OR on every row, CASE only where needed
    -- form: 0 not a JSON object, 1 proven strict by counting, 2 needs a closer look
    SELECT * EXCLUDE (j),
           CASE WHEN j IS NULL THEN 0
                WHEN NOT CASE WHEN starts_with(raw, '{{') THEN true
                              ELSE ltrim(raw, ' ' || chr(9))[1] = '{{' END THEN 0
                WHEN {canonical_line_sql(fields)} THEN 1
                WHEN {plainly_strict_sql(fields)} THEN 1
                ELSE 2 END AS form
    FROM texts
),
suspects AS (
    -- one regex pass over the lines no proof vouched for (extra members, escapes): might one hold NaN /
    -- Infinity or a trailing comma, or a declared name twice? Most such lines need neither closer look.
    SELECT *, CASE WHEN form = 2 THEN regexp_matches(raw, '{LENIENT_JSON_PATTERN}|{_twice_pattern(fields)}')
                   ELSE false END AS suspect
    FROM checked
),
objects AS (
    SELECT * EXCLUDE (form, suspect),
           CASE WHEN form < 2 THEN form = 1
                WHEN NOT suspect THEN true
                WHEN regexp_matches(raw, '{LENIENT_JSON_PATTERN}') THEN {STRICT_JSON_OBJECT_UDF}(raw)
                ELSE true END AS is_object,
           -- a declared name given twice (yyjson read the first, the contract's readers keep the last); an
           -- undeclared one changes no value. json_keys lists the names however they were escaped.
           CASE WHEN form = 2 AND (suspect OR (contains(raw, '\\') AND regexp_matches(raw, '{ESCAPED_NAME_PATTERN}')))
                THEN len(json_keys(raw)) <> len(list_distinct(json_keys(raw))) ELSE false END AS repeated
    FROM suspects
),
last_wins AS (
    SELECT *, CASE WHEN repeated THEN from_json({LAST_MEMBER_WINS_UDF}(raw), '{struct}') END AS j2
    FROM objects
),
repaired AS (
    SELECT raw, src, is_object,
        {repaired}
    FROM last_wins
),
valued AS (
    SELECT raw, src, is_object, x_event_id,
        {values},
        ({checks}) AS types_ok
    FROM repaired
),
timed AS (
    SELECT *,
        -- the pattern admits only the UTC suffixes Z and +00:00, which the cast reads as UTC (cutting
        -- them off first cost twice as much)
        CASE WHEN regexp_full_match(event_time, '{TIMESTAMP_PATTERN}') THEN TRY_CAST(event_time AS TIMESTAMP)
        END AS event_ts
    FROM valued
)
SELECT
    * EXCLUDE (is_object, types_ok, x_event_id, event_id),
    -- the id as written, for the quarantine too: a string's value, a number's text as Python's
    -- str(json.loads(...)) gives it (an integer's digits; another number as its double's shortest
    -- repr, which DuckDB's cast writes alike: 1e+21, 1.5e-07, inf); never read from a malformed line
    -- (a lenient parse of it is no reading)
    CASE WHEN NOT is_object THEN NULL
         WHEN event_id IS NOT NULL THEN event_id
         WHEN regexp_full_match(x_event_id, '-?[0-9]+') THEN x_event_id
         WHEN ascii(x_event_id) BETWEEN 48 AND 57 OR starts_with(x_event_id, '-')
         THEN CAST(CAST(x_event_id AS DOUBLE) AS VARCHAR)
    END AS event_id,
    CAST(event_ts AS DATE) AS event_date,
    DATE '{arrival_date}' AS arrival_date,
    CASE
        WHEN NOT is_object THEN '{Reason.MALFORMED}'
        WHEN NOT types_ok OR event_ts IS NULL OR length(event_id) = 0 THEN '{Reason.SCHEMA_VIOLATION}'
        WHEN CAST(event_ts AS DATE) > DATE '{arrival_date}' THEN '{Reason.FUTURE_EVENT}'
        WHEN DATE '{arrival_date}' - CAST(event_ts AS DATE) > {MAX_LATENESS_DAYS} THEN '{Reason.LATE_ARRIVAL}'
    END AS reason
FROM timed
"""
