"""Clean events of one log for one chunk of one day, as numpy columns (no Python per event).

Columns hold numbers and small-integer indices into lookup tables (country, currency, ids);
encode.py turns them into JSON text, dirt.py spoils some of them. Every block also carries
the bookkeeping columns ctr (event counter within log and day), t_ms (event time, epoch ms),
frac/tz (how the timestamp is written), eday/arr (epoch day of event and of arrival).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipelines.contract import CHANNELS
from pipelines.generate import markets as mk
from pipelines.generate.population import Population, local_price
from pipelines.generate.reference import Reference
from pipelines.generate.rng import Sampler, rng_for
from pipelines.generate.timing import DAY_MS, lateness, times_in_day

Columns = dict[str, np.ndarray]


@dataclass
class Context:
    """What every chunk generator needs; shared read-only across chunks and threads."""

    ref: Reference
    pop: Population
    seed: int
    late_rate: float
    last_day: int  # epoch day of the last event date: refunds after it are not generated
    gift_sampler: Sampler = field(init=False)
    gift_coins: np.ndarray = field(init=False)
    pack_sampler: Sampler = field(init=False)
    channel_sampler: Sampler = field(init=False)
    affiliate_share: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.gift_coins = np.array(self.ref.gift_coins, dtype=np.int64)
        self.gift_sampler = Sampler(np.maximum(self.gift_coins, 1) ** -mk.GIFT_POPULARITY_EXPONENT)
        self.pack_sampler = Sampler(mk.COIN_PACK_MIX)
        self.channel_sampler = Sampler([mk.CHANNEL_MIX[c] for c in CHANNELS])
        self.affiliate_share = np.array([mk.AFFILIATE_SHARE[c] for c in CHANNELS])

    def fund_creators(self, day: int) -> np.ndarray:
        """The eligible creators active on `day`: one payout each, whatever the chunking."""
        rng = rng_for(self.seed, "fund", day)
        eligible = self.pop.fund_creators
        active = round(len(eligible) * mk.FUND_ACTIVE_SHARE * float(rng.uniform(0.9, 1.1)))
        return np.sort(rng.permutation(eligible)[: max(1, min(active, len(eligible)))])


def _common(ctx: Context, rng: np.random.Generator, ctr0: int, t_ms: np.ndarray) -> Columns:
    n = len(t_ms)
    bits = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    frac = (bits & 0xFFFF) >= int(mk.NO_FRACTION_SHARE * 65536)
    tz = ((bits >> 16) & 0xFFFF) < int(mk.PLUS_ZERO_OFFSET_SHARE * 65536)
    eday = t_ms // DAY_MS
    return {
        "ctr": np.arange(ctr0, ctr0 + n, dtype=np.int64),
        "t_ms": t_ms,
        "frac": frac,
        "tz": tz.astype(np.uint32),
        "eday": eday,
        "arr": eday + lateness(rng, n, ctx.late_rate),
    }


def _user_in(pop: Population, rng: np.random.Generator, country: np.ndarray, adults_only: bool) -> np.ndarray:
    """A user of each country; u**1.5 makes some users far more active than others."""
    span = pop.user_adults[country] if adults_only else pop.user_count[country]
    return (pop.user_start[country] + (rng.random(len(country)) ** 1.5 * span).astype(np.int64)).astype(np.uint32)


def impressions(ctx: Context, rng: np.random.Generator, day: int, ctr0: int, n: int) -> Columns:
    """Ad impressions: a campaign buys a market; its price and CTR come with it."""
    pop = ctx.pop
    cmp = pop.campaign_sampler.draw(rng, n)
    country = pop.campaign_country[cmp]
    cols = _common(ctx, rng, ctr0, times_in_day(rng, day, pop.utc_offset[country]))
    cols.update(
        user=_user_in(pop, rng, country, adults_only=False),
        country=country,
        ad_format=pop.campaign_format[cmp],
        advertiser=pop.campaign_advertiser[cmp],
        campaign=cmp,
        pricing_model=pop.campaign_cpc[cmp].astype(np.uint32),
        price=pop.campaign_price[cmp],
        currency=pop.country_cur[country],
        clicked=rng.random(n) < pop.campaign_ctr[cmp],
    )
    return cols


def coin_purchases(ctx: Context, rng: np.random.Generator, day: int, ctr0: int, n: int) -> Columns:
    """Adults buying coin packs at the local shelf price of their store."""
    pop = ctx.pop
    country = pop.country_sampler.draw(rng, n)
    cols = _common(ctx, rng, ctr0, times_in_day(rng, day, pop.utc_offset[country]))
    user = _user_in(pop, rng, country, adults_only=True)
    platform = (rng.random(n)[:, None] > pop.platform_cdf[country]).sum(axis=1).astype(np.uint32)
    pack = ctx.pack_sampler.draw(rng, n)
    cols.update(
        user=user,
        user_age=pop.user_age[user],
        country=country,
        platform=platform,
        coins=np.asarray(mk.COIN_PACKS, dtype=np.int64)[pack],
        amount=pop.pack_price[country, platform, pack],
        currency=pop.country_cur[country],
    )
    return cols


def gifts(ctx: Context, rng: np.random.Generator, day: int, ctr0: int, n: int) -> Columns:
    """Adults sending gifts in live streams; a Zipf few of the creators get most of them."""
    pop = ctx.pop
    country = pop.country_sampler.draw(rng, n)
    cols = _common(ctx, rng, ctr0, times_in_day(rng, day, pop.utc_offset[country]))
    user = _user_in(pop, rng, country, adults_only=True)
    gift = ctx.gift_sampler.draw(rng, n)
    unit = ctx.gift_coins[gift]
    combo = (unit <= mk.COMBO_MAX_COINS) & (rng.random(n) < 0.3)
    repeat = np.where(combo, np.minimum(rng.geometric(0.2, n) + 1, 99), 1)
    cols.update(
        user=user,
        user_age=pop.user_age[user],
        country=country,
        creator=pop.creator_sampler.draw(rng, n),
        live=rng.integers(0, 2, n, dtype=np.uint32),
        gift_type=gift,
        coins=unit * repeat,
    )
    return cols


def orders(ctx: Context, rng: np.random.Generator, day: int, ctr0: int, n: int) -> Columns:
    """Shop orders placed today, plus the refunds some of them get on a later day."""
    pop = ctx.pop
    country = pop.country_sampler.draw(rng, n)
    t_ms = times_in_day(rng, day, pop.utc_offset[country])
    seller = (pop.seller_start[country] + (rng.random(n) * pop.seller_count[country]).astype(np.int64)).astype(
        np.uint32
    )
    category = np.where(
        rng.random(n) < 0.9,
        pop.seller_category[seller],
        rng.integers(0, len(ctx.ref.categories), n),
    ).astype(np.uint32)
    median = np.array([mk.ORDER_MEDIAN_USD.get(c, mk.DEFAULT_ORDER_MEDIAN_USD) for c in ctx.ref.categories])
    usd = median[category] * pop.ppp[country] * rng.lognormal(0.0, 0.6, n)
    currency = pop.country_cur[country]
    channel = ctx.channel_sampler.draw(rng, n)
    has_aff = rng.random(n) < ctx.affiliate_share[channel]
    rates = np.asarray(mk.AFFILIATE_RATES)[rng.integers(0, len(mk.AFFILIATE_RATES), n)]
    placed: Columns = {
        "buyer": _user_in(pop, rng, country, adults_only=False),
        "seller": seller,
        "country": country,
        "category": category,
        "channel": channel,
        "amount": local_price(usd, pop.cur_base[currency], pop.cur_decimals[currency]),
        "currency": currency,
        "affiliate": np.where(has_aff, pop.creator_sampler.draw(rng, n).astype(np.int64), -1),
        "affiliate_rate": np.where(has_aff, rates, 0.0),
        "event_type": np.zeros(n, dtype=np.uint32),
        "refund": np.zeros(n, dtype=bool),
    }
    # Refunds: same order, own event id (ctr + "-r" suffix), a later day, same amount.
    delay = np.minimum(rng.geometric(0.3, n), mk.REFUND_MAX_DAYS) * DAY_MS
    refund_t = t_ms + delay + rng.integers(0, DAY_MS // 2, n)
    refunded = np.flatnonzero((rng.random(n) < mk.REFUND_SHARE) & (refund_t // DAY_MS <= ctx.last_day))
    cols = _common(ctx, rng, ctr0, np.concatenate([t_ms, refund_t[refunded]]))
    for name, values in placed.items():
        cols[name] = np.concatenate([values, values[refunded]])
    cols["event_type"][n:] = 1
    cols["refund"][n:] = True
    cols["ctr"][n:] = cols["ctr"][refunded]
    return cols


def fund_payouts(ctx: Context, rng: np.random.Generator, day: int, ctr0: int, n: int) -> Columns:
    """One payout per active eligible creator, by qualified views, in a nightly batch."""
    pop = ctx.pop
    creator = ctx.fund_creators(day)[ctr0 : ctr0 + n]
    country = pop.creator_country[creator]
    t_ms = day * DAY_MS + 300_000 + rng.integers(0, 85 * 60_000, n)
    views = np.maximum(mk.FUND_MIN_VIEWS, rng.lognormal(np.log(mk.FUND_MEDIAN_VIEWS), 1.0, n)).astype(np.int64)
    usd = views / 1000 * mk.FUND_USD_PER_1000_VIEWS * pop.ad_index[country] * rng.lognormal(0.0, 0.2, n)
    currency = pop.country_cur[country]
    cols = _common(ctx, rng, ctr0, t_ms)
    cols.update(
        creator=creator.astype(np.uint32),
        country=country,
        qualified_views=views,
        amount=local_price(usd, pop.cur_base[currency], pop.cur_decimals[currency]),
        currency=currency,
    )
    return cols


GENERATORS: dict[str, Callable[[Context, np.random.Generator, int, int, int], Columns]] = {
    "impressions": impressions,
    "coin_purchases": coin_purchases,
    "gifts": gifts,
    "orders": orders,
    "fund_payouts": fund_payouts,
}
