"""The data contract of ../shared/SPEC.md §1–4 as Python constants.

One place that names the logs, their fields and JSON types, the enumerations,
the quarantine reasons and the revenue streams, so the generator, the parser and
the pandera models cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class JsonType(StrEnum):
    """The JSON type a field must have on the wire (SPEC §2, rule 2)."""

    STRING = "string"  # a JSON string
    ID = "id"  # an identifier: a JSON string or integer, kept as text
    NUMBER = "number"  # a JSON number, integer or fraction
    INTEGER = "integer"  # a JSON number without fraction or exponent
    BOOLEAN = "boolean"  # true / false
    TIMESTAMP = "timestamp"  # an ISO-8601 UTC string
    NULLABLE_STRING = "nullable_string"  # a JSON string or null, or absent (affiliate_creator_id)


@dataclass(frozen=True)
class Field:
    name: str
    json_type: JsonType


LOGS: tuple[str, ...] = ("impressions", "coin_purchases", "gifts", "orders", "fund_payouts")

_COMMON = (Field("event_id", JsonType.STRING), Field("event_time", JsonType.TIMESTAMP))

FIELDS: dict[str, tuple[Field, ...]] = {
    "impressions": _COMMON
    + (
        Field("user_id", JsonType.ID),
        Field("country", JsonType.STRING),
        Field("ad_format", JsonType.STRING),
        Field("advertiser_id", JsonType.ID),
        Field("campaign_id", JsonType.ID),
        Field("pricing_model", JsonType.STRING),
        Field("price", JsonType.NUMBER),
        Field("currency", JsonType.STRING),
        Field("clicked", JsonType.BOOLEAN),
    ),
    "coin_purchases": _COMMON
    + (
        Field("user_id", JsonType.ID),
        Field("user_age", JsonType.INTEGER),
        Field("country", JsonType.STRING),
        Field("platform", JsonType.STRING),
        Field("coins", JsonType.INTEGER),
        Field("amount", JsonType.NUMBER),
        Field("currency", JsonType.STRING),
    ),
    "gifts": _COMMON
    + (
        Field("user_id", JsonType.ID),
        Field("user_age", JsonType.INTEGER),
        Field("country", JsonType.STRING),
        Field("creator_id", JsonType.ID),
        Field("live_id", JsonType.ID),
        Field("gift_type", JsonType.STRING),
        Field("coins", JsonType.INTEGER),
    ),
    "orders": _COMMON
    + (
        Field("order_id", JsonType.ID),
        Field("event_type", JsonType.STRING),
        Field("buyer_id", JsonType.ID),
        Field("seller_id", JsonType.ID),
        Field("country", JsonType.STRING),
        Field("category", JsonType.STRING),
        Field("channel", JsonType.STRING),
        Field("amount", JsonType.NUMBER),
        Field("currency", JsonType.STRING),
        Field("affiliate_creator_id", JsonType.NULLABLE_STRING),
        Field("affiliate_rate", JsonType.NUMBER),
    ),
    "fund_payouts": _COMMON
    + (
        Field("creator_id", JsonType.ID),
        Field("country", JsonType.STRING),
        Field("qualified_views", JsonType.INTEGER),
        Field("amount", JsonType.NUMBER),
        Field("currency", JsonType.STRING),
    ),
}

# Enumerated fields (rule 6: invalid_value when outside the set).
AD_FORMATS = ("in_feed", "topview", "branded_hashtag_challenge")
PRICING_MODELS = ("cpm", "cpc")
PLATFORMS = ("ios", "android", "web")
ORDER_EVENT_TYPES = ("placed", "refunded")
CHANNELS = ("live", "video", "shop_tab")
MIN_AGE, MAX_AGE, ADULT_AGE = 0, 130, 18

# Timeliness (rules 3–4): an event may arrive on its event date or up to this many days later.
MAX_LATENESS_DAYS = 3


def arrival_days(days: Iterable[dt.date]) -> list[dt.date]:
    """The arrival days that hold the copies of event dates ``days``: D..D+3 for each (rule 4)."""
    return sorted({d + dt.timedelta(days=i) for d in days for i in range(MAX_LATENESS_DAYS + 1)})


class Reason(StrEnum):
    """Quarantine reasons, in the order the rules of SPEC §4 apply."""

    MALFORMED = "malformed"
    SCHEMA_VIOLATION = "schema_violation"
    FUTURE_EVENT = "future_event"
    LATE_ARRIVAL = "late_arrival"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_REFERENCE = "unknown_reference"
    MISSING_FX_RATE = "missing_fx_rate"
    UNDERAGE = "underage"


class Stream(StrEnum):
    ADVERTISING = "advertising"
    VIRTUAL_GIFTS = "virtual_gifts"
    ECOMMERCE = "ecommerce"
    CREATOR_FUND = "creator_fund"


STREAM_OF_LOG: dict[str, Stream] = {
    "impressions": Stream.ADVERTISING,
    "coin_purchases": Stream.VIRTUAL_GIFTS,
    "gifts": Stream.VIRTUAL_GIFTS,
    "orders": Stream.ECOMMERCE,
    "fund_payouts": Stream.CREATOR_FUND,
}

# Reference tables (SPEC §1): file name -> header columns.
REFERENCE_TABLES: dict[str, tuple[str, ...]] = {
    "countries": ("country", "country_name", "region", "currency"),
    "fx_rates": ("date", "currency", "usd_per_unit"),
    "store_fees": ("platform", "fee_rate"),
    "gift_catalog": ("gift_type", "coins"),
    "shop_categories": ("category", "referral_fee_rate"),
    "parameters": ("name", "value"),
}

PARTITIONS_START = "2025-01-01"


def field_names(log: str) -> list[str]:
    return [f.name for f in FIELDS[log]]
