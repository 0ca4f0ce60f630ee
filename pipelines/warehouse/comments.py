"""Table and column descriptions in warehouse.duckdb (``COMMENT ON``), for analysts' SQL browsers.

DBeaver, DuckDB's UI and ``duckdb_tables()`` / ``duckdb_columns()`` show them next to the names. A mart's
description is the header comment of its SQL file (grain, measures, audit), the same text the Dagster UI
shows; a staged view's columns take the pandera models' descriptions. ``CREATE OR REPLACE`` drops a
comment, so the publish applies them again after every rebuild or update, in the same transaction.
"""

from __future__ import annotations

import functools

import duckdb

from pipelines.duck import sql_str
from pipelines.marts.build import mart_description, mart_names
from pipelines.schemas.events import MODELS

TABLE_DOCS = {
    "quality.quarantine": "One row per rejected event copy (SPEC §4): the log, its event_id, the arrival day, the "
    "reason of the first rule it failed, and the raw line as it arrived. stage says which layer rejected it "
    "(landing: rules 1-4 per line; staged: rules 5-9).",
    "quality.quarantine_counts": "Rows of quality.quarantine per (quarantine partition file, stage, log, reason, "
    "arrival_date): the cheap way to count rejects.",
    "facts.revenue_events": "One row per accepted event (every log), with its stream, region, USD amounts "
    "(SPEC §3) and detail columns; a view over the facts files as this warehouse published them (a snapshot of "
    "hard links under lake/_published). The marts are sums of it.",
    "_publish.files": "Bookkeeping of the publish: which lake file each published partition came from.",
    "_publish.snapshot": "The folder of hard links (lake/_published/<id>) that the views over facts and staged "
    "read: the lake's files (facts, staged, marts, quarantine) as they were when this warehouse was published.",
}
STAGED_DOC = (
    "The accepted events of the {log} log, one row per event (duplicates kept once); a view over the lake's "
    "staged files as this warehouse published them."
)

# A column whose meaning differs in one table.
TABLE_COLUMN_DOCS = {
    ("quality.quarantine", "event_id"): "the copy's event_id as written; null when the line has none (malformed), "
    "repeated by the copies of a conflicting duplicate",
}

COLUMN_DOCS = {
    # the grain
    "event_date": "UTC date of event_time (SPEC §3)",
    "stream": "revenue stream: advertising, virtual_gifts, ecommerce or creator_fund",
    "region": "region of the country, from reference/countries.csv",
    "country": "country code of the event (for gifts the sender's), from the log",
    "log": "the raw log: impressions, coin_purchases, gifts, orders or fund_payouts",
    # the measures (USD, SPEC §3)
    "gross_revenue_usd": "USD: ad spend (cpm price/1000 per impression, cpc price per click), coin sales, "
    "or the referral fee of orders (negative for refunds)",
    "platform_fees_usd": "USD: the app store's fee on coin purchases (fee_rate of the platform)",
    "creator_payouts_usd": "USD: what creators are paid: gift coins × creator_usd_per_coin, fund payouts",
    "net_revenue_usd": "USD: gross_revenue_usd − platform_fees_usd − creator_payouts_usd",
    "event_count": "accepted events that fed the row (an impression without a click counts)",
    # facts
    "event_ts": "event_time parsed, UTC",
    "event_id": "the event's id, unique per log",
    "currency": "currency of the amount (null for gifts, which are in coins)",
    "user_id": "the user: the viewer, the coin buyer, the gift sender or the order's buyer (null for fund payouts)",
    "creator_id": "the creator: the gift's receiver, the fund payout's creator or an order's affiliate creator",
    "amount_local": "the log's amount (impressions: price) in its currency",
    "usd_per_unit": "the FX rate of (event_date, currency) from reference/fx_rates.csv",
    "amount_usd": "amount_local × usd_per_unit",
    "ad_format": "in_feed, topview or branded_hashtag_challenge (impressions)",
    "pricing_model": "cpm or cpc (impressions)",
    "advertiser_id": "the advertiser (impressions)",
    "clicked": "whether the impression was clicked (impressions)",
    "platform": "ios, android or web (coin purchases)",
    "coins": "coins bought or sent (coin purchases, gifts)",
    "gift_type": "the gift, from reference/gift_catalog.csv (gifts)",
    "live_id": "the live stream the gift was sent in (gifts)",
    "order_id": "the order (orders)",
    "order_event_type": "placed or refunded (orders)",
    "category": "the shop category, from reference/shop_categories.csv (orders)",
    "channel": "live, video or shop_tab (orders)",
    "affiliate_rate": "the affiliate creator's commission rate (orders)",
    "affiliate_commission_usd": "USD paid by the seller to the affiliate creator: creator income, not platform "
    "revenue (negative for refunds)",
    "qualified_views": "views that qualified for the payout (fund payouts)",
    # the quarantine
    "arrival_date": "the arrival day (dt=) of the raw file the copy came from",
    "reason": "the first rule the copy failed (SPEC §4): malformed, schema_violation, future_event, late_arrival, "
    "conflicting_duplicate, invalid_value, unknown_reference, missing_fx_rate or underage",
    "raw": (
        "the raw line as it arrived (a byte that is not UTF-8, which makes the line malformed, shows as U+FFFD, "
        "the replacement character)"
    ),
    "stage": "the layer that rejected the copy: landing (rules 1-4) or staged (rules 5-9)",
    "source_file": "the raw file the copy came from",
    "partition_key": "the quarantine partition file the rows come from (stage/log/day)",
    # staged columns the pandera models leave undescribed
    "src": "the raw file the kept copy came from",
    "amount": "the amount in its currency (> 0)",
    "price": "the price in its currency: per thousand impressions for cpm, per click for cpc (> 0)",
    "user_age": "the user's age in years (0-130; under 18 is quarantined as underage)",
    "campaign_id": "the ad campaign",
    "event_type": "placed or refunded",
    "buyer_id": "the buyer",
    "seller_id": "the seller",
    "affiliate_creator_id": "the creator who referred the order, or null",
    "rows": "rejected copies",
}


