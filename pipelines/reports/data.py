"""What the report shows, read from the published warehouse in a few small queries.

Every ratio is recomputed from summed numerators and denominators (never by
averaging the marts' per-row ratios), and every distinct count over several
days or regions comes from ``facts.revenue_events``: the marts' distinct
counts are per row and do not add up.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import Stream
from pipelines.duck import connect

STREAMS: tuple[str, ...] = tuple(s.value for s in Stream)


def ratio(numerator: float | None, denominator: float | None, scale: float = 1.0) -> float | None:
    """numerator / denominator × scale, or None when the denominator is 0 or missing (as in the marts)."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator * scale


@dataclass
class ReportData:
    """Frames and period KPIs of the report; empty frames when the warehouse has no data yet."""

    first_day: dt.date | None
    last_day: dt.date | None
    summary: dict[str, float | int | None]
    stream_daily: pl.DataFrame  # event_date, stream, gross/fees/payouts/net
    region_streams: pl.DataFrame  # region, stream, gross_revenue_usd, net_revenue_usd (period)
    kpi_daily: pl.DataFrame  # event_date + daily KPIs
    ads_formats: pl.DataFrame
    categories: pl.DataFrame
    top_creators: pl.DataFrame
    quarantine: pl.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.stream_daily.is_empty()


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    return {r[0] for r in rows}


# Default window of the report: the last week of event dates. A fixed window keeps the daily run's cost
# independent of how much history the warehouse holds (the period user counts scan the window's facts,
# and the charts draw one point per day); `revwh report --days 28` or `--days 0` for longer views.
DEFAULT_REPORT_DAYS = 7
_TABLE = re.compile(r"\{(\w+\.\w+)\}")


def report_days() -> int:
    """Event dates the scheduled report covers: $REVWH_REPORT_DAYS (0 = all history), else 7."""
    raw = os.environ.get("REVWH_REPORT_DAYS", str(DEFAULT_REPORT_DAYS))
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"REVWH_REPORT_DAYS must be 0 (all history) or a number of days, got {raw!r}")
    return value


class _Reader:
    """Runs the report's queries with every ``{schema.table}`` limited to the report's window."""

    def __init__(self, con: duckdb.DuckDBPyConnection, since: dt.date | None) -> None:
        self.con, self.since = con, since

    def sql(self, query: str) -> str:
        def source(match: re.Match[str]) -> str:
            table = match.group(1)
            if self.since is None:
                return table
            column = "arrival_date" if table.startswith("quality.") else "event_date"
            return f"(SELECT * FROM {table} WHERE {column} >= DATE '{self.since.isoformat()}')"

        return _TABLE.sub(source, query)

    def frame(self, query: str) -> pl.DataFrame:
        return self.con.sql(self.sql(query)).pl()

    def one(self, query: str) -> tuple:
        """The single row of an aggregate query (fetchall: DuckDB 2 refuses new work on a half-read result)."""
        return self.con.execute(self.sql(query)).fetchall()[0]


_STREAM_DAILY = """
SELECT event_date, stream,
       sum(gross_revenue_usd) AS gross_revenue_usd, sum(platform_fees_usd) AS platform_fees_usd,
       sum(creator_payouts_usd) AS creator_payouts_usd, sum(net_revenue_usd) AS net_revenue_usd,
       CAST(sum(event_count) AS BIGINT) AS event_count
FROM {marts.revenue_by_stream} GROUP BY ALL ORDER BY ALL"""

_REGION_STREAMS = """
SELECT region, stream, sum(gross_revenue_usd) AS gross_revenue_usd, sum(net_revenue_usd) AS net_revenue_usd
FROM {marts.revenue_by_region} GROUP BY ALL ORDER BY ALL"""

_ADS_DAILY = """
SELECT event_date, CAST(sum(impressions) AS BIGINT) AS impressions, CAST(sum(clicks) AS BIGINT) AS clicks,
       sum(spend_usd) AS spend_usd
FROM {marts.ads_by_format} GROUP BY ALL"""

_SHOP_DAILY = """
SELECT event_date, sum(gmv_usd) AS gmv_usd, sum(refunds_usd) AS refunds_usd,
       sum(referral_revenue_usd) AS referral_revenue_usd
FROM {marts.ecommerce_by_category} GROUP BY ALL"""

