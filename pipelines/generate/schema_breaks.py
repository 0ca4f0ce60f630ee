"""Schema-violation dirt: each chosen line broken in one way on one field (rule 2), all in one pass.

A break is an edit of one member of an encoded line: its value replaced, its value extended, or the
member removed. Lines are cut at the member's key (a literal, different per row) and after its value
(one constant regular expression), and put back together with the edited part, so a chunk costs a
handful of polars string operations whatever the number of kinds. (One regular expression per kind
cost ~30 compilations a chunk: a tenth of the generator's time.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import polars as pl

from pipelines.contract import FIELDS, JsonType


class Edit(Enum):
    VALUE = "value"  # the value becomes `text`
    QUOTE = "quote"  # the value, as written, is put in quotes
    APPEND = "append"  # `text` is written right after the value
    DROP = "drop"  # the member goes, with the comma before it
    DROP_FIRST = "drop_first"  # the first member goes, with the comma after it
    BAD_DATE = "bad_date"  # the time's month and day become 13 and 40
    NO_ZONE = "no_zone"  # the time loses its "Z" / "+00:00"


@dataclass(frozen=True)
class Break:
    """One way to break rule 2: ``edit`` applied to the member ``field``."""

    field: str
    edit: Edit
    text: str = ""


def _breaks(log: str) -> list[Break]:
    fields = FIELDS[log]
    out = [
        Break("event_id", Edit.VALUE, '""'),  # empty event_id
        Break("event_id", Edit.DROP_FIRST),  # missing event_id
        Break("event_time", Edit.BAD_DATE),  # no such date
        Break("event_time", Edit.NO_ZONE),  # no time zone
        Break("event_time", Edit.VALUE, "1740787200000"),  # epoch number, not a string
        Break("country", Edit.VALUE, "840"),  # number where a string is expected
    ]
    for f in fields[1:]:
        if f.json_type is JsonType.NULLABLE_STRING:
            out.append(Break(f.name, Edit.VALUE, "4711"))  # an integer where a string or null is due
            continue  # may be null or absent
        out.append(Break(f.name, Edit.DROP))  # missing field
        out.append(Break(f.name, Edit.VALUE, "null"))  # null field
        if f.json_type in (JsonType.NUMBER, JsonType.INTEGER):
            out.append(Break(f.name, Edit.QUOTE))  # "1.5"
        if f.json_type is JsonType.INTEGER:
            out.append(Break(f.name, Edit.APPEND, ".5"))  # 2.5 coins
        if f.json_type is JsonType.BOOLEAN:
            out.append(Break(f.name, Edit.VALUE, "1"))
            out.append(Break(f.name, Edit.VALUE, '"yes"'))
    return out


BREAKS: dict[str, list[Break]] = {log: _breaks(log) for log in FIELDS}


def _columns(breaks: list[Break]) -> dict[str, pl.Series]:
    """Per break: the member's key as it stands in a line, the edit and its text (gathered per row)."""
    return {
        "key": pl.Series([f'"{b.field}":' for b in breaks], dtype=pl.Utf8),
        "edit": pl.Series([b.edit.value for b in breaks], dtype=pl.Utf8),
        "text": pl.Series([b.text for b in breaks], dtype=pl.Utf8),
    }


_COLUMNS = {log: _columns(breaks) for log, breaks in BREAKS.items()}
# A member's value as the encoder writes it: a string (no quotes inside), or a bare literal.
_VALUE = r'^("[^"]*"|[^,}]*)'


def _edited(edit: pl.Expr, text: pl.Expr, before: pl.Expr, key: pl.Expr, value: pl.Expr, rest: pl.Expr) -> pl.Expr:
    """The line with its member (``before`` + ``key`` + ``value`` + ``rest``) edited as ``edit`` says."""
    member = [before, key]
    return (
        pl.when(edit == Edit.VALUE.value)
        .then(pl.concat_str([*member, text, rest]))
        .when(edit == Edit.QUOTE.value)
        .then(pl.concat_str([*member, pl.lit('"'), value, pl.lit('"'), rest]))
        .when(edit == Edit.APPEND.value)
        .then(pl.concat_str([*member, value, text, rest]))
        .when(edit == Edit.DROP.value)
        .then(pl.concat_str([before.str.strip_suffix(","), rest]))
        .when(edit == Edit.DROP_FIRST.value)
        .then(pl.concat_str([before, rest.str.strip_prefix(",")]))
        .when(edit == Edit.BAD_DATE.value)  # "YYYY-MM-DDT… → "YYYY-13-40T…
        .then(pl.concat_str([*member, value.str.slice(0, 5), pl.lit("-13-40"), value.str.slice(11), rest]))
        .otherwise(  # NO_ZONE: …Z" or …+00:00" → …"
            pl.concat_str(
                [
                    *member,
                    pl.when(value.str.ends_with('Z"'))
                    .then(value.str.strip_suffix('Z"'))
                    .otherwise(value.str.strip_suffix('+00:00"')),
                    pl.lit('"'),
                    rest,
                ]
            )
        )
    )


def schema_break(log: str, lines: pl.Series, rng: np.random.Generator) -> pl.Series:
    """Each encoded line broken by one of the log's breaks, drawn at random."""
    which = rng.integers(0, len(BREAKS[log]), len(lines))
    frame = pl.DataFrame({"line": lines} | {name: table.gather(which) for name, table in _COLUMNS[log].items()})
    # every member of an encoded line appears once, so its key cuts the line in two
    parts = pl.col("line").str.split(pl.col("key"), literal=True)
    cut = frame.select("key", "edit", "text", before=parts.list.first(), tail=parts.list.last())
    value = pl.col("tail").str.extract(_VALUE, 1)
    rest = pl.col("tail").str.slice(value.str.len_chars())
    cut = cut.with_columns(value=value, rest=rest)
    edited = _edited(*(pl.col(name) for name in ("edit", "text", "before", "key", "value", "rest")))
    return cut.select(edited.alias("line")).to_series()
