"""How `revwh sql` prints a result: every value in DuckDB's own spelling, computed by DuckDB.

Values are turned into text inside DuckDB, not through Python objects, so an INTERVAL reads ``2 months
3 days`` (not 63 days), an infinite date ``infinity`` (not 9999-12-31), a list ``[1, NULL]``, a boolean
``true``, a TIMESTAMP_NS keeps its nanoseconds and a FLOAT is not widened to 0.10000000149011612. csv and
json build each output line in DuckDB too (one VARCHAR per row, vectorised) and stream it in batches:

- csv: RFC 4180 quoting, ``\\n`` line ends, NULL an empty field and an empty string ``""`` (as DuckDB's
  COPY writes them);
- json: one array of objects; values as DuckDB's ``to_json`` writes them (DECIMAL and HUGEINT as numbers,
  nested LIST / STRUCT / MAP as JSON), NaN and infinities as ``null`` (JSON has neither); a column name
  used twice gets ``_1``, ``_2``… so no column is lost;
- table: aligned columns for a terminal; DOUBLEs with six decimals, or in scientific notation below
  0.001 and from 10^15; a text with line ends spans several lines (``+`` marks a continued cell).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator
from typing import TextIO

import duckdb

from pipelines.duck import sql_str

BATCH_ROWS = 10_000  # rows per batch when csv/json stream the result
_NUMERIC = re.compile(r"(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|DECIMAL.*|DOUBLE|FLOAT|REAL)$")
_FLOATS = ("FLOAT", "REAL")
# to_json writes NaN and ±Infinity bare; a string literal is matched first so its text is left alone.
_JSON_NONFINITE = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN')


def _col(i: int) -> str:
    return f"#{i + 1}"  # by position: a result may name two columns alike


def _as_double(i: int, kind: str) -> str:
    """A FLOAT through its shortest text, so 0.1 stays 0.1 rather than 0.10000000149011612."""
    return f"CAST(CAST({_col(i)} AS VARCHAR) AS DOUBLE)" if kind in _FLOATS else _col(i)


def _kinds(rel: duckdb.DuckDBPyRelation) -> list[str]:
    return [str(t).upper() for t in rel.types]


def _lines(rel: duckdb.DuckDBPyRelation, expr: str) -> Iterator[list[str]]:
    """Batches of the one-VARCHAR-per-row projection ``expr``, streamed (a result larger than memory)."""
    reader = rel.project(f"{expr} AS line").to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        yield batch.column(0).to_pylist()


def _csv_field(i: int) -> str:
    text = f"CAST({_col(i)} AS VARCHAR)"
    return (
        f"CASE WHEN {_col(i)} IS NULL THEN '' "
        f"WHEN {text} = '' OR regexp_matches({text}, '[,\"' || chr(10) || chr(13) || ']') "
        f"THEN '\"' || replace({text}, '\"', '\"\"') || '\"' ELSE {text} END"
    )


def csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if text == "" or re.search(r'[,"\n\r]', text) else text


def write_csv(rel: duckdb.DuckDBPyRelation, out: TextIO) -> None:
    out.write(",".join(csv_quote(c) for c in rel.columns) + "\n")
    if not rel.columns:
        return
    expr = f"concat_ws(',', {', '.join(_csv_field(i) for i in range(len(rel.columns)))})"
    for lines in _lines(rel, expr):
        out.write("\n".join(lines) + "\n")


def json_keys(columns: list[str]) -> list[str]:
    """The columns' names as JSON keys, a repeated name numbered (event_count, event_count_1, …)."""
    keys: list[str] = []
    for name in columns:
        key, n = name, 0
        while key in keys:
            n += 1
            key = f"{name}_{n}"
        keys.append(key)
    return keys


def _finite_json(line: str) -> str:
    if "NaN" not in line and "Infinity" not in line:
        return line
    return _JSON_NONFINITE.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "null", line)


def write_json(rel: duckdb.DuckDBPyRelation, out: TextIO) -> None:
    """One JSON array, a batch of rows at a time."""
    if not rel.columns:
        out.write("[]\n")
        return
    parts = []
    for i, (key, kind) in enumerate(zip(json_keys(rel.columns), _kinds(rel), strict=True)):
        value = f"coalesce(CAST(to_json({_as_double(i, kind)}) AS VARCHAR), 'null')"
        parts.append(f"{sql_str(('{' if i == 0 else ',') + json.dumps(key) + ':')}, {value}")
    expr = f"concat({', '.join(parts)}, '}}')"
    first = True
    out.write("[")
    for lines in _lines(rel, expr):
        for line in lines:
            out.write(("\n " if first else ",\n ") + _finite_json(line))
            first = False
    out.write("\n]\n" if not first else "]\n")


def _cell(value: object) -> str:
    """Money reads best with six decimals; a rate such as 3.9e-05 VND→USD or a huge value keeps its
    digits in scientific notation instead of printing 0.000039 or 300 digits."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if value == 0:
            return "0.000000"  # -0.0 too
        if math.isfinite(value) and 1e-3 <= abs(value) < 1e15:
            return f"{value:.6f}"
        return f"{value:.6e}" if math.isfinite(value) else str(value)
    return str(value).replace("\r", "\\r").replace("\t", "\\t")


def display_width(text: str) -> int:
    """Terminal columns: East Asian wide characters and most emoji take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if right else text + fill


def format_table(rel: duckdb.DuckDBPyRelation) -> str:
    columns, kinds = rel.columns, _kinds(rel)
    if columns:
        exprs = [
            _as_double(i, k) if k in ("DOUBLE", *_FLOATS) else f"CAST({_col(i)} AS VARCHAR)"
            for i, k in enumerate(kinds)
        ]
        rows = rel.project(", ".join(exprs)).fetchall()
    else:
        rows = []
    cells = [[_cell(v).split("\n") for v in row] for row in rows]
    widths = [
        max([display_width(c)] + [display_width(line) for r in cells for line in r[i]]) for i, c in enumerate(columns)
    ]
    right = [bool(_NUMERIC.match(k)) for k in kinds]
    out = [" | ".join(_pad(c, w, False) for c, w in zip(columns, widths, strict=True)).rstrip()]
    out.append("-+-".join("-" * w for w in widths))
    for row in cells:
        for n in range(max((len(c) for c in row), default=1)):
            pieces = []
            for cell, w, r in zip(row, widths, right, strict=True):
                text = cell[n] if n < len(cell) else ""
                pieces.append(_pad(text, w, r) + ("+" if n < len(cell) - 1 else " "))
            out.append("| ".join(pieces).rstrip())
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
