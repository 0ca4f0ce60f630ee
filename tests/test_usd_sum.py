"""``usd_sum``, the marts' sum of USD measures: exact where 18 decimals hold every value, DOUBLE where
they cannot (a value of 1e9 USD or more, or one below 1e-6 USD other than 0). Hand-computed cases."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.marts.build import USD_SUM_MACRO


def usd_sum(values: list[float]) -> float:
    with duckdb.connect() as con:
        con.execute(USD_SUM_MACRO)
        con.execute("CREATE TABLE t AS SELECT unnest(?::DOUBLE[]) AS x", [values])
        return con.execute("SELECT usd_sum(x) FROM t").fetchone()[0]


def test_ordinary_values_are_summed_exactly() -> None:
    assert usd_sum([0.1, 0.2]) == 0.3  # a DOUBLE sum gives 0.30000000000000004
    assert usd_sum([0.0025, 0.0, -0.0025, 1.5]) == 1.5  # a 0 (an unclicked cpc) keeps the exact sum
    assert usd_sum([0.0, 0.0]) == 0.0


def test_values_below_a_millionth_of_a_dollar_are_not_rounded_to_18_decimals() -> None:
    # a cpm price of 1.2345678e-10 USD is 1.2345678e-13 USD an impression: 18 decimals keep 1.23457e-13
    assert usd_sum([1.2345678e-13, 4e-19]) == pytest.approx(1.2345678e-13 + 4e-19, rel=1e-15)
    assert usd_sum([4e-19]) == 4e-19  # 18 decimals would give 0
    assert usd_sum([1.0, 1e-13]) == pytest.approx(1.0000000000001, rel=1e-15)


def test_values_of_a_billion_dollars_or_more_are_summed_as_double() -> None:
    assert usd_sum([6e19, 6e19]) == 1.2e20  # a DECIMAL(38, 18) total stops at 1e20
