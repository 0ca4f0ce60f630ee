"""``usd_sum``, the marts' sum of USD measures: a DECIMAL sum where 18 decimals hold every value, an
exact sum of the values' binary parts where they do not (a value of 1e9 USD or more, or one below
1e-6 USD other than 0), rounded once. Hand-computed cases."""

from __future__ import annotations

import math
from fractions import Fraction

import duckdb
import pytest

from pipelines.marts.usd_sum import EXACT_PATH_NEEDED, install_usd_sum, run_with_exact_fallback


def usd_sum(values: list[float | None]) -> float | None:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT unnest(?::DOUBLE[]) AS x", [values])
        return run_with_exact_fallback(con, lambda: con.execute("SELECT usd_sum(x) FROM t").fetchone()[0])


def exact(values: list[float]) -> float:
    """The sum of the doubles as rational numbers, rounded once."""
    return float(sum(map(Fraction, values)))


def test_ordinary_values_are_summed_exactly_in_decimal() -> None:
    assert usd_sum([0.1, 0.2]) == 0.3  # a DOUBLE sum gives 0.30000000000000004
    assert usd_sum([0.0025, 0.0, -0.0025, 1.5]) == 1.5  # a 0 (an unclicked cpc) keeps the exact sum
    assert usd_sum([0.0, 0.0]) == 0.0
    assert usd_sum([None, None]) is None
    assert usd_sum([None, 2.5]) == 2.5


def test_values_below_a_millionth_of_a_dollar_are_not_rounded() -> None:
    # a cpm price of 1.2345678e-10 USD is 1.2345678e-13 USD an impression: 18 decimals keep 1.23457e-13
    assert usd_sum([1.2345678e-13, 4e-19]) == exact([1.2345678e-13, 4e-19])
    assert usd_sum([4e-19]) == 4e-19  # 18 decimals would give 0
    assert usd_sum([1.0, 1e-13]) == 1.0000000000001
    assert usd_sum([0.1, 1e-13]) == 0.1000000000001  # the 0.1 summed in decimal, the 1e-13 exactly


def test_large_values_that_cancel_keep_the_small_ones() -> None:
    """Two orders of 1e17 USD placed and refunded beside three of 10 USD, at a 10 % fee: 3.0 USD.
    A DOUBLE sum gave 0.0 (1e16 + 1.0 is 1e16 in a double)."""
    fees = [1e16, 1.0, 1e16, 1.0, 1.0, -1e16, -1e16]
    assert usd_sum(fees) == 3.0
    orders = [fees[i:] + fees[:i] for i in range(len(fees))]
    assert {usd_sum(order) for order in orders + [o[::-1] for o in orders]} == {3.0}  # in any order
    assert usd_sum([6e19, 6e19]) == 1.2e20  # a DECIMAL(38, 18) total stops at 1e20
    assert usd_sum([2.0**99, 0.5, -(2.0**99)]) == 0.5
    assert usd_sum([1e9, 1e-9, -1e9]) == 1e-9


def test_infinities_nan_and_values_beyond_2_to_100_usd_are_summed_as_double() -> None:
    assert usd_sum([math.inf, 1.0]) == math.inf
    assert math.isnan(usd_sum([math.nan, 1.0]))
    assert usd_sum([1e300, 1e300]) == 2e300


def test_the_fast_macro_asks_for_the_exact_one_and_comes_back() -> None:
    with duckdb.connect() as con:
        install_usd_sum(con)
        with pytest.raises(duckdb.Error, match=EXACT_PATH_NEEDED):
            con.execute("SELECT usd_sum(x) FROM (VALUES (1e17), (1.0)) t(x)").fetchall()
        assert con.execute("SELECT usd_sum(x) FROM (VALUES (0.5), (1.0)) t(x)").fetchone()[0] == 1.5
        query = "SELECT g, usd_sum(x) FROM (VALUES (1, 1e17), (1, -1e17), (1, 2.5), (2, 0.25)) t(g, x) GROUP BY g"
        assert sorted(run_with_exact_fallback(con, lambda: con.execute(query).fetchall())) == [(1, 2.5), (2, 0.25)]
        with pytest.raises(duckdb.Error, match=EXACT_PATH_NEEDED):  # the fast macro is back
            con.execute(query).fetchall()