# Distinct users per day and over the period, across regions: from the facts (the marts' counts are per
# region). One pass over the facts: users per (day, user) first, then counted per day and over the period;
# the row with a NULL event_date holds the period's counts.
_USERS = """
WITH day_users AS (
    SELECT event_date, user_id, bool_or(log = 'coin_purchases') AS paying,
           sum(gross_revenue_usd) FILTER (WHERE log = 'coin_purchases') AS coin_gross_usd
    FROM {facts.revenue_events} WHERE user_id IS NOT NULL GROUP BY ALL
),
period_users AS (SELECT user_id, bool_or(paying) AS paying FROM day_users GROUP BY ALL)
SELECT event_date, count(*) AS active_users, count(*) FILTER (WHERE paying) AS paying_users,
       coalesce(sum(coin_gross_usd), 0) AS coin_gross_usd
FROM day_users GROUP BY ALL
UNION ALL
SELECT NULL, count(*), count(*) FILTER (WHERE paying), NULL FROM period_users"""

_ADS_FORMATS = """
SELECT ad_format, CAST(sum(impressions) AS BIGINT) AS impressions, CAST(sum(clicks) AS BIGINT) AS clicks,
       sum(clicks) / nullif(sum(impressions), 0) AS ctr, sum(spend_usd) AS spend_usd,
       sum(spend_usd) / nullif(sum(impressions), 0) * 1000 AS ecpm_usd
FROM {marts.ads_by_format} GROUP BY ALL ORDER BY spend_usd DESC, ad_format"""

_CATEGORIES = """
SELECT category, sum(gmv_usd) AS gmv_usd, sum(refunds_usd) AS refunds_usd,
       sum(refunds_usd) / nullif(sum(gmv_usd), 0) AS refund_rate,
       sum(referral_revenue_usd) AS referral_revenue_usd,
       sum(referral_revenue_usd) / nullif(sum(gmv_usd), 0) AS take_rate,
       sum(affiliate_commissions_usd) AS affiliate_commissions_usd
FROM {marts.ecommerce_by_category} GROUP BY ALL ORDER BY gmv_usd DESC, category"""

_TOP_CREATORS = """
SELECT creator_id, sum(gift_payouts_usd) AS gift_payouts_usd, sum(fund_payouts_usd) AS fund_payouts_usd,
       sum(affiliate_commissions_usd) AS affiliate_commissions_usd, sum(total_earnings_usd) AS total_earnings_usd
FROM {marts.creator_earnings} GROUP BY ALL ORDER BY total_earnings_usd DESC, creator_id LIMIT 10"""

_QUARANTINE = """
SELECT log, reason, CAST(sum(rows) AS BIGINT) AS rows FROM {quality.quarantine_counts}
GROUP BY ALL ORDER BY rows DESC, log, reason"""


def _daily_kpis(con: _Reader, days: pl.DataFrame, users: pl.DataFrame | None) -> pl.DataFrame:
    """One row per day: the report's KPIs, each from summed numerators and denominators."""
    daily = days.join(con.frame(_ADS_DAILY), on="event_date", how="left").join(
        con.frame(_SHOP_DAILY), on="event_date", how="left"
    )
    if users is not None:
        daily = daily.join(users.filter(pl.col("event_date").is_not_null()), on="event_date", how="left")
    else:
        daily = daily.with_columns(
            pl.lit(None, pl.Int64).alias("active_users"),
            pl.lit(None, pl.Int64).alias("paying_users"),
            pl.lit(None, pl.Float64).alias("coin_gross_usd"),
        )
    rows = []
    for r in daily.sort("event_date").iter_rows(named=True):
        rows.append(
            {
                "event_date": r["event_date"],
                "net_revenue_usd": r["net_revenue_usd"],
                "active_users": r["active_users"],
                "ctr": ratio(r["clicks"], r["impressions"]),
                "ecpm_usd": ratio(r["spend_usd"], r["impressions"], 1000.0),
                "arppu_usd": ratio(r["coin_gross_usd"], r["paying_users"]),
                "take_rate": ratio(r["referral_revenue_usd"], r["gmv_usd"]),
                "refund_rate": ratio(r["refunds_usd"], r["gmv_usd"]),
                "net_per_active_user_usd": ratio(r["net_revenue_usd"], r["active_users"]),
            }
        )
    schema = {
        "event_date": pl.Date,
        "net_revenue_usd": pl.Float64,
        "active_users": pl.Int64,
        **{
            k: pl.Float64
            for k in ("ctr", "ecpm_usd", "arppu_usd", "take_rate", "refund_rate", "net_per_active_user_usd")
        },
    }
    return pl.DataFrame(rows, schema=schema)


