"""Field rules of SPEC §2 as pandera.polars models, one per log.

Types and nullability are what landing produced; the value checks (enums,
bounds, age range) are rule 6 (``invalid_value``). Money is also bounded above by
infinity: a JSON number too large for a double (``1e400``) is no finite amount. The same models split bad
rows from good ones in the staged step and validate the clean output in an
asset check, so a rule is written once.
"""

from __future__ import annotations

import datetime as dt
import math

import pandera.polars as pa
import polars as pl

from pipelines.contract import (
    AD_FORMATS,
    CHANNELS,
    MAX_AGE,
    MIN_AGE,
    ORDER_EVENT_TYPES,
    PLATFORMS,
    PRICING_MODELS,
)


class EventBase(pa.DataFrameModel):
    """Columns every landed event has (SPEC §2 plus the lineage columns landing adds)."""

    event_id: str = pa.Field(str_length={"min_value": 1}, description="Unique per log (SPEC §2)")
    event_time: str = pa.Field(description="ISO-8601 UTC text as it arrived")
    event_ts: dt.datetime = pa.Field(description="event_time parsed, UTC")
    event_date: dt.date = pa.Field(description="UTC date of event_time")
    arrival_date: dt.date = pa.Field(description="Arrival day (dt) of the copy kept")

    class Config:
        strict = False  # lineage columns (src, raw) may ride along
        coerce = False


class Impressions(EventBase):
    """An ad impression; cpm price is per thousand impressions, cpc per click."""

    user_id: str
    country: str
    ad_format: str = pa.Field(isin=list(AD_FORMATS))
    advertiser_id: str
    campaign_id: str
    pricing_model: str = pa.Field(isin=list(PRICING_MODELS))
    price: float = pa.Field(gt=0, lt=math.inf)
    currency: str
    clicked: bool


class CoinPurchases(EventBase):
    """A user buys coins in an app store or on the web."""

    user_id: str
    user_age: int = pa.Field(in_range={"min_value": MIN_AGE, "max_value": MAX_AGE})
    country: str
    platform: str = pa.Field(isin=list(PLATFORMS))
    coins: int = pa.Field(gt=0)
    amount: float = pa.Field(gt=0, lt=math.inf)
    currency: str


class Gifts(EventBase):
    """A viewer sends a gift (paid in coins) to a creator during a live stream."""

    user_id: str
    user_age: int = pa.Field(in_range={"min_value": MIN_AGE, "max_value": MAX_AGE})
    country: str
    creator_id: str
    live_id: str
    gift_type: str
    coins: int = pa.Field(gt=0)


class Orders(EventBase):
    """A shop order placed or refunded; the platform keeps a referral fee."""

    order_id: str
    event_type: str = pa.Field(isin=list(ORDER_EVENT_TYPES))
    buyer_id: str
    seller_id: str
    country: str
    category: str
    channel: str = pa.Field(isin=list(CHANNELS))
    amount: float = pa.Field(gt=0, lt=math.inf)
    currency: str
    affiliate_creator_id: str = pa.Field(nullable=True)
    affiliate_rate: float = pa.Field(ge=0, lt=1)


class FundPayouts(EventBase):
    """A creator-fund payout for a creator's qualified views."""

    creator_id: str
    country: str
    qualified_views: int = pa.Field(ge=0)
    amount: float = pa.Field(gt=0, lt=math.inf)
    currency: str


MODELS: dict[str, type[EventBase]] = {
    "impressions": Impressions,
    "coin_purchases": CoinPurchases,
    "gifts": Gifts,
    "orders": Orders,
    "fund_payouts": FundPayouts,
}


def polars_schema(log: str) -> dict[str, pl.DataType]:
    """Column → polars dtype of a log's model (used to type empty frames)."""
    schema = MODELS[log].to_schema()
    return {name: col.dtype.type for name, col in schema.columns.items()}
