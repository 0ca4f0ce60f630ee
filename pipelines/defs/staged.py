"""staged/<log>: one asset per log, partitioned by EVENT date: rules 5–9, clean events only."""

import datetime as dt
import shlex

import dagster as dg

from pipelines.contract import LOGS, MAX_LATENESS_DAYS, arrival_days
from pipelines.defs.automation import FIRST_PARTITION
from pipelines.defs.common import DAILY, DataDirResource, key, partition_dates
from pipelines.defs.landing import landing_key
from pipelines.defs.schema_metadata import column_schema
from pipelines.lake import DataDir, parquet_chunks
from pipelines.landing.land import CHANGED_DAYS_METADATA, CHANGED_SINCE_LANDED, NOT_LANDED, landing_buckets, landing_lag
from pipelines.parallel import thread_map
from pipelines.quality.reconcile import staged_balance_problems
from pipelines.schemas.clean import clean_schema, validate_clean
from pipelines.staged.far_conflicts import find_far_conflicts
from pipelines.staged.stage import outdated_dates, stage_days


def staged_key(log: str) -> dg.AssetKey:
    return dg.AssetKey(["staged", log])


def _window_around(days: list[dt.date]) -> list[dt.date]:
    """Event dates outside ``days`` whose arrival window (E..E+3) meets the arrival days a run of
    ``days`` lands (START..END+3): START-3..START-1 and END+1..END+3, and any gap in between."""
    first, last, run = min(days), max(days), set(days)
    span = (last - first).days + 2 * MAX_LATENESS_DAYS + 1
    window = [first - dt.timedelta(days=MAX_LATENESS_DAYS - i) for i in range(span)]
    return [d for d in window if d >= FIRST_PARTITION and d not in run]


def _arrival_days_landed(context: dg.AssetExecutionContext, data: DataDir, log: str, days: list[dt.date]) -> list[str]:
    """Event date D reads the copies that arrived on D..D+3. An arrival day with raw files that was
    never landed would drop its copies without a word, so it stops the step (a run that selects
    staged without landing, e.g. a backfill of the staged group alone). A day whose raw files changed
    since it was landed is only behind: the raw-files sensor re-runs it, so that is a warning."""
    lags = {a: lag for a in arrival_days(days) if (lag := landing_lag(data, log, a))}
    missing = [a.isoformat() for a, lag in lags.items() if lag == NOT_LANDED]
    if missing:
        first, last = min(days).isoformat(), max(days).isoformat()
        raise dg.Failure(
            description=(
                f"staged/{log}: arrival day {', '.join(missing)} {NOT_LANDED}, and event dates {first}..{last} "
                f"read the copies that arrived up to three days after them. Materialise landing/{log} together "
                f"with staged/{log} (the whole job does), or run `revwh run --data-dir {shlex.quote(str(data.root))} "
                f"--start {first} --end {last}`."
            )
        )
    changed = [a.isoformat() for a, lag in lags.items() if lag == CHANGED_SINCE_LANDED]
    if changed:
        context.log.warning(
            f"staged/{log}: arrival day {', '.join(changed)} {CHANGED_SINCE_LANDED}; this run stages what was "
            "landed. Materialise landing with staged (or let the raw-files sensor do it) to publish the new files."
        )
    return changed


