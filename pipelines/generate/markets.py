"""Behaviour of each market and product: the knobs that make the fake business look real.

The reference CSVs in data/reference say *what exists* (countries, gifts, categories, fees);
this module says *how people behave* there (traffic share, ad prices, purchasing power,
time zone, starting exchange rate). Keeping the two apart lets a data directory ship other
reference tables while the generator still knows how to simulate every market in it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Market:
    """How one country behaves: traffic, prices relative to the US, local clock."""

    traffic: float  # relative share of users
    ad_index: float  # ad price level, US = 1.0 (CPM/CPC and creator fund rates)
    ppp: float  # consumer price level, US = 1.0 (coin packs, order values)
    utc_offset: int  # hours; drives the diurnal cycle in UTC
    ios_share: float  # share of coin purchases made on iOS (web is a fixed share)
    minor_share: float  # share of users aged 13–17


MARKETS: dict[str, Market] = {
    "US": Market(0.15, 1.00, 1.00, -5, 0.58, 0.14),
    "CA": Market(0.03, 0.80, 0.95, -5, 0.55, 0.13),
    "MX": Market(0.06, 0.30, 0.60, -6, 0.25, 0.18),
    "BR": Market(0.09, 0.28, 0.60, -3, 0.15, 0.17),
    "CO": Market(0.03, 0.22, 0.50, -5, 0.15, 0.18),
    "GB": Market(0.05, 0.85, 0.95, 0, 0.52, 0.12),
    "DE": Market(0.04, 0.75, 0.95, 1, 0.38, 0.11),
    "FR": Market(0.04, 0.70, 0.95, 1, 0.40, 0.12),
    "ES": Market(0.03, 0.55, 0.85, 1, 0.30, 0.12),
    "ID": Market(0.12, 0.15, 0.55, 7, 0.10, 0.20),
    "PH": Market(0.06, 0.14, 0.55, 8, 0.15, 0.19),
    "TH": Market(0.05, 0.18, 0.60, 7, 0.30, 0.16),
    "VN": Market(0.06, 0.12, 0.50, 7, 0.25, 0.18),
    "MY": Market(0.03, 0.22, 0.60, 8, 0.30, 0.16),
    "SA": Market(0.03, 0.60, 0.90, 3, 0.60, 0.15),
    "AE": Market(0.02, 0.70, 1.00, 4, 0.65, 0.12),
    "EG": Market(0.03, 0.10, 0.45, 2, 0.12, 0.19),
    "JP": Market(0.04, 0.90, 0.95, 9, 0.68, 0.10),
    "KR": Market(0.03, 0.80, 0.90, 9, 0.35, 0.10),
    "TW": Market(0.02, 0.55, 0.75, 8, 0.50, 0.11),
}
DEFAULT_MARKET = Market(0.01, 0.30, 0.60, 0, 0.30, 0.15)


@dataclass(frozen=True)
class Currency:
    """A currency's starting USD rate, daily volatility, and the decimals prices use."""

    usd_per_unit: float
    daily_vol: float  # sd of the daily log return; 0 for pegged currencies
    decimals: int  # how local price points are rounded (JPY 0, EUR 2)


CURRENCIES: dict[str, Currency] = {
    "USD": Currency(1.0, 0.0, 2),
    "CAD": Currency(0.70, 0.003, 2),
    "MXN": Currency(0.049, 0.006, 2),
    "BRL": Currency(0.17, 0.007, 2),
    "COP": Currency(0.00024, 0.006, 0),
    "GBP": Currency(1.25, 0.004, 2),
    "EUR": Currency(1.04, 0.003, 2),
    "IDR": Currency(0.0000615, 0.003, 0),
    "PHP": Currency(0.0172, 0.003, 2),
    "THB": Currency(0.0293, 0.004, 2),
    "VND": Currency(0.0000394, 0.002, 0),
    "MYR": Currency(0.224, 0.003, 2),
    "SAR": Currency(0.26667, 0.0, 2),
    "AED": Currency(0.27229, 0.0, 2),
    "EGP": Currency(0.0198, 0.008, 2),
    "JPY": Currency(0.0064, 0.005, 0),
    "KRW": Currency(0.00069, 0.004, 0),
    "TWD": Currency(0.0305, 0.003, 0),
}

