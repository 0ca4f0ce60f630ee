"""Reconciliation of the KPI marts (sql/marts/*.sql beyond SPEC §5) with the facts, as plain functions.

The KPI marts are written in SQL; the expectations here are recomputed
independently in polars from the same facts file, so a wrong filter, a
dropped group or a mis-typed CASE in the SQL shows up as a difference instead
of being reproduced by the check. Three layers, all per event date:

1. overlaps: the mart's money adds up to the stream totals the core marts
   (revenue_by_stream / revenue_by_region) publish, e.g. ads spend = advertising
   gross, gift + fund payouts = creator payouts;
2. grain: every row of the mart equals the polars recomputation at the mart's
   own grain (no missing or extra rows, sums to the cent, counts exact);
3. ratios: every ratio equals its definition from the row's own sums and is
   NULL exactly when its denominator is 0 (a warning, not a blocker: ratios
   are derived and never feed another number).

Sums and counts are recomputed with polars' streaming engine. Distinct counts
(users) are recomputed with DuckDB's ``count(DISTINCT ...)``: polars' group-by
on a high-cardinality key held the day's columns in memory (9.7 GiB for the
1.5M users of a 100M-event day), DuckDB stays within its memory limit and spills.

The Dagster wiring lives in ``pipelines.defs.kpi_checks``; keeping the logic
here lets tests call it on tampered frames without a Dagster run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import Stream
from pipelines.duck import DEFAULT_MEMORY_LIMIT, compute_connection, connect, sql_path
from pipelines.lake import DataDir
from pipelines.quality.reconcile import CENT, MAGNITUDE_RELATIVE, RELATIVE, usd_close

# How many problems a check reports at most: enough to diagnose, small enough for run metadata.
MAX_PROBLEMS = 25

STREAMS: tuple[str, ...] = tuple(s.value for s in Stream)


def _money(name: str, condition: pl.Expr | None = None) -> pl.Expr:
    """Sum of a USD column, optionally over the rows matching ``condition`` (0 when none match)."""
    col = pl.col(name).fill_null(0.0)
    if condition is not None:
        col = pl.when(condition).then(col).otherwise(0.0)
    return col.sum()


def _count(condition: pl.Expr) -> pl.Expr:
    return condition.fill_null(False).cast(pl.Int64).sum()


def _bigint_total(values: pl.Expr) -> pl.Expr:
    """Exact integer total, NULL when it does not fit a BIGINT (as the mart's TRY_CAST): polars'
    Int64 sum would wrap around silently. Select rows with ``when/then`` (NULLs add nothing), not
    ``filter``: a filter inside an aggregation takes polars off its streaming group-by."""
    total = values.cast(pl.Int128).sum()
    return pl.when(total.is_between(-(2**63), 2**63 - 1)).then(total).cast(pl.Int64)


def _is_log(log: str) -> pl.Expr:
    return pl.col("log") == log


def _expected_ads(facts: pl.DataFrame) -> pl.DataFrame:
    return (
        facts.filter(_is_log("impressions"))
        .group_by("event_date", "region", "ad_format")
        .agg(
            pl.len().cast(pl.Int64).alias("impressions"),
            _count(pl.col("clicked")).alias("clicks"),
            _money("gross_revenue_usd").alias("spend_usd"),
            _money("gross_revenue_usd", pl.col("pricing_model") == "cpm").alias("cpm_spend_usd"),
            _money("gross_revenue_usd", pl.col("pricing_model") == "cpc").alias("cpc_spend_usd"),
        )
    )


def _expected_gifts(facts: pl.DataFrame) -> pl.DataFrame:
    bought, sent = _is_log("coin_purchases"), _is_log("gifts")
    return (
        facts.filter(pl.col("stream") == Stream.VIRTUAL_GIFTS.value)
        .group_by("event_date", "region")
        .agg(
            _bigint_total(pl.when(bought).then(pl.col("coins"))).alias("coins_bought"),
            _bigint_total(pl.when(sent).then(pl.col("coins"))).alias("coins_spent"),
            _count(bought).alias("coin_purchases"),
            _count(sent).alias("gifts_sent"),
            _money("gross_revenue_usd").alias("coin_gross_usd"),
            _money("platform_fees_usd").alias("store_fees_usd"),
            _money("creator_payouts_usd").alias("gift_payouts_usd"),
            _money("net_revenue_usd").alias("net_revenue_usd"),
        )
    )


def _expected_ecommerce(facts: pl.DataFrame) -> pl.DataFrame:
    placed, refunded = pl.col("order_event_type") == "placed", pl.col("order_event_type") == "refunded"
    return (
        facts.filter(_is_log("orders"))
        .group_by("event_date", "region", "category")
        .agg(
            _count(placed).alias("orders_placed"),
            _count(refunded).alias("orders_refunded"),
            _money("amount_usd", placed).alias("gmv_usd"),
            _money("amount_usd", refunded).alias("refunds_usd"),
            _money("gross_revenue_usd").alias("referral_revenue_usd"),
            _money("amount_usd", placed & pl.col("creator_id").is_not_null()).alias("affiliate_gmv_usd"),
            _money("affiliate_commission_usd").alias("affiliate_commissions_usd"),
        )
    )


def _expected_creators(facts: pl.DataFrame) -> pl.DataFrame:
    gifts, fund, orders = _is_log("gifts"), _is_log("fund_payouts"), _is_log("orders")
    return (
        facts.filter(pl.col("creator_id").is_not_null() & (gifts | fund | orders))
        .group_by("event_date", "creator_id")
        .agg(
            _money("creator_payouts_usd", gifts).alias("gift_payouts_usd"),
            _money("creator_payouts_usd", fund).alias("fund_payouts_usd"),
            _money("affiliate_commission_usd", orders).alias("affiliate_commissions_usd"),
            _count(gifts).alias("gifts_received"),
            _bigint_total(pl.when(gifts).then(pl.col("coins"))).alias("coins_received"),
            _bigint_total(pl.when(fund).then(pl.col("qualified_views"))).alias("qualified_views"),
            _count(orders).alias("affiliate_order_events"),
        )
        .with_columns(
            (pl.col("gift_payouts_usd") + pl.col("fund_payouts_usd") + pl.col("affiliate_commissions_usd")).alias(
                "total_earnings_usd"
            )
        )
    )


def _expected_kpis(facts: pl.DataFrame) -> pl.DataFrame:
    return facts.group_by("event_date", "region").agg(
        *[_money("net_revenue_usd", pl.col("stream") == s).alias(f"{s}_net_usd") for s in STREAMS],
        _money("net_revenue_usd").alias("net_revenue_usd"),
        _money("gross_revenue_usd").alias("gross_revenue_usd"),
        pl.len().cast(pl.Int64).alias("event_count"),
    )


@dataclass(frozen=True)
class Overlap:
    """A mart measure whose day total must equal a core-mart total (a facts sum over some rows)."""

    label: str  # how the core marts name the total, for the problem message
    mart_expr: pl.Expr  # day total of the mart
    facts_expr: pl.Expr  # the same total over the facts


@dataclass(frozen=True)
class DistinctCount:
    """A mart column that counts distinct values of a facts column (NULLs not counted), over the
    facts rows matching ``where`` (SQL over the facts columns; every row when None)."""

    column: str
    of: str
    where: str | None = None


@dataclass(frozen=True)
class Ratio:
    """A ratio column and its definition from the row's own sums."""

    column: str
    numerator: str
    denominator: str
    scale: float = 1.0


@dataclass(frozen=True)
class KpiMart:
    """What the checks know about one KPI mart."""

    name: str
    keys: tuple[str, ...]
    expected: Callable[[pl.LazyFrame], pl.LazyFrame]  # sums and counts; also accepts and returns eager frames
    overlaps: tuple[Overlap, ...]
    distincts: tuple[DistinctCount, ...] = ()  # joined onto ``expected``'s rows by the keys
    identities: tuple[tuple[str, pl.Expr], ...] = ()  # (column, expression over other columns)
    ratios: tuple[Ratio, ...] = ()
    share_columns: tuple[str, ...] = ()  # ratio columns that must add up to 1 where not null


def _stream(name: str, measure: str) -> pl.Expr:
    return _money(measure, pl.col("stream") == name)


def _sum(*columns: str) -> pl.Expr:
    return pl.sum_horizontal(pl.col(c).fill_null(0.0) for c in columns)


KPI_MARTS: dict[str, KpiMart] = {
    m.name: m
    for m in (
        KpiMart(
            name="ads_by_format",
            keys=("event_date", "region", "ad_format"),
            expected=_expected_ads,
            overlaps=(
                Overlap(
                    "advertising gross_revenue_usd", _money("spend_usd"), _stream("advertising", "gross_revenue_usd")
                ),
                Overlap("advertising event_count", pl.col("impressions").sum(), _count(_is_log("impressions"))),
            ),
            identities=(("spend_usd", _sum("cpm_spend_usd", "cpc_spend_usd")),),
            ratios=(
                Ratio("ctr", "clicks", "impressions"),
                Ratio("ecpm_usd", "spend_usd", "impressions", 1000.0),
            ),
        ),
        KpiMart(
            name="gifts_by_region",
            keys=("event_date", "region"),
            expected=_expected_gifts,
            distincts=(
                DistinctCount("paying_users", "user_id", "stream = 'virtual_gifts' AND log = 'coin_purchases'"),
                DistinctCount("gifters", "user_id", "stream = 'virtual_gifts' AND log = 'gifts'"),
            ),
            overlaps=(
                Overlap(
                    "virtual_gifts gross_revenue_usd",
                    _money("coin_gross_usd"),
                    _stream("virtual_gifts", "gross_revenue_usd"),
                ),
                Overlap(
                    "virtual_gifts platform_fees_usd",
                    _money("store_fees_usd"),
                    _stream("virtual_gifts", "platform_fees_usd"),
                ),
                Overlap(
                    "virtual_gifts creator_payouts_usd",
                    _money("gift_payouts_usd"),
                    _stream("virtual_gifts", "creator_payouts_usd"),
                ),
                Overlap(
                    "virtual_gifts net_revenue_usd",
                    _money("net_revenue_usd"),
                    _stream("virtual_gifts", "net_revenue_usd"),
                ),
            ),
            identities=(
                (
                    "net_revenue_usd",
                    pl.col("coin_gross_usd") - pl.col("store_fees_usd") - pl.col("gift_payouts_usd"),
                ),
            ),
            ratios=(
                Ratio("arppu_usd", "coin_gross_usd", "paying_users"),
                Ratio("creator_payout_ratio", "gift_payouts_usd", "coin_gross_usd"),
            ),
        ),
        KpiMart(
            name="ecommerce_by_category",
            keys=("event_date", "region", "category"),
            expected=_expected_ecommerce,
            overlaps=(
                Overlap(
                    "ecommerce gross_revenue_usd",
                    _money("referral_revenue_usd"),
                    _stream("ecommerce", "gross_revenue_usd"),
                ),
                Overlap(
                    "orders affiliate_commission_usd",
                    _money("affiliate_commissions_usd"),
                    _money("affiliate_commission_usd", _is_log("orders")),
                ),
                Overlap(
                    "ecommerce event_count",
                    (pl.col("orders_placed") + pl.col("orders_refunded")).sum(),
                    _count(_is_log("orders")),
                ),
            ),
            ratios=(
                Ratio("refund_rate", "refunds_usd", "gmv_usd"),
                Ratio("take_rate", "referral_revenue_usd", "gmv_usd"),
            ),
        ),
        KpiMart(
            name="creator_earnings",
            keys=("event_date", "creator_id"),
            expected=_expected_creators,
            overlaps=(
                Overlap(
                    "creator_payouts_usd (gifts + creator fund)",
                    (pl.col("gift_payouts_usd") + pl.col("fund_payouts_usd")).sum(),
                    _money("creator_payouts_usd"),
                ),
                Overlap(
                    "affiliate_commission_usd of orders with an affiliate creator",
                    _money("affiliate_commissions_usd"),
                    _money("affiliate_commission_usd", pl.col("creator_id").is_not_null()),
                ),
            ),
            identities=(
                ("total_earnings_usd", _sum("gift_payouts_usd", "fund_payouts_usd", "affiliate_commissions_usd")),
            ),
        ),
        KpiMart(
            name="kpis_by_region",
            keys=("event_date", "region"),
            expected=_expected_kpis,
            distincts=(DistinctCount("active_users", "user_id"),),
            overlaps=(
                *(
                    Overlap(f"{s} net_revenue_usd", _money(f"{s}_net_usd"), _stream(s, "net_revenue_usd"))
                    for s in STREAMS
                ),
                Overlap("net_revenue_usd", _money("net_revenue_usd"), _money("net_revenue_usd")),
                Overlap("gross_revenue_usd", _money("gross_revenue_usd"), _money("gross_revenue_usd")),
                Overlap("event_count", pl.col("event_count").sum(), pl.len()),
            ),
            identities=(("net_revenue_usd", _sum(*(f"{s}_net_usd" for s in STREAMS))),),
            ratios=(
                *(Ratio(f"{s}_share", f"{s}_net_usd", "net_revenue_usd") for s in STREAMS),
                Ratio("net_revenue_per_active_user_usd", "net_revenue_usd", "active_users"),
            ),
            share_columns=tuple(f"{s}_share" for s in STREAMS),
        ),
    )
}


def _differs(got: pl.Expr, want: pl.Expr, money: bool, magnitude: pl.Expr | float = 0.0) -> pl.Expr:
    """Vectorised negation of ``_same``, to find the few suspect rows of a large mart."""
    got, want = got.fill_null(0), want.fill_null(0)
    if money:
        slack = CENT + RELATIVE * pl.max_horizontal(got.abs(), want.abs()) + MAGNITUDE_RELATIVE * magnitude
        same = (got == want) | (got.is_nan() & want.is_nan())
        return ~same & ((got - want).abs() > slack)
    return got != want


def _same(got: object, want: object, money: bool, magnitude: float = 0.0) -> bool:
    if money:
        return usd_close(got, want, magnitude=magnitude)  # type: ignore[arg-type]
    return (got or 0) == (want or 0)


def _is_money(frame: pl.DataFrame, column: str) -> bool:
    return frame.schema[column].is_float()


def usd_magnitudes(frame: pl.LazyFrame) -> pl.LazyFrame:
    """``frame`` with every USD column (``*_usd``) made positive: a sum over it is the sum of the
    magnitudes the same sum over ``frame`` adds up, which bounds what that sum loses in doubles (see
    ``MAGNITUDE_RELATIVE``). Every expected measure and overlap is a sum of one such column."""
    return frame.with_columns(pl.col(c).abs() for c in frame.collect_schema().names() if c.endswith("_usd"))


def overlap_problems(spec: KpiMart, mart: pl.DataFrame, facts: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """Day totals of the mart against the core marts' totals (computed from the facts)."""
    problems = []
    # one pass over the facts for all the mart's totals (a scan per total read the day once each)
    wants = (
        facts.lazy()
        .select(o.facts_expr.alias(f"_{i}") for i, o in enumerate(spec.overlaps))
        .collect(engine="streaming")
        .row(0)
    )
    magnitudes: list[float] | None = None  # of both sides, read only when a total differs
    for i, (overlap, want) in enumerate(zip(spec.overlaps, wants, strict=True)):
        got = float(mart.select(overlap.mart_expr).item() or 0) if mart.height else 0.0
        if usd_close(got, float(want or 0)):
            continue
        if magnitudes is None:
            of_facts = usd_magnitudes(facts.lazy()).select(
                o.facts_expr.alias(f"_{j}") for j, o in enumerate(spec.overlaps)
            )
            of_mart = usd_magnitudes(mart.lazy()).select(
                o.mart_expr.alias(f"_{j}") for j, o in enumerate(spec.overlaps)
            )
            magnitudes = [
                max(float(f or 0), float(m or 0))
                for f, m in zip(of_facts.collect(engine="streaming").row(0), of_mart.collect().row(0), strict=True)
            ]
        if not usd_close(got, float(want or 0), magnitude=magnitudes[i]):
            problems.append(f"{spec.name}: total {got} != {overlap.label} {want} of the facts / core marts")
    return problems


def grain_problems(
    spec: KpiMart,
    mart: pl.DataFrame,
    expected: pl.DataFrame,
    magnitudes: Callable[[], pl.DataFrame] | None = None,
) -> list[str]:
    """Row-by-row comparison at the mart's grain: same keys, same sums, same counts. ``magnitudes``
    gives, when a sum differs, each expected sum's magnitudes at the same grain (``usd_magnitudes``)."""
    keys = list(spec.keys)
    measures = [c for c in expected.columns if c not in keys]
    missing = [c for c in [*keys, *measures] if c not in mart.columns]
    if missing:
        return [f"{spec.name}: missing column(s) {missing}"]
    mart = mart.select(*keys, *measures)
    dupes = mart.filter(pl.struct(keys).is_duplicated())
    if dupes.height:
        return [f"{spec.name}: {dupes.height} rows share a key of {keys}, e.g. {dupes.row(0, named=True)}"]
    joined = mart.with_columns(pl.lit(True).alias("_in_mart")).join(
        expected.with_columns(pl.lit(True).alias("_in_facts")),
        on=keys,
        how="full",
        coalesce=True,
        nulls_equal=True,
        suffix="_facts",
    )
    # vectorised first: only the rows that differ are walked in Python (creator_earnings can be large)

    def suspects(frame: pl.DataFrame, magnitude: Callable[[str], pl.Expr | float]) -> pl.DataFrame:
        return frame.filter(
            pl.col("_in_mart").is_null()
            | pl.col("_in_facts").is_null()
            | pl.any_horizontal(
                _differs(pl.col(m), pl.col(f"{m}_facts"), _is_money(expected, m), magnitude(m)) for m in measures
            )
        )

    suspect = suspects(joined, lambda m: 0.0)
    money = [m for m in measures if _is_money(expected, m)]
    if suspect.height and magnitudes is not None and money:
        of_sums = magnitudes().select(*keys, *(pl.col(m).alias(f"{m}_magnitude") for m in money))
        suspect = suspect.join(of_sums, on=keys, how="left", nulls_equal=True)
        suspect = suspects(suspect, lambda m: pl.col(f"{m}_magnitude").fill_null(0.0) if m in money else 0.0)
    problems = []
    for row in suspect.head(MAX_PROBLEMS).iter_rows(named=True):
        where = ", ".join(f"{k}={row[k]}" for k in keys)
        if not row["_in_mart"]:
            problems.append(f"{spec.name} [{where}]: in the facts but not in the mart")
            continue
        if not row["_in_facts"]:
            problems.append(f"{spec.name} [{where}]: in the mart but not in the facts")
            continue
        for m in measures:
            if not _same(row[m], row[f"{m}_facts"], _is_money(expected, m), row.get(f"{m}_magnitude") or 0.0):
                problems.append(f"{spec.name} [{where}] {m}: mart {row[m]} != facts {row[f'{m}_facts']}")
    return problems


def identity_problems(spec: KpiMart, mart: pl.DataFrame) -> list[str]:
    """Columns that are defined as a combination of other columns of the same row."""
    problems = []
    for column, expr in spec.identities:
        # the row's money columns were each rounded once from their exact sums: their magnitudes bound
        # what a combination of them may differ by
        row_magnitude = pl.sum_horizontal(pl.col(c).abs() for c in mart.columns if c.endswith("_usd"))
        values = mart.select(*spec.keys, pl.col(column).alias("_got"), expr.alias("_want"), row_magnitude.alias("_mag"))
        values = values.filter(_differs(pl.col("_got"), pl.col("_want"), money=True, magnitude=pl.col("_mag")))
        for row in values.head(MAX_PROBLEMS).iter_rows(named=True):
            if not usd_close(row["_got"], row["_want"], magnitude=row["_mag"] or 0.0):
                where = ", ".join(f"{k}={row[k]}" for k in spec.keys)
                problems.append(f"{spec.name} [{where}] {column}: {row['_got']} != its parts {row['_want']}")
    return problems


def ratio_problems(spec: KpiMart, mart: pl.DataFrame) -> list[str]:
    """Each ratio equals numerator / denominator × scale, and is NULL exactly when the denominator is 0."""
    problems = []
    for ratio in spec.ratios:
        for row in mart.select(*spec.keys, ratio.column, ratio.numerator, ratio.denominator).iter_rows(named=True):
            where = ", ".join(f"{k}={row[k]}" for k in spec.keys)
            value, num, den = row[ratio.column], row[ratio.numerator], row[ratio.denominator]
            if not den:
                if value is not None:
                    problems.append(f"{spec.name} [{where}] {ratio.column}={value} but {ratio.denominator} is 0")
                continue
            want = num / den * ratio.scale
            if value is None or not usd_close(value, want, tolerance=1e-12):
                problems.append(f"{spec.name} [{where}] {ratio.column}={value}, expected {want}")
    if spec.share_columns:
        for row in mart.select(*spec.keys, *spec.share_columns).iter_rows(named=True):
            shares = [row[c] for c in spec.share_columns]
            if all(s is None for s in shares):
                continue
            total = sum(s or 0.0 for s in shares)
            # cancellation: shares far from 1 (a net near 0) lose precision in proportion to their size
            if abs(total - 1.0) > 1e-9 * max(1.0, sum(abs(s or 0.0) for s in shares)):
                where = ", ".join(f"{k}={row[k]}" for k in spec.keys)
                problems.append(f"{spec.name} [{where}] shares add up to {total}, not 1")
    return problems


def _connection(data: DataDir | None) -> duckdb.DuckDBPyConnection:
    """DuckDB for the distinct counts: the lake's compute connection (memory cap, spill space), or
    an in-memory one with the same cap for frames that have no lake."""
    if data is not None:
        return compute_connection(data)
    con = connect(":memory:")
    con.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
    return con


def distinct_counts(spec: KpiMart, facts: pl.DataFrame | Path, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The mart's distinct counts per key, recomputed with DuckDB from the facts (a frame or a
    Parquet file), over the facts rows any of them counts."""
    keys = ", ".join(f'"{k}"' for k in spec.keys)
    counts = ", ".join(
        f'count(DISTINCT "{d.of}")' + (f" FILTER (WHERE {d.where})" if d.where else "") + f' AS "{d.column}"'
        for d in spec.distincts
    )
    scope = " OR ".join(f"({d.where})" for d in spec.distincts) if all(d.where for d in spec.distincts) else "true"
    if isinstance(facts, Path):
        source = f"read_parquet({sql_path(facts)})"
    else:
        con.register("kpi_facts", facts)
        source = "kpi_facts"
    frame = con.sql(f"SELECT {keys}, {counts} FROM {source} WHERE {scope} GROUP BY {keys}").pl()
    return frame.cast({d.column: pl.Int64 for d in spec.distincts})


def _scan(facts: pl.DataFrame | Path) -> pl.LazyFrame:
    return pl.scan_parquet(facts, glob=False) if isinstance(facts, Path) else facts.lazy()


def expected_frame(spec: KpiMart, facts: pl.DataFrame | Path, data: DataDir | None = None) -> pl.DataFrame:
    """What the mart should hold, at its grain: polars' sums and counts with DuckDB's distinct
    counts (``data`` gives DuckDB the lake's spill space)."""
    expected = spec.expected(_scan(facts)).collect(engine="streaming")
    if not spec.distincts:
        return expected
    con = _connection(data)
    try:
        counts = distinct_counts(spec, facts, con).cast({k: expected.schema[k] for k in spec.keys})
    finally:
        con.close()
    return expected.join(counts, on=list(spec.keys), how="left", nulls_equal=True).with_columns(
        pl.col(d.column).fill_null(0) for d in spec.distincts
    )


def reconcile_frames(
    name: str, mart: pl.DataFrame, facts: pl.DataFrame | Path, data: DataDir | None = None
) -> list[str]:
    """Overlaps with the core marts, the mart's grain and its identities.

    ``facts`` may be a Parquet file: the recomputation then reads only the columns it
    needs, on polars' streaming engine and DuckDB, so a day of tens of millions of facts
    is checked in bounded memory. ``data`` gives DuckDB the lake's spill space.
    """
    spec = KPI_MARTS[name]
    problems = overlap_problems(spec, mart, _scan(facts))

    def magnitudes() -> pl.DataFrame:
        return spec.expected(usd_magnitudes(_scan(facts))).collect(engine="streaming")

    problems += grain_problems(spec, mart, expected_frame(spec, facts, data), magnitudes)
    problems += identity_problems(spec, mart)
    return problems[:MAX_PROBLEMS]


def _read(data: DataDir, name: str, event_date: dt.date) -> tuple[pl.DataFrame, Path] | str:
    facts, mart = data.facts_file(event_date), data.mart_file(name, event_date)
    if not facts.exists():
        return f"facts {event_date} missing"
    if not mart.exists():
        return f"{name} {event_date} missing"
    return pl.read_parquet(mart, glob=False), facts


def kpi_reconcile_problems(data: DataDir, name: str, event_date: dt.date) -> list[str]:
    """Blocking check body: the KPI mart of one event date agrees with its facts and the core marts."""
    frames = _read(data, name, event_date)
    if isinstance(frames, str):
        return [frames]
    return reconcile_frames(name, *frames, data=data)


def kpi_ratio_problems(data: DataDir, name: str, event_date: dt.date) -> list[str]:
    """Warning check body: the KPI mart's ratios of one event date follow their documented definitions."""
    mart = data.mart_file(name, event_date)
    if not mart.exists():
        return [f"{name} {event_date} missing"]
    return ratio_problems(KPI_MARTS[name], pl.read_parquet(mart, glob=False))[:MAX_PROBLEMS]
