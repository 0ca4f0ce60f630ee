"""``usd_sum(x)``: the marts' sum of USD values, exact, returned as DOUBLE.

SPEC §1 rounds no money before aggregation, and finance expects 0.1 + 0.2 to be 0.3 and a re-run
to give the same bits whatever the thread scheduling. Values between 1e-6 and 1e9 USD (all of them,
in practice) are summed as ``DECIMAL(38, 18)``: exact, order-free, and 18 decimals change such a
value by at most 5e-13 of itself.

A group holding another value (SPEC §2 bounds no amount: 1e17 placed and refunded beside an order of
10 USD, or 1e-13 USD an impression) takes the exact path: its other values are split into five
integer parts, ``x = a·2^32 + b·2^-32 + c·2^-96 + d·2^-160 + e·2^-224`` (each part an exact HUGEINT,
the remainder below 2^-224 dropped), summed part by part, and the parts' totals are added up and
rounded once, in Python (``usd_exact``). A DOUBLE ``sum`` there loses small values beside large
opposite ones (the 1e17s above gave 0.0 instead of 3.0). Only values of 2^100 USD or more, infinities
and NaN are summed as DOUBLE.

The exact path costs twice the decimal one on every row, so the marts run with :data:`FAST_MACRO`,
which raises :data:`EXACT_PATH_NEEDED` for a group that needs it, and :func:`run_with_exact_fallback`
runs the statement again with :data:`EXACT_MACRO` then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

import duckdb

T = TypeVar("T")

# Below this many USD per event, a DECIMAL(38, 18) sum cannot overflow (it would take 1e11 events in
# one group).
EXACT_SUM_LIMIT_USD = 1e9
# From this many USD per event (other than 0), the cast to 18 decimals changes a value by at most 5e-13 of
# itself; a smaller one (1e-13 USD would keep 5 digits, 4e-19 none) takes the exact path.
EXACT_SUM_FLOOR_USD = 1e-6
# From this many USD a value's integer parts no longer fit the HUGEINT sums: summed as DOUBLE.
DOUBLE_SUM_FROM_USD = 2.0**100
EXACT_PATH_NEEDED = "usd_sum: a value outside 1e-6..1e9 USD needs the exact sum"
USD_EXACT_UDF = "usd_exact"
# a = trunc(x / 2^32), then four parts of 64 bits below 2^0 (see the module docstring)
_FRACTION_PARTS = 4
_PART_SHIFTS = (32, *(-32 - 64 * i for i in range(_FRACTION_PARTS)))

_DECIMAL_SAFE = f"(x = 0 OR (abs(x) >= {EXACT_SUM_FLOOR_USD} AND abs(x) < {EXACT_SUM_LIMIT_USD:.0f}))"
_DECIMAL_SUM = f"CAST(sum(CAST(CASE WHEN abs(x) < {EXACT_SUM_LIMIT_USD:.0f} THEN x END AS DECIMAL(38, 18))) AS DOUBLE)"
_ALL_DECIMAL_SAFE = (
    f"max(abs(x)) < {EXACT_SUM_LIMIT_USD:.0f}  -- NaN sorts above every number\n"
    f"         AND coalesce(min(CASE WHEN x <> 0 THEN abs(x) END), 1) >= {EXACT_SUM_FLOOR_USD}"
)


def _parts(x: str) -> list[str]:
    """SQL for the integer parts of ``x`` (DOUBLE expressions, each an exact integer below 2^68).

    Each step is exact in IEEE arithmetic: scaling by a power of two, ``trunc``, and the difference of
    a value and its truncation (the bits it keeps fit the 53 of a double)."""
    parts = [f"trunc({x} * {2.0**-32!r})"]
    rest = f"({x} - trunc({x} * {2.0**-32!r}) * {2.0**32!r})"
    scale = 2.0**32
    for _ in range(_FRACTION_PARTS):
        scaled = f"({rest} * {scale!r})"
        parts.append(f"trunc{scaled}")
        rest = f"({scaled} - trunc{scaled})"
        scale = 2.0**64
    return parts


FAST_MACRO = f"""CREATE OR REPLACE MACRO usd_sum(x) AS CASE
    WHEN count(x) = 0 THEN CAST(NULL AS DOUBLE)
    WHEN {_ALL_DECIMAL_SAFE}
    THEN {_DECIMAL_SUM}
    ELSE error('{EXACT_PATH_NEEDED}')
END"""

_PART_SUMS = ",\n        ".join(
    f"sum(CASE WHEN NOT {_DECIMAL_SAFE} AND abs(x) < {DOUBLE_SUM_FROM_USD!r} THEN CAST({part} AS HUGEINT) END)"
    for part in _parts("x")
)
EXACT_MACRO = f"""CREATE OR REPLACE MACRO usd_sum(x) AS CASE
    WHEN count(x) = 0 THEN CAST(NULL AS DOUBLE)
    WHEN {_ALL_DECIMAL_SAFE}
    THEN {_DECIMAL_SUM}
    WHEN NOT (max(abs(x)) < {DOUBLE_SUM_FROM_USD!r}) THEN sum(x)
    ELSE {USD_EXACT_UDF}(
        sum(CASE WHEN {_DECIMAL_SAFE} THEN CAST(x AS DECIMAL(38, 18)) END),
        {_PART_SUMS})
END"""


def usd_exact(decimal_sum: Decimal | None, *part_sums: int | None) -> float:
    """The exact total of a decimal sum and the integer parts' sums, rounded once to a double."""
    total = Fraction(decimal_sum or 0)
    for part, shift in zip(part_sums, _PART_SHIFTS, strict=True):
        if part:
            total += Fraction(part << shift) if shift >= 0 else Fraction(part, 1 << -shift)
    return float(total)


def _usd_exact_udf(
    decimal_sum: Decimal | None, a: int | None, b: int | None, c: int | None, d: int | None, e: int | None
) -> float:
    """``usd_exact`` with one named parameter per part (DuckDB counts a Python function's parameters)."""
    return usd_exact(decimal_sum, a, b, c, d, e)


def install_usd_sum(con: duckdb.DuckDBPyConnection, exact: bool = False) -> None:
    """Define ``usd_sum`` on ``con``: the fast macro, or the exact one (with its Python helper)."""
    if exact:
        with contextlib.suppress(duckdb.Error):  # already registered on this (reused) connection
            con.create_function(
                USD_EXACT_UDF,
                _usd_exact_udf,
                ["DECIMAL(38, 18)", *["HUGEINT"] * len(_PART_SHIFTS)],
                "DOUBLE",
                null_handling="special",
            )
    con.execute(EXACT_MACRO if exact else FAST_MACRO)


def run_with_exact_fallback(con: duckdb.DuckDBPyConnection, run: Callable[[], T]) -> T:
    """``run()`` with the fast ``usd_sum``; again with the exact one if a group needs it."""
    install_usd_sum(con)
    try:
        return run()
    except duckdb.Error as exc:
        if EXACT_PATH_NEEDED not in str(exc):
            raise
    install_usd_sum(con, exact=True)
    try:
        return run()
    finally:
        install_usd_sum(con)