def build_staged_asset(log: str) -> list:
    @dg.asset(
        key=staged_key(log),
        partitions_def=DAILY,
        group_name="staged",
        kinds={"polars", "pandera", "parquet"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Staged D reads landing D..D+3, but the dependency is declared partition to partition: a
        # UI backfill maps its range downstream through this mapping, and a D..D+3 window widened staged
        # to S-3..E and split the backfill into a landing run and a run without the look-ahead days.
        # Landing lands E+1..E+3 itself when staged is in its run (landing._arrival_days), and the step
        # refuses a date whose arrival days were never landed (_arrival_days_landed).
        deps=[landing_key(log)],
        description=(
            f"Clean `{log}` events of one event date: copies from arrival days D..D+3, identical "
            "redeliveries collapsed, conflicting duplicates rejected (rule 5, also against copies of the id "
            "on any other date in the lake), then invalid_value (pandera model), unknown_reference, "
            "missing_fx_rate and underage (rules 6–9) sent to the quarantine."
        ),
        metadata={"dagster/column_schema": column_schema(log)},
    )
    def _staged(context: dg.AssetExecutionContext, revwh: DataDirResource) -> dg.MaterializeResult:
        data, ref = revwh.data(), revwh.reference()
        totals = {"copies": 0, "collapsed": 0, "accepted": 0, "quarantined": 0}
        reasons: dict[str, int] = {}
        days = partition_dates(context)
        behind = _arrival_days_landed(context, data, log, days)
        with find_far_conflicts(data, log, days, landing_buckets()) as far:
            for stats in stage_days(data, log, days, ref, far=far):
                day = dt.date.fromisoformat(stats.event_date)
                context.log.info(
                    f"staged/{log} {day}: {stats.copies} copies → {stats.accepted} events, "
                    f"{stats.collapsed} duplicates collapsed, {stats.quarantined} quarantined {stats.by_reason}"
                )
                for k in totals:
                    totals[k] += getattr(stats, k)
                for r, n in stats.by_reason.items():
                    reasons[r] = reasons.get(r, 0) + n
                context.log_event(
                    dg.AssetObservation(
                        asset_key=staged_key(log),
                        partition=key(day),
                        metadata={
                            "dagster/row_count": stats.accepted,
                            "collapsed_duplicates": stats.collapsed,
                            "quarantined": stats.quarantined,
                            "quarantine_by_reason": dg.MetadataValue.json(stats.by_reason),
                        },
                    )
                )
            stale = [d.isoformat() for d in far.stale_dates(data, days)]
            if stale:
                context.log.warning(
                    f"staged/{log}: event dates {', '.join(stale)} (outside this run) hold copies of ids whose "
                    "other copies this run changed: a copy landed on one of this run's dates (rule 5 rejects every "
                    "copy), or the copies that made them conflicting are gone. Re-run them to apply rule 5 again."
                )
        outdated = [d.isoformat() for d in outdated_dates(data, log, _window_around(days))]
        if outdated:
            context.log.warning(
                f"staged/{log}: event dates {', '.join(outdated)} (outside this run) were staged before one of "
                "their arrival days (D..D+3) was landed again from changed raw files, by this run or an earlier "
                "one. Re-run them to publish what those days hold now."
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": totals["accepted"],
                "far_conflicting_ids": far.ids,
                "stale_event_dates": dg.MetadataValue.json(stale),
                "outdated_event_dates": dg.MetadataValue.json(outdated),
                CHANGED_DAYS_METADATA: dg.MetadataValue.json(behind),
                "landed_copies": totals["copies"],
                "collapsed_duplicates": totals["collapsed"],
                "quarantined": totals["quarantined"],
                "quarantine_by_reason": dg.MetadataValue.json(reasons),
            }
        )

    @dg.asset_check(
        asset=staged_key(log),
        name="copies_balance",
        blocking=True,
        description="Per event date: landed copies = accepted + quarantined + collapsed duplicates.",
    )
    def _balance(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
        problems = [p for day in partition_dates(context) for p in staged_balance_problems(revwh.data(), log, day)]
        return dg.AssetCheckResult(passed=not problems, metadata={"problems": dg.MetadataValue.json(problems)})

    @dg.asset_check(
        asset=staged_key(log),
        name="passes_pandera_model",
        blocking=True,
        description="Clean events pass the log's pandera model (data checks, not only the schema) "
        "plus the reference, FX and age rules.",
    )
    def _valid(context: dg.AssetCheckExecutionContext, revwh: DataDirResource) -> dg.AssetCheckResult:
        data, ref = revwh.data(), revwh.reference()
        failures: list[str] = []
        rows = 0
        schema = clean_schema(log, ref)

        def validate_day(day) -> tuple[int, str | None]:
            path = data.staged_file(log, day)
            if not path.exists():
                return 0, f"{day}: staged file missing"
            n = 0
            for frame in parquet_chunks(path):  # about 1M rows at a time: bounded memory
                n += frame.height
                try:
                    validate_clean(log, frame, ref, schema=schema)
                except Exception as exc:  # pandera SchemaErrors or the FX coverage error
                    return n, f"{day}: {str(exc)[:500]}"
            return n, None

        for n, failure in thread_map(validate_day, partition_dates(context)):
            rows += n
            if failure:
                failures.append(failure)
        return dg.AssetCheckResult(
            passed=not failures,
            metadata={"rows_validated": rows, "failures": dg.MetadataValue.json(failures)},
        )

    return [_staged, _balance, _valid]


STAGED = [d for log in LOGS for d in build_staged_asset(log)]
