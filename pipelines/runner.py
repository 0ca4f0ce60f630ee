"""`revwh run`: materialise every asset for a range of event dates in ONE Dagster run.

The run targets the event-date range START..END; the landing assets extend it
to the arrival days START..END+3 that those event dates depend on (SPEC §6).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipelines.cli import CliError
from pipelines.console_log import is_interrupt, root_error, self_explained_text, short_console_logger
from pipelines.contract import LOGS, MAX_LATENESS_DAYS, PARTITIONS_START
from pipelines.lake import DataDir
from pipelines.landing.land import CHANGED_DAYS_METADATA, raw_files
from pipelines.landing.unread_raw import unread_raw_notes
from pipelines.pool_slots import owner_tags, release_stale_slots
from pipelines.reference import ReferenceError, load_reference
from pipelines.writer_lock import Swept, writer_lock

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo  # the error of a Dagster event

FIRST_PARTITION = dt.date.fromisoformat(PARTITIONS_START)
WAREHOUSE_STEP = "warehouse"  # the step key of the asset that publishes warehouse.duckdb


def _instance() -> dg.DagsterInstance:
    """The persistent instance of $DAGSTER_HOME when set (runs then show in `make ui`), else ephemeral."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


LAST_END = dt.date.max - dt.timedelta(days=MAX_LATENESS_DAYS)


def check_dates(start: dt.date, end: dt.date) -> None:
    """The range is one a run can cover (checked before anything is printed or pulled)."""
    if end < start:
        raise CliError(f"--end {end} is before --start {start}")
    if start < FIRST_PARTITION:
        raise CliError(f"--start {start} is before the first daily partition {FIRST_PARTITION}")
    if end > LAST_END:  # the run lands arrival days up to END+3
        raise CliError(
            f"--end {end} is after {LAST_END}: a run lands the arrival days up to END+3, and dates end at {dt.date.max}"
        )


def validate_range(data_dir: Path, start: dt.date, end: dt.date) -> DataDir:
    check_dates(start, end)
    data = DataDir.at(data_dir)
    if data.root.exists() and not data.root.is_dir():
        raise CliError(f"--data-dir {data_dir} is a file, not a data directory")
    if not data.root.is_dir():
        raise CliError(f"data directory {data_dir} does not exist (create it with `revwh generate`)")
    try:
        load_reference(data)
    except ReferenceError as exc:
        raise CliError(str(exc)) from exc
    return data


def has_raw_files(data: DataDir, start: dt.date, end: dt.date) -> bool:
    """Whether any log has a raw file for the arrival days START..END+3 the run lands."""
    days = (end - start).days + 1 + MAX_LATENESS_DAYS
    return any(raw_files(data, log, start + dt.timedelta(days=i)) for log in LOGS for i in range(days))


def run_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    return {
        ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
        "revwh/source": "cli",
    } | owner_tags()


def execute_range(
    data_dir: Path,
    start: dt.date,
    end: dt.date,
    *,
    log_level: str = "INFO",
    instance: dg.DagsterInstance | None = None,
    executor: str = "in_process",
    shown_before_run: Sequence[str] = (),
) -> dg.ExecuteInProcessResult:
    """Run the pipeline job for event dates start..end; returns Dagster's result.

    executor "in_process" runs every step in this process; "celery" sends each
    step to the Celery workers (pipelines.distributed), whose result has the
    same success/run_id/all_events. ``shown_before_run``: warnings the caller
    already printed, which the console log then leaves out.
    """
    from pipelines.marts.build import MartSqlError

    try:
        from pipelines.definitions import PIPELINE_JOB, build_definitions
    except MartSqlError as exc:  # the code location cannot load: nothing to run
        raise CliError(str(exc)) from exc

    data = validate_range(data_dir, start, end)
    if not has_raw_files(data, start, end):
        # legal (the marts of those dates are published empty), but usually a mistyped year
        last_arrival = end + dt.timedelta(days=MAX_LATENESS_DAYS)
        print(
            f"revwh run: warning: no raw files for arrival days {start}..{last_arrival} in {data.root / 'raw'}; "
            "those event dates will have empty marts",
            file=sys.stderr,
            flush=True,
        )
    instance = instance or _instance()
    for line in release_stale_slots(instance):
        print(f"revwh run: {line}", file=sys.stderr, flush=True)
    if executor == "celery":
        from pipelines.distributed import execute_range_celery

        return execute_range_celery(data, run_tags(start, end), log_level=log_level, instance=instance)
    job = build_definitions(data.root, loggers={"console": short_console_logger}).resolve_job_def(PIPELINE_JOB)
    return job.execute_in_process(
        instance=instance,
        tags=run_tags(start, end),
        run_config={
            "loggers": {"console": {"config": {"log_level": log_level, "shown_before_run": list(shown_before_run)}}}
        },
        raise_on_error=False,
    )


