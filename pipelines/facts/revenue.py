"""Revenue attribution per stream, SPEC §3, as polars expressions over staged events.

Each log maps to one stream. Amounts are converted with fx_rates at
(event_date, currency) and never rounded here; the marts sum them.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contract import LOGS, STREAM_OF_LOG
from pipelines.lake import DataDir, temp_sibling
from pipelines.reference import Reference

# Column order and types of facts.revenue_events.
FACT_SCHEMA: dict[str, pl.DataType] = {
    "event_date": pl.Date,
    "event_ts": pl.Datetime("us"),
    "log": pl.String,
    "stream": pl.String,
    "event_id": pl.String,
    "country": pl.String,
    "region": pl.String,
    "currency": pl.String,
    "user_id": pl.String,
    "creator_id": pl.String,
    "amount_local": pl.Float64,
    "usd_per_unit": pl.Float64,
    "amount_usd": pl.Float64,
    "gross_revenue_usd": pl.Float64,
    "platform_fees_usd": pl.Float64,
    "creator_payouts_usd": pl.Float64,
    "net_revenue_usd": pl.Float64,
    # detail dimensions for the KPI marts (null where a log has no such field)
    "ad_format": pl.String,
    "pricing_model": pl.String,
    "advertiser_id": pl.String,
    "clicked": pl.Boolean,
    "platform": pl.String,
    "coins": pl.Int64,
    "gift_type": pl.String,
    "live_id": pl.String,
    "order_id": pl.String,
    "order_event_type": pl.String,
    "category": pl.String,
    "channel": pl.String,
    "affiliate_rate": pl.Float64,
    "affiliate_commission_usd": pl.Float64,
    "qualified_views": pl.Int64,
}

ZERO = pl.lit(0.0)


# Attribution works on eager frames (tests, small inputs) and lazy ones (the streaming build).
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def _like(events: Frame, table: pl.DataFrame) -> Frame:
    """A reference table in the same mode (eager or lazy) as ``events``, so it can be joined."""
    return table.lazy() if isinstance(events, pl.LazyFrame) else table  # type: ignore[return-value]


def _with_fx(events: Frame, ref: Reference, amount: str) -> Frame:
    rates = ref.fx_rates.rename({"date": "event_date"})
    return events.join(_like(events, rates), on=["event_date", "currency"], how="left").with_columns(
        pl.col(amount).alias("amount_local"), (pl.col(amount) * pl.col("usd_per_unit")).alias("amount_usd")
    )


def advertising(events: Frame, ref: Reference) -> Frame:
    """cpm: price_usd / 1000 per impression; cpc: price_usd when clicked, else 0."""
    frame = _with_fx(events, ref, "price")
    gross = (
        pl.when(pl.col("pricing_model") == "cpm")
        .then(pl.col("amount_usd") / 1000.0)
        .when(pl.col("clicked"))
        .then(pl.col("amount_usd"))
        .otherwise(ZERO)
    )
    return frame.with_columns(
        gross.alias("gross_revenue_usd"), ZERO.alias("platform_fees_usd"), ZERO.alias("creator_payouts_usd")
    )


def coin_purchases(events: Frame, ref: Reference) -> Frame:
    """Gross is what the user paid; the app store keeps fee_rate(platform) of it."""
    frame = _with_fx(events, ref, "amount").join(_like(events, ref.store_fees), on="platform", how="left")
    return frame.with_columns(
        pl.col("amount_usd").alias("gross_revenue_usd"),
        (pl.col("amount_usd") * pl.col("fee_rate")).alias("platform_fees_usd"),
        ZERO.alias("creator_payouts_usd"),
    )


def gifts(events: Frame, ref: Reference) -> Frame:
    """A gift earns nothing new (the coins were sold already); the creator's share is a payout."""
    return events.with_columns(
        pl.lit(None, dtype=pl.String).alias("currency"),
        ZERO.alias("gross_revenue_usd"),
        ZERO.alias("platform_fees_usd"),
        (pl.col("coins") * ref.creator_usd_per_coin).alias("creator_payouts_usd"),
    )


def orders(events: Frame, ref: Reference) -> Frame:
    """The referral fee on a placed order, reversed on a refund. The affiliate commission is
    paid by the seller: creator income, not platform revenue."""
    frame = _with_fx(events, ref, "amount").join(_like(events, ref.shop_categories), on="category", how="left")
    sign = pl.when(pl.col("event_type") == "refunded").then(-1.0).otherwise(1.0)
    return frame.with_columns(
        (sign * pl.col("amount_usd") * pl.col("referral_fee_rate")).alias("gross_revenue_usd"),
        ZERO.alias("platform_fees_usd"),
        ZERO.alias("creator_payouts_usd"),
        pl.col("event_type").alias("order_event_type"),
        pl.col("affiliate_creator_id").alias("creator_id"),
        pl.when(pl.col("affiliate_creator_id").is_not_null())
        .then(sign * pl.col("amount_usd") * pl.col("affiliate_rate"))
        .otherwise(ZERO)
        .alias("affiliate_commission_usd"),
        pl.col("buyer_id").alias("user_id"),
    )


def fund_payouts(events: Frame, ref: Reference) -> Frame:
    """The creator fund pays creators: a payout, no revenue."""
    frame = _with_fx(events, ref, "amount")
    return frame.with_columns(
        ZERO.alias("gross_revenue_usd"),
        ZERO.alias("platform_fees_usd"),
        pl.col("amount_usd").alias("creator_payouts_usd"),
    )


ATTRIBUTION = {
    "impressions": advertising,
    "coin_purchases": coin_purchases,
    "gifts": gifts,
    "orders": orders,
    "fund_payouts": fund_payouts,
}


def revenue_facts(log: str, events: Frame, ref: Reference) -> Frame:
    """Facts of one log's staged events, in FACT_SCHEMA's columns."""
    frame = ATTRIBUTION[log](events, ref)
    frame = frame.join(_like(frame, ref.countries.select("country", "region")), on="country", how="left")
    frame = frame.with_columns(
        pl.lit(log).alias("log"),
        pl.lit(str(STREAM_OF_LOG[log])).alias("stream"),
        (pl.col("gross_revenue_usd") - pl.col("platform_fees_usd") - pl.col("creator_payouts_usd")).alias(
            "net_revenue_usd"
        ),
    )
    columns = set(frame.collect_schema().names())
    return frame.select((pl.col(c) if c in columns else pl.lit(None)).cast(t).alias(c) for c, t in FACT_SCHEMA.items())


def facts_arrow_schema() -> pa.Schema:
    return pl.DataFrame(schema=FACT_SCHEMA).to_arrow().schema


def build_facts(data: DataDir, event_date: dt.date, ref: Reference) -> int:
    """All five logs' facts for one event date, written to the lake atomically; returns the row count.

    One lazy query over the staged files, run by polars' streaming engine straight into the
    Parquet file: memory stays bounded and the writer encodes columns on every core.
    """
    out = data.facts_file(event_date)
    tmp = temp_sibling(out)
    parts = [
        revenue_facts(log, pl.scan_parquet(data.staged_file(log, event_date), glob=False), ref)
        for log in LOGS
        if data.staged_file(log, event_date).exists()
    ]
    try:
        if parts:
            pl.concat(parts).sink_parquet(tmp, compression="zstd", compression_level=1)
        else:
            pl.DataFrame(schema=FACT_SCHEMA).write_parquet(tmp)
        rows = pq.ParquetFile(tmp).metadata.num_rows
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return rows