# Diurnal cycle in local time (share of daily activity per hour 0..23): quiet at night,
# a lunch bump and an evening peak, as short-video usage is.
DIURNAL = (
    3.0, 2.0, 1.3, 1.0, 0.9, 1.1, 1.8, 3.0, 3.8, 4.0, 4.2, 4.5,
    5.0, 4.8, 4.5, 4.5, 4.8, 5.2, 5.8, 6.5, 7.2, 7.5, 6.8, 5.0,
)  # fmt: skip
# Weekday cycle, Monday..Sunday: weekends are busier. Normalised to mean 1 where used.
WEEKDAY = (0.94, 0.95, 0.97, 0.99, 1.04, 1.08, 1.03)

# Share of a day's events per log, before refunds and fund payouts (which follow the
# population, one payout per active creator). Impressions dominate, as ad serving does.
LOG_SHARE = {"impressions": 0.885, "coin_purchases": 0.02, "gifts": 0.06, "orders": 0.035}

# Advertising: ad format mix, CPM by format (topview sells above in_feed), CPC and CTRs.
AD_FORMAT_MIX = {"in_feed": 0.80, "topview": 0.07, "branded_hashtag_challenge": 0.13}
CPM_USD = {"in_feed": 6.0, "topview": 22.0, "branded_hashtag_challenge": 12.0}
CTR = {"in_feed": 0.012, "topview": 0.035, "branded_hashtag_challenge": 0.018}
IN_FEED_CPC_SHARE = 0.35  # the rest of in_feed, and all topview / challenges, sell by CPM
CPC_USD = 0.40
CPC_CTR = 0.03  # CPC campaigns are optimised for clicks

# Virtual gifts: coin packs priced in USD on the app stores; web is cheaper (no store fee).
COIN_PACKS = (70, 350, 1400, 3500, 7000, 17500)
COIN_PACK_USD = (0.99, 4.99, 19.99, 49.99, 99.99, 249.99)
COIN_PACK_MIX = (0.42, 0.30, 0.15, 0.08, 0.04, 0.01)
WEB_PRICE_FACTOR = 0.78
WEB_SHARE = 0.07
GIFT_POPULARITY_EXPONENT = 0.75  # a gift's popularity ~ coins^-exponent: roses everywhere
CREATOR_ZIPF_EXPONENT = 1.15  # a few creators receive most gifts
COMBO_MAX_COINS = 30  # cheap gifts are often sent in combos (several at once)

# Shop: order value by category (median USD at US prices), channel mix, affiliates, refunds.
ORDER_MEDIAN_USD = {
    "beauty": 18.0,
    "fashion": 26.0,
    "electronics": 65.0,
    "home_living": 30.0,
    "food_beverage": 12.0,
    "sports_outdoor": 35.0,
    "toys_hobbies": 22.0,
    "health": 20.0,
}
DEFAULT_ORDER_MEDIAN_USD = 25.0
CHANNEL_MIX = {"live": 0.30, "video": 0.45, "shop_tab": 0.25}
AFFILIATE_SHARE = {"live": 0.70, "video": 0.60, "shop_tab": 0.05}
AFFILIATE_RATES = (0.05, 0.08, 0.10, 0.12, 0.15, 0.20)
REFUND_SHARE = 0.04
REFUND_MAX_DAYS = 10

# Creator fund: paid daily per active eligible creator, by qualified views.
FUND_ELIGIBLE_SHARE = 0.30
FUND_ACTIVE_SHARE = 0.75
FUND_USD_PER_1000_VIEWS = 0.03
FUND_MEDIAN_VIEWS = 25_000
FUND_MIN_VIEWS = 1_000

# Timestamps: most producers write milliseconds and "Z"; some omit the fraction, a few
# write "+00:00" — all valid per SPEC §1.
NO_FRACTION_SHARE = 0.2
PLUS_ZERO_OFFSET_SHARE = 0.02
LATENESS_MIX = (0.6, 0.3, 0.1)  # legit late arrivals: 1, 2 or 3 days after the event date


def market(country: str) -> Market:
    return MARKETS.get(country, DEFAULT_MARKET)