def _error_text(error: SerializableErrorInfo | None, published: bool = False) -> str:
    """The error's message; the project's own errors are written to be read, so without their class path.

    ``published``: the run's ``warehouse`` step had succeeded before the error (an interrupt during the report)."""
    if error is None:
        return "unknown error"
    if is_interrupt(error):
        if published:
            return (
                "interrupted after the warehouse was published (it holds this run's checked partitions); the "
                "steps after it did not finish: re-run the range to finish them"
            )
        return (
            "interrupted; every lake partition is whole (old or new), the published warehouse is unchanged: "
            "re-run the range"
        )
    explained = self_explained_text(error)  # the project's own errors and dagster.Failure: without class path
    return explained if explained is not None else error.message.strip()


def _clip(text: str, limit: int = 800) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    messages = []
    published = any(event.is_step_success and event.step_key == WAREHOUSE_STEP for event in result.all_events)
    for event in result.all_events:
        if event.is_step_failure:
            error = root_error(event.step_failure_data.error)  # the user's exception, not Dagster's wrapper
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # the failed check's own line (below) says which and why
            messages.append(f"step {event.step_key} failed: {_error_text(error, published)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                key = evaluation.asset_check_key
                problems = evaluation.metadata.get("problems")
                said = (
                    "; ".join(map(str, problems.value))
                    if problems is not None and isinstance(problems.value, list) and problems.value
                    else str({k: v.value for k, v in evaluation.metadata.items()})
                )
                messages.append(f"check {key.asset_key.to_user_string()}:{key.name} failed: {_clip(said)}")
    return messages


def stale_date_notes(result: dg.ExecuteInProcessResult, data_dir: Path | str | None = None) -> list[str]:
    """Dates outside the run whose published numbers the run left out of date, from the staged
    materialisations: ``stale_event_dates`` (rule 5 now judges copies of theirs differently) and
    ``outdated_event_dates`` (their arrival days were landed again). The run cannot rewrite them; the
    user re-runs them. Also the arrival days whose raw files changed after the run landed them (from the
    landing check and staged), whose new lines wait for the next run. ``data_dir``: the directory as the
    user gave it, so each printed command can be pasted as it is."""
    where = f" --data-dir {shlex.quote(str(data_dir))}" if data_dir is not None else ""
    found: dict[str, dict[str, set[str]]] = {
        "stale_event_dates": {},
        "outdated_event_dates": {},
        CHANGED_DAYS_METADATA: {},
    }
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            asset_key, metadata = materialization.asset_key, materialization.metadata
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":  # the landing check reports changed days too
            asset_key, metadata = event.event_specific_data.asset_key, event.event_specific_data.metadata
        else:
            continue
        for name, dates in found.items():
            value = metadata.get(name)
            for day in value.value if value is not None else []:
                dates.setdefault(day, set()).add(asset_key.to_user_string())
    why = {
        "stale_event_dates": "holds copies of ids whose other copies this run changed ({keys}); "
        "re-run it to apply rule 5 to them again",
        "outdated_event_dates": "was staged before its arrival days were landed again from changed raw files "
        "({keys}); re-run it to publish what they hold now",
    }
    notes = [
        f"event date {day} {why[name].format(keys=', '.join(sorted(keys)))}: revwh run{where} --start {day} --end {day}"
        for name, dates in found.items()
        if name != CHANGED_DAYS_METADATA
        for day, keys in sorted(dates.items())
    ]
    for day, keys in sorted(found[CHANGED_DAYS_METADATA].items()):
        arrival = dt.date.fromisoformat(day)
        first = max(arrival - dt.timedelta(days=MAX_LATENESS_DAYS), FIRST_PARTITION)
        notes.append(
            f"arrival day {day} changed after this run landed it ({', '.join(sorted(keys))}: files written "
            f"during the run); its new lines are not in this run's numbers: "
            f"revwh run{where} --start {first} --end {day}"
        )
    return notes


def _note(text: str) -> None:
    print(f"revwh run: {text}", file=sys.stderr, flush=True)


def _note_sweep(swept: Swept) -> None:
    _note(swept.note())


# The shell's exit status for a command ended by SIGINT (128 + 2); `revwh` returns it for Ctrl-C.
INTERRUPTED = 130


def run_range(
    data_dir: Path | str, start: dt.date, end: dt.date, *, quiet: bool = False, executor: str = "in_process"
) -> int:
    """CLI entry point: exit 0 when every step and blocking check passed, 130 when interrupted, 1 otherwise.

    data_dir may be a URL (pipelines.storage): the run then works in a local
    mirror, pulled before and pushed back only after a successful run.
    """
    from pipelines.storage import RUN_PULL, RUN_PUSH, Location
    from pipelines.warehouse.snapshot import keep_seconds, restore_snapshot

    began = time.perf_counter()
    check_dates(start, end)
    keep_seconds()  # a bad $REVWH_SNAPSHOT_KEEP_MINUTES: exit 2 now, not after the run wrote the lake
    print(
        f"revwh run: event dates {start}..{end}, arrival days {start}..{end + dt.timedelta(days=MAX_LATENESS_DAYS)}",
        flush=True,
    )
    location = Location.parse(data_dir)
    with location.lock():
        if location.is_remote:
            print(f"revwh run: pulled {location.url} → {location.local}: {location.pull(RUN_PULL)}", flush=True)
            restore_snapshot(DataDir.at(location.local))  # object storage holds no links: the published files
        # quiet: the summary below says what failed; Dagster's own ERROR events carry stack traces
        log_level = "CRITICAL" if quiet else "INFO"
        arrivals = [start + dt.timedelta(days=i) for i in range((end - start).days + MAX_LATENESS_DAYS + 1)]
        unread = unread_raw_notes(DataDir.at(location.local), arrivals)
        for note in unread:
            print(f"revwh run: warning: {note}", file=sys.stderr, flush=True)
        with writer_lock(DataDir.at(location.local), "revwh run", on_wait=_note, on_sweep=_note_sweep):
            result = execute_range(
                location.local, start, end, log_level=log_level, executor=executor, shown_before_run=unread
            )
        if result.success and location.is_remote:
            print(f"revwh run: pushed {location.local} → {location.url}: {location.push(RUN_PUSH)}", flush=True)
    seconds = time.perf_counter() - began
    for note in stale_date_notes(result, data_dir):
        print(f"revwh run: warning: {note}", file=sys.stderr)
    if result.success:
        print(f"revwh run: ok in {seconds:.1f}s (run {result.run_id})", flush=True)
        return 0
    for message in failure_messages(result) or ["the run failed (see the Dagster logs above)"]:
        print(f"revwh run: error: {message}", file=sys.stderr)
    return INTERRUPTED if was_interrupted(result) else 1


def was_interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether a step failed because the run was interrupted (the exit status is then 130, as for Ctrl-C)."""
    return any(
        event.is_step_failure and is_interrupt(root_error(event.step_failure_data.error)) for event in result.all_events
    )
