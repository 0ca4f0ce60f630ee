"""landing/<log>: one asset per log, partitioned by ARRIVAL date (the raw folder's dt)."""

import datetime as dt

import dagster as dg

from pipelines.contract import LOGS, MAX_LATENESS_DAYS
from pipelines.defs.common import DAILY, DataDirResource, key, partition_dates
from pipelines.defs.schema_metadata import column_schema
from pipelines.duck import connect
from pipelines.lake import DataDir
from pipelines.landing.land import (
    CHANGED_DAYS_METADATA,
    CHANGED_SINCE_LANDED,
    LandingStats,
    land_days,
    landing_lag,
    read_manifest,
)
from pipelines.landing.unread_raw import unread_log_entries
from pipelines.parallel import thread_map
from pipelines.quality.reconcile import count_raw_lines

QUARANTINE_WARN_RATE = 0.05


def landing_key(log: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", log])


def _stats_metadata(stats: LandingStats) -> dict[str, dg.MetadataValue]:
    return {
        "landed_copies": dg.MetadataValue.int(stats.landed),
        "accepted_copies": dg.MetadataValue.int(stats.accepted),
        "quarantined_copies": dg.MetadataValue.int(stats.quarantined),
        "quarantine_by_reason": dg.MetadataValue.json(stats.by_reason),
        "raw_files": dg.MetadataValue.int(stats.files),
        "dagster/row_count": dg.MetadataValue.int(stats.accepted),  # rows in the landed Parquet
        "skipped_unchanged": dg.MetadataValue.bool(stats.skipped),
    }


def _arrival_days(context: dg.AssetExecutionContext, data: DataDir) -> tuple[list[dt.date], list[dt.date]]:
    """(days of this step's range, extra arrival days after it that this run's staged partitions need).

    A run over event dates S..E needs arrival days S..E+3. Dagster gives a run
    one partition range, so when the run also stages events, landing lands the
    following arrival days too (those whose raw folder exists, and those landed before
    whose folder was removed since: they re-land as empty, as a missing folder is an
    empty partition) and records them as materialisations of their own partitions.
    """
    days = partition_dates(context)
    selected = context.run.asset_selection or set(context.job_def.asset_layer.selected_asset_keys)
    if not any(k.path[0] == "staged" for k in selected):
        return days, []
    log = context.asset_key.path[-1]
    extra = [days[-1] + dt.timedelta(days=i) for i in range(1, MAX_LATENESS_DAYS + 1)]
    return days, [
        d for d in extra if data.raw_partition(log, d).is_dir() or data.manifest_file("landing", log, d).exists()
    ]


def build_landing_asset(log: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=landing_key(log),
        partitions_def=DAILY,
        group_name="landing",
        kinds={"duckdb", "parquet"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            f"Every copy of `raw/{log}/dt=<arrival day>/*.jsonl[.gz]`, typed, after the per-copy rules "
            "1–4 of SPEC §4 (malformed, schema_violation, future_event, late_arrival). Accepted copies go "
            "to Parquet by event date; rejected ones to the quarantine with their reason and raw line."
        ),
        metadata={"dagster/column_schema": column_schema(log, lineage=True)},
    )
    def _landing(context: dg.AssetExecutionContext, revwh: DataDirResource) -> dg.MaterializeResult:
        data = revwh.data()
        days, extra = _arrival_days(context, data)
        totals = LandingStats(log=log, arrival_date=f"{key(days[0])}..{key((extra or days)[-1])}")
        for note in unread_log_entries(data, log, days + extra):
            context.log.warning(note)
        landed = land_days(data, log, days + extra)
        for day, stats in zip(days + extra, landed, strict=True):
            context.log.info(
                f"landing/{log} dt={day}: {stats.landed} copies, {stats.accepted} accepted, "
                f"{stats.quarantined} quarantined{' (unchanged, skipped)' if stats.skipped else ''}"
            )
            totals.landed += stats.landed
            totals.accepted += stats.accepted
            totals.quarantined += stats.quarantined
            totals.files += stats.files
            for reason, n in stats.by_reason.items():
                totals.by_reason[reason] = totals.by_reason.get(reason, 0) + n
            event = dg.AssetMaterialization if day in extra else dg.AssetObservation
            context.log_event(event(asset_key=landing_key(log), partition=key(day), metadata=_stats_metadata(stats)))
        return dg.MaterializeResult(metadata=_stats_metadata(totals))

    @dg.asset_check(
        asset=landing_key(log),
        name="landed_equals_accepted_plus_quarantined",
        blocking=True,
        description=(
            "Per arrival day: non-blank raw lines = accepted copies + quarantined copies. A day whose raw files "
            "changed after it was landed (a producer still writing it) is reported, not counted: the next run "
            "lands it again."
        ),
    )
    def _reconcile(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
        data = revwh.data()
        problems, checked, changed = [], {}, []
        days = partition_dates(context)
        days += [days[-1] + dt.timedelta(days=i) for i in range(1, MAX_LATENESS_DAYS + 1)]
        landed = []
        for day in days:
            if read_manifest(data, log, day) is None:
                continue
            if landing_lag(data, log, day) == CHANGED_SINCE_LANDED:
                # the files now are not the ones landed: a recount would compare two versions
                changed.append(key(day))
                continue
            landed.append(day)
        with connect() as con:
            # two days at once: DuckDB inflates a .gz file on one thread (five 107 MB gzip days of
            # impressions: 7.7-8.1 s one after another, 5.0-6.0 s two at a time; plain files 1.6 -> 1.4 s)
            counts = thread_map(lambda day: count_raw_lines(data, log, day, con=con), landed)
        for day, lines in zip(landed, counts, strict=True):
            accepted, quarantined = _landed_rows(data, log, day)
            checked[key(day)] = {"raw_lines": lines, "accepted": accepted, "quarantined": quarantined}
            if lines != accepted + quarantined:
                problems.append(f"dt={day}: {lines} lines != {accepted} accepted + {quarantined} quarantined")
        if changed:
            context.log.warning(
                f"landing/{log}: arrival day {', '.join(changed)} {CHANGED_SINCE_LANDED} (files written during "
                "the run); not recounted. This run keeps what was landed; the next run lands the new files."
            )
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={
                "problems": dg.MetadataValue.json(problems),
                "days": dg.MetadataValue.json(checked),
                CHANGED_DAYS_METADATA: dg.MetadataValue.json(changed),
            },
        )

    @dg.asset_check(
        asset=landing_key(log),
        name="quarantine_rate_below_threshold",
        blocking=False,
        description=f"Warns when more than {QUARANTINE_WARN_RATE:.0%} of an arrival day's copies are rejected.",
    )
    def _rate(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
        data = revwh.data()
        rates = {}
        for day in partition_dates(context):
            stats = read_manifest(data, log, day)
            if stats and stats.landed:
                rates[key(day)] = round(stats.quarantined / stats.landed, 6)
        worst = max(rates.values(), default=0.0)
        return dg.AssetCheckResult(
            passed=worst <= QUARANTINE_WARN_RATE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"worst_rate": dg.MetadataValue.float(worst), "rates": dg.MetadataValue.json(rates)},
        )

    return [_landing, _reconcile, _rate]


def _landed_rows(data, log: str, day: dt.date) -> tuple[int, int]:
    from pipelines.quality.reconcile import landed_row_counts

    return landed_row_counts(data, log, day)


LANDING = [d for log in LOGS for d in build_landing_asset(log)]
