"""Who takes part: users, creators, advertisers and campaigns, sellers, and local prices.

Built once per run from the seed (independent of the date range), sized from the daily
volume, and laid out so events can be drawn with array lookups: users are sorted by country
(adults first, then minors), sellers by country, each with start/count offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.contract import AD_FORMATS
from pipelines.generate import markets as mk
from pipelines.generate.reference import Reference
from pipelines.generate.rng import Sampler, rng_for


def make_ids(prefix: str, n: int, width: int) -> pl.Series:
    """Zero-padded ids ("u0000123") built in polars: no Python loop even for millions."""
    digits = (pl.int_range(n, dtype=pl.Int64, eager=True) + 10**width).cast(pl.Utf8).str.slice(1)
    return pl.select(pl.concat_str([pl.lit(prefix), digits])).to_series()


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _split(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integer counts proportional to weights, each at least `minimum`."""
    return np.maximum(minimum, np.round(weights / weights.sum() * total)).astype(np.int64)


def local_price(usd: np.ndarray, usd_per_unit: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    """USD amounts in local currency, rounded to the currency's minor unit, never 0."""
    local = usd / usd_per_unit
    scale = 10.0**decimals
    return np.maximum(np.round(local * scale), 1.0) / scale


def price_point(usd: float, usd_per_unit: float, decimals: int) -> float:
    """A shelf price as stores set them: x.99 in cent currencies, 3 significant digits else."""
    local = usd / usd_per_unit
    if decimals > 0:
        return float(np.ceil(local)) - 0.01 if local >= 1 else round(local, decimals)
    magnitude = 10 ** max(0, int(np.floor(np.log10(max(local, 1.0)))) - 2)
    return float(max(1, round(local / magnitude)) * magnitude)


@dataclass
class Population:
    """Everything events are drawn from; arrays are indexed by entity number."""

    n_countries: int
    country_cur: np.ndarray  # currency index (into Reference.currencies) per country
    cur_base: np.ndarray  # starting usd_per_unit per currency
    cur_decimals: np.ndarray  # price decimals per currency
    utc_offset: np.ndarray  # hours, per country
    ad_index: np.ndarray
    ppp: np.ndarray
    country_sampler: Sampler  # by traffic
    # users: sorted by country, adults first within a country
    user_ids: pl.Series
    user_age: np.ndarray
    user_start: np.ndarray
    user_adults: np.ndarray
    user_count: np.ndarray
    # creators
    creator_ids: pl.Series
    creator_country: np.ndarray
    creator_sampler: Sampler  # Zipf popularity
    fund_creators: np.ndarray  # indices of creators eligible for the creator fund
    # advertising
    advertiser_ids: pl.Series
    campaign_ids: pl.Series
    campaign_advertiser: np.ndarray
    campaign_country: np.ndarray
    campaign_format: np.ndarray  # index into AD_FORMATS
    campaign_cpc: np.ndarray  # bool
    campaign_price: np.ndarray  # local currency: per 1000 impressions (cpm) or per click (cpc)
    campaign_ctr: np.ndarray
    campaign_sampler: Sampler  # by budget
    # shop
    seller_ids: pl.Series
    seller_category: np.ndarray
    seller_start: np.ndarray
    seller_count: np.ndarray
    # coin packs: local price per (country, platform, pack)
    pack_price: np.ndarray
    platform_cdf: np.ndarray  # (country, platform) cumulative mix


def build_population(ref: Reference, events_per_day: int, seed: int) -> Population:
    """Size the cast from the daily volume; every draw comes from the seed."""
    rng = rng_for(seed, "population")
    n_c = len(ref.countries)
    profiles = [mk.market(c) for c in ref.countries]
    traffic = np.array([p.traffic for p in profiles])
    ad_index = np.array([p.ad_index for p in profiles])
    ppp = np.array([p.ppp for p in profiles])
    cur_index = {c: i for i, c in enumerate(ref.currencies)}
    country_cur = np.array([cur_index[c] for c in ref.country_currency], dtype=np.uint32)
    cur_base = np.array([mk.CURRENCIES[c].usd_per_unit for c in ref.currencies])
    cur_decimals = np.array([mk.CURRENCIES[c].decimals for c in ref.currencies])
    base_c = cur_base[country_cur]
    dec_c = cur_decimals[country_cur]

    # Users: adults then minors per country, so "an adult of country c" is one lookup.
    n_users = _clamp(events_per_day // 4, 2_000, 1_500_000)
    user_count = _split(n_users, traffic, 4)
    minors = np.maximum(1, np.round(user_count * [p.minor_share for p in profiles])).astype(np.int64)
    user_adults = user_count - minors
    user_start = np.concatenate([[0], np.cumsum(user_count)[:-1]])
    total_users = int(user_count.sum())
    is_minor = np.zeros(total_users, dtype=bool)
    for c in range(n_c):  # per country, not per user
        is_minor[user_start[c] + user_adults[c] : user_start[c] + user_count[c]] = True
    adult_age = 18 + np.minimum(rng.gamma(2.0, 7.0, total_users), 62).astype(np.int64)
    minor_age = rng.integers(13, 18, total_users)
    user_age = np.where(is_minor, minor_age, adult_age)

    # Creators: Zipf popularity on a random ranking; the most followed can join the fund.
    n_creators = _clamp(events_per_day // 100, 100, 200_000)
    rank = rng.permutation(n_creators) + 1
    popularity = 1.0 / rank**mk.CREATOR_ZIPF_EXPONENT
    fund_creators = np.flatnonzero(rank <= max(1, int(n_creators * mk.FUND_ELIGIBLE_SHARE)))
    creator_country = Sampler(traffic).draw(rng, n_creators)

    # Campaigns: one per market first so every market sells ads, then by ad spend.
    n_adv = _clamp(events_per_day // 4_000, 10, 5_000)
    n_cmp = _clamp(events_per_day // 1_000, 3 * n_c, 20_000)
    cmp_country = np.concatenate([np.arange(n_c, dtype=np.uint32), Sampler(traffic * ad_index).draw(rng, n_cmp - n_c)])
    cmp_format = Sampler([mk.AD_FORMAT_MIX[f] for f in AD_FORMATS]).draw(rng, n_cmp)
    cmp_cpc = (cmp_format == AD_FORMATS.index("in_feed")) & (rng.random(n_cmp) < mk.IN_FEED_CPC_SHARE)
    cpm_usd = np.array([mk.CPM_USD[f] for f in AD_FORMATS])[cmp_format]
    usd = np.where(cmp_cpc, mk.CPC_USD, cpm_usd) * ad_index[cmp_country] * rng.lognormal(0.0, 0.25, n_cmp)
    cmp_price = local_price(usd, base_c[cmp_country], dec_c[cmp_country])
    ctr_fmt = np.array([mk.CTR[f] for f in AD_FORMATS])[cmp_format]
    cmp_ctr = np.where(cmp_cpc, mk.CPC_CTR, ctr_fmt) * rng.lognormal(0.0, 0.3, n_cmp)
    budget = rng.lognormal(0.0, 1.0, n_cmp) * np.where(cmp_format == AD_FORMATS.index("topview"), 3.0, 1.0)

    # Sellers: per country, each with a main category.
    n_sellers = _clamp(events_per_day // 500, 2 * n_c, 50_000)
    seller_count = _split(n_sellers, traffic, 2)
    seller_start = np.concatenate([[0], np.cumsum(seller_count)[:-1]])
    seller_category = rng.integers(0, len(ref.categories), int(seller_count.sum())).astype(np.uint32)

    # Coin packs: shelf prices per market and platform (web skips the store fee, so cheaper).
    n_p = len(ref.platforms)
    pack_price = np.zeros((n_c, n_p, len(mk.COIN_PACKS)))
    for c in range(n_c):  # a small price list, not events
        for p, name in enumerate(ref.platforms):
            factor = mk.WEB_PRICE_FACTOR if name == "web" else 1.0
            for k, pack_usd in enumerate(mk.COIN_PACK_USD):
                pack_price[c, p, k] = price_point(pack_usd * ppp[c] * factor, base_c[c], int(dec_c[c]))
    platform_mix = np.zeros((n_c, n_p))
    for p, name in enumerate(ref.platforms):
        if name == "web":
            platform_mix[:, p] = mk.WEB_SHARE
        elif name == "ios":
            platform_mix[:, p] = [(1 - mk.WEB_SHARE) * pr.ios_share for pr in profiles]
        else:
            platform_mix[:, p] = [(1 - mk.WEB_SHARE) * (1 - pr.ios_share) for pr in profiles]
    platform_mix /= platform_mix.sum(axis=1, keepdims=True)
    platform_cdf = np.cumsum(platform_mix, axis=1)
    platform_cdf[:, -1] = 1.0

    return Population(
        n_countries=n_c,
        country_cur=country_cur,
        cur_base=cur_base,
        cur_decimals=cur_decimals,
        utc_offset=np.array([p.utc_offset for p in profiles], dtype=np.int64),
        ad_index=ad_index,
        ppp=ppp,
        country_sampler=Sampler(traffic),
        user_ids=make_ids("u", total_users, 7),
        user_age=user_age,
        user_start=user_start,
        user_adults=user_adults,
        user_count=user_count,
        creator_ids=make_ids("cr", n_creators, 6),
        creator_country=creator_country,
        creator_sampler=Sampler(popularity, exact=True),
        fund_creators=fund_creators,
        advertiser_ids=make_ids("adv", n_adv, 5),
        campaign_ids=make_ids("cmp", n_cmp, 6),
        campaign_advertiser=rng.integers(0, n_adv, n_cmp).astype(np.uint32),
        campaign_country=cmp_country.astype(np.uint32),
        campaign_format=cmp_format,
        campaign_cpc=cmp_cpc,
        campaign_price=cmp_price,
        campaign_ctr=cmp_ctr,
        campaign_sampler=Sampler(budget),
        seller_ids=make_ids("s", int(seller_count.sum()), 6),
        seller_category=seller_category,
        seller_start=seller_start,
        seller_count=seller_count,
        pack_price=pack_price,
        platform_cdf=platform_cdf,
    )