def _objects(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str | None]]:
    """{schema.name: ('TABLE' or 'VIEW', its comment)} of what the publish made."""
    rows = con.execute(
        """SELECT schema_name || '.' || table_name, 'TABLE', comment FROM duckdb_tables()
           WHERE database_name = current_database()
           UNION ALL
           SELECT schema_name || '.' || view_name, 'VIEW', comment FROM duckdb_views()
           WHERE NOT internal AND database_name = current_database()"""
    ).fetchall()
    return {name: (kind, comment) for name, kind, comment in rows}


def table_docs() -> dict[str, str]:
    """The description of every table and view the publish can make."""
    docs = dict(TABLE_DOCS)
    docs.update({f"marts.{name}": mart_description(name, "\n") for name in mart_names()})
    docs.update({f"staged.{log}": STAGED_DOC.format(log=log) for log in MODELS})
    return docs


@functools.cache
def _model_descriptions(log: str) -> dict[str, str]:
    return {name: column.description for name, column in MODELS[log].to_schema().columns.items() if column.description}


def column_doc(table: str, column: str) -> str | None:
    if (table, column) in TABLE_COLUMN_DOCS:
        return TABLE_COLUMN_DOCS[(table, column)]
    schema, _, name = table.partition(".")
    if schema == "staged" and name in MODELS and column in _model_descriptions(name):
        return _model_descriptions(name)[column]
    return COLUMN_DOCS.get(column)


def comment_statements(con: duckdb.DuckDBPyConnection) -> list[str]:
    """COMMENT ON the published tables, views and described columns whose comment is missing or differs (after
    an incremental update: the views and the re-sorted contract marts, which were created again)."""
    objects = _objects(con)
    docs = table_docs()
    statements = [
        f"COMMENT ON {kind} {table} IS {sql_str(docs[table])}"
        for table, (kind, comment) in objects.items()
        if table in docs and comment != docs[table]
    ]
    columns = con.execute(
        """SELECT schema_name || '.' || table_name, column_name, comment FROM duckdb_columns()
           WHERE database_name = current_database()"""
    ).fetchall()
    for table, column, comment in columns:
        doc = column_doc(table, column) if table in objects else None
        if doc is not None and comment != doc:
            statements.append(f'COMMENT ON COLUMN {table}."{column}" IS {sql_str(doc)}')
    return statements


def apply_comments(con: duckdb.DuckDBPyConnection) -> None:
    """All the comments in one call. Run it inside a transaction: a commit per statement costs a second."""
    statements = comment_statements(con)
    if statements:
        con.execute("; ".join(statements))