def _summary(con: _Reader, stream_daily: pl.DataFrame, users: pl.DataFrame | None) -> dict:
    """Period totals and ratios over the whole period."""
    totals = stream_daily.select(
        pl.col("gross_revenue_usd").sum(),
        pl.col("platform_fees_usd").sum(),
        pl.col("creator_payouts_usd").sum(),
        pl.col("net_revenue_usd").sum(),
        pl.col("event_count").sum(),
    ).row(0, named=True)
    ads = con.one(
        "SELECT CAST(sum(impressions) AS BIGINT), CAST(sum(clicks) AS BIGINT), sum(spend_usd) "
        "FROM {marts.ads_by_format}",
    )
    shop = con.one(
        "SELECT sum(gmv_usd), sum(refunds_usd), sum(referral_revenue_usd) FROM {marts.ecommerce_by_category}"
    )
    coins = con.one("SELECT sum(coin_gross_usd) FROM {marts.gifts_by_region}")[0]
    period = users.filter(pl.col("event_date").is_null()) if users is not None else None
    active, paying = period.row(0)[1:3] if period is not None and period.height else (None, None)
    quarantined = con.one("SELECT CAST(coalesce(sum(rows), 0) AS BIGINT) FROM {quality.quarantine_counts}")[0]
    return {
        "gross_revenue_usd": totals["gross_revenue_usd"],
        "platform_fees_usd": totals["platform_fees_usd"],
        "creator_payouts_usd": totals["creator_payouts_usd"],
        "net_revenue_usd": totals["net_revenue_usd"],
        "accepted_events": totals["event_count"],
        "quarantined_rows": quarantined,
        "active_users": active,
        "paying_users": paying,
        "net_per_active_user_usd": ratio(totals["net_revenue_usd"], active),
        "arppu_usd": ratio(coins, paying),
        "ctr": ratio(ads[1], ads[0]),
        "ecpm_usd": ratio(ads[2], ads[0], 1000.0),
        "take_rate": ratio(shop[2], shop[0]),
        "refund_rate": ratio(shop[1], shop[0]),
    }


def load_report_data(warehouse: Path, days: int | None = None) -> ReportData:
    """Read everything the report shows from ``warehouse`` (opened read-only, closed before returning).

    ``days``: the window, the last ``days`` event dates up to the latest published one
    (0: all history; default :func:`report_days`). Quarantine rows are windowed by arrival date.
    """
    days = report_days() if days is None else days
    db = connect(str(warehouse), read_only=True)
    try:
        tables = _tables(db)
        has_facts = "facts.revenue_events" in tables
        notes = [] if has_facts else ["facts.revenue_events is not published yet: user counts are unavailable."]
        latest = db.execute("SELECT max(event_date) FROM marts.revenue_by_stream").fetchall()[0][0]
        # a window reaching before the first date there can be is all history
        since = (
            latest - dt.timedelta(days=days - 1)
            if days and latest is not None and days <= (latest - dt.date.min).days
            else None
        )
        con = _Reader(db, since)
        stream_daily = con.frame(_STREAM_DAILY)
        daily = stream_daily.group_by("event_date").agg(pl.col("net_revenue_usd").sum()).sort("event_date")
        first = daily["event_date"].min() if daily.height else None
        last = daily["event_date"].max() if daily.height else None
        if since is not None and first is not None and first > since:
            since = None  # the whole history fits in the window
        if since is not None:
            notes.append(f"The report covers the last {days} event dates; older dates are in the warehouse.")
        users = con.frame(_USERS) if has_facts else None
        return ReportData(
            first_day=first,  # type: ignore[arg-type]
            last_day=last,  # type: ignore[arg-type]
            summary=_summary(con, stream_daily, users),
            stream_daily=stream_daily,
            region_streams=con.frame(_REGION_STREAMS),
            kpi_daily=_daily_kpis(con, daily, users),
            ads_formats=con.frame(_ADS_FORMATS),
            categories=con.frame(_CATEGORIES),
            top_creators=con.frame(_TOP_CREATORS),
            quarantine=con.frame(_QUARANTINE),
            notes=notes,
        )
    finally:
        db.close()
