"""When the pipeline runs by itself: a daily schedule and a sensor on the raw folders.

Both launch the ``revenue_pipeline`` job as ONE run over a range of EVENT dates,
using the same partition-range tags as ``revwh run`` and single-run backfills.
One run per request, rather than one per partition, because every run ends by
publishing the whole ``warehouse.duckdb``: several runs for the same change
would publish it several times, race on the shared quarantine and warehouse
outputs and each pay Dagster's per-run start-up cost.

Why the ranges look the way they do: an event of date E may arrive on E..E+3
(SPEC §4 rule 4). So a copy that arrives on day A can change event dates
A-3..A and nothing else. The landing assets re-land the arrival days of the run
range (cheaply skipping raw partitions whose fingerprint is unchanged) and the
arrival days up to three days after it whose raw folder exists or was landed (see
``pipelines.defs.landing._arrival_days``), so a range over event dates A-3..A
picks up arrival day A and every later copy of those dates already on disk.

* ``daily_revenue_pipeline`` (01:00 UTC): closes arrival day A = yesterday by
  re-materialising event dates A-3..A. The hour of grace lets producers flush
  the last files of day A before it is landed.
* ``raw_files_sensor`` (every minute): notices new, changed or removed raw
  files from their names, sizes and modification times only (the same
  fingerprint landing uses; no file is read) and requests event dates
  [min(A)-3, max(A)] for the changed arrival days A. Its cursor remembers the
  fingerprint of every arrival day it has requested, so a change is requested
  exactly once and a repeated tick requests nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Protocol

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipelines.contract import LOGS, MAX_LATENESS_DAYS, PARTITIONS_START
from pipelines.defs.common import DataDirResource
from pipelines.lake import DataDir
from pipelines.landing.land import fingerprint, raw_files, read_manifest
from pipelines.landing.unread_raw import arrival_folder_day

# The job both targets launch. It is defined in pipelines/definitions.py, which imports this module,
# so the name is repeated here (tests/test_automation.py asserts the two agree).
PIPELINE_JOB_NAME = "revenue_pipeline"

FIRST_PARTITION = dt.date.fromisoformat(PARTITIONS_START)
DAILY_CRON = "0 1 * * *"
SENSOR_INTERVAL_SECONDS = 60
# A day whose newest raw file changed less than this long ago is left for a later tick: a producer may
# still be writing it, and landing a half-written file would only cost a second run.
SETTLE_SECONDS = 30
CURSOR_VERSION = 1
SOURCE_TAG = "revwh/source"
ARRIVAL_DAYS_TAG = "revwh/arrival_days"


def range_tags(start: dt.date, end: dt.date, source: str) -> dict[str, str]:
    """The tags that make a run of the partitioned job cover event dates start..end (one run)."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
        SOURCE_TAG: source,
    }


def last_complete_day(now: dt.datetime) -> dt.date:
    """The newest partition of DAILY at ``now``: UTC daily partitions exist once their day has ended."""
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def _has_reference(data: DataDir) -> bool:
    """A run without reference tables can only fail, so automation skips instead (with a reason)."""
    return (data.reference / "countries.csv").is_file()


# --------------------------------------------------------------------------- the daily schedule


def daily_run_request(data: DataDir, today: dt.date) -> dg.RunRequest | dg.SkipReason:
    """The run the schedule launches on ``today``: arrival day A = today-1, event dates A-3..A."""
    arrival = today - dt.timedelta(days=1)
    if arrival < FIRST_PARTITION:
        return dg.SkipReason(f"arrival day {arrival} is before the first partition {FIRST_PARTITION}")
    if not _has_reference(data):
        return dg.SkipReason(f"no reference tables in {data.root} (run `revwh generate` or set REVWH_DATA_DIR)")
    if not any(raw_files(data, log, arrival) for log in LOGS):
        # Nothing arrived, so no event date can have changed; a later arrival is the sensor's business.
        return dg.SkipReason(f"no raw files arrived on {arrival}")
    start = max(arrival - dt.timedelta(days=MAX_LATENESS_DAYS), FIRST_PARTITION)
    tags = range_tags(start, arrival, "schedule") | {ARRIVAL_DAYS_TAG: arrival.isoformat()}
    return dg.RunRequest(run_key=f"daily-{arrival.isoformat()}", tags=tags)


def _tick_day(context: dg.ScheduleEvaluationContext) -> dt.date:
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    return when.astimezone(dt.UTC).date()


@dg.schedule(
    name="daily_revenue_pipeline",
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    job_name=PIPELINE_JOB_NAME,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "01:00 UTC: land yesterday's arrival day A and rebuild the event dates it can change, A-3..A, in one "
        "run. Skips (with a reason) when nothing arrived on A or the data directory has no reference tables."
    ),
)
def daily_revenue_pipeline(
    context: dg.ScheduleEvaluationContext, revwh: DataDirResource
) -> dg.RunRequest | dg.SkipReason:
    return daily_run_request(revwh.data(), _tick_day(context))


# --------------------------------------------------------------------------- the raw-files sensor


@dataclass(frozen=True)
class ArrivalDay:
    """What the sensor knows about one arrival day without reading a file."""

    log_fingerprints: dict[str, str]  # log -> landing's fingerprint of its raw files that day
    newest_mtime: float

    @property
    def fingerprint(self) -> str:
        text = "\n".join(f"{log}:{fp}" for log, fp in sorted(self.log_fingerprints.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _arrival_folder_day(name: str) -> dt.date | None:
    """Only the canonical spelling from the first partition on: landing reads nothing else (not dt=20250301)."""
    day = arrival_folder_day(name)
    return day if day is not None and day >= FIRST_PARTITION else None


def scan_raw(data: DataDir) -> dict[dt.date, ArrivalDay]:
    """Every arrival day that holds at least one raw file, from directory listings and stat() only.

    Uses landing's own file selection and fingerprint, so "changed" means
    exactly what makes landing re-land a partition.
    """
    found: dict[dt.date, dict[str, str]] = {}
    newest: dict[dt.date, float] = {}
    for log in LOGS:
        log_dir = data.root / "raw" / log
        if not log_dir.is_dir():
            continue
        for folder in log_dir.iterdir():
            day = _arrival_folder_day(folder.name)
            if day is None or not folder.is_dir():
                continue
            files = raw_files(data, log, day)
            if not files:
                continue
            found.setdefault(day, {})[log] = fingerprint(files)
            newest[day] = max(newest.get(day, 0.0), *(p.stat().st_mtime for p in files))
    return {day: ArrivalDay(logs, newest[day]) for day, logs in sorted(found.items())}


def _already_landed(data: DataDir, day: dt.date, arrival: ArrivalDay) -> bool:
    """True when landing's manifests say every log of the day was landed from exactly these files."""
    for log, fp in arrival.log_fingerprints.items():
        manifest = read_manifest(data, log, day)
        if manifest is None or manifest.fingerprint != fp:
            return False
    return True


@dataclass
class RawCursor:
    """The sensor's memory: the fingerprint of every arrival day it has requested (or found landed).

    ``seq`` counts requests. It is part of the run key, so a day whose files go
    back to an earlier state (a file added, then removed) is requested again
    instead of being mistaken for the old request by Dagster's run-key dedup.
    """

    days: dict[str, str] = field(default_factory=dict)
    seq: int = 0

    @classmethod
    def parse(cls, text: str | None) -> RawCursor | None:
        if not text:
            return None
        try:
            value = json.loads(text)
            if value.get("v") != CURSOR_VERSION:
                return None  # an older layout: start again from the lake's manifests
            return cls(days=dict(value["days"]), seq=int(value["seq"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # a cursor edited by hand into nonsense: same, rather than failing every tick

    def dumps(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "seq": self.seq, "days": dict(sorted(self.days.items()))})


@dataclass(frozen=True)
class SensorDecision:
    """One evaluation's outcome: the run to request (if any), the cursor to store, and why."""

    run_request: dg.RunRequest | None
    cursor: str
    reason: str


def _describe_days(days: list[dt.date]) -> str:
    if len(days) <= 10:
        return ",".join(d.isoformat() for d in days)
    return f"{days[0]}..{days[-1]} ({len(days)} days)"


def evaluate_raw_changes(
    data: DataDir,
    cursor: str | None,
    *,
    now: dt.datetime,
    settle_seconds: float = SETTLE_SECONDS,
) -> SensorDecision:
    """Compare the raw folders with the cursor and decide the one run (if any) to request.

    With no cursor (first tick, or a reset), an arrival day counts as handled
    when landing's manifests match its current files, so starting the sensor
    on a data directory that ``revwh run`` already processed requests nothing.
    Days changed within ``settle_seconds`` of ``now`` wait for a later tick and
    days too far in the future for any event-date partition wait until one
    exists; neither is recorded in the cursor, so neither is lost.
    """
    state = RawCursor.parse(cursor)
    current = scan_raw(data)
    if state is None:
        state = RawCursor(
            days={d.isoformat(): a.fingerprint for d, a in current.items() if _already_landed(data, d, a)}
        )
    known = {dt.date.fromisoformat(d): fp for d, fp in state.days.items()}
    changed = sorted({d for d, a in current.items() if known.get(d) != a.fingerprint} | (known.keys() - current))

    last_partition = last_complete_day(now)
    settling = [
        d
        for d in changed
        if settle_seconds > 0 and d in current and now.timestamp() - current[d].newest_mtime < settle_seconds
    ]
    too_early = [d for d in changed if d - dt.timedelta(days=MAX_LATENESS_DAYS) > last_partition]
    ready = [d for d in changed if d not in settling and d not in too_early]
    waiting = ""
    if settling:
        waiting += f"; waiting for {_describe_days(settling)} to settle"
    if too_early:
        waiting += f"; {_describe_days(too_early)} has no event-date partition yet"

    if not ready:
        return SensorDecision(None, state.dumps(), f"no new or changed raw files{waiting}")
    if not _has_reference(data):
        reason = f"no reference tables in {data.root}; not requesting {_describe_days(ready)}"
        return SensorDecision(None, state.dumps(), reason)

    for day in ready:
        if day in current:
            state.days[day.isoformat()] = current[day].fingerprint
        else:  # every file of the day was removed: re-land it empty once, then forget it
            state.days.pop(day.isoformat(), None)
    state.seq += 1
    start = max(ready[0] - dt.timedelta(days=MAX_LATENESS_DAYS), FIRST_PARTITION)
    end = min(ready[-1], last_partition)
    fingerprints = {d.isoformat(): current[d].fingerprint if d in current else "removed" for d in ready}
    digest = hashlib.sha256(json.dumps(fingerprints, sort_keys=True).encode()).hexdigest()[:16]
    request = dg.RunRequest(
        run_key=f"raw-{state.seq}-{digest}",
        tags=range_tags(start, end, "sensor") | {ARRIVAL_DAYS_TAG: _describe_days(ready)},
    )
    reason = f"arrival days {_describe_days(ready)} changed: event dates {start}..{end}{waiting}"
    return SensorDecision(request, state.dumps(), reason)


class Evaluate(Protocol):
    """How a sensor decides: the data directory and cursor in, one SensorDecision out."""

    def __call__(
        self, data: DataDir, cursor: str | None, *, now: dt.datetime, settle_seconds: float
    ) -> SensorDecision: ...


@dataclass(frozen=True)
class DecisionSensor:
    """A sensor on the pipeline job whose every tick is ``evaluate``: the logic stays a plain, testable
    function, and every sensor reports skips and requests the same way."""

    name: str
    description: str
    evaluate: Evaluate

    def build(
        self,
        name: str | None = None,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    ) -> dg.SensorDefinition:
        """The sensor definition; tests pass another name and a settle time of 0 so they need not wait."""
        evaluate = self.evaluate

        @dg.sensor(
            name=name or self.name,
            job_name=PIPELINE_JOB_NAME,
            minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
            default_status=default_status,
            description=self.description,
        )
        def _sensor(context: dg.SensorEvaluationContext, revwh: DataDirResource) -> dg.SensorResult:
            now = dt.datetime.fromtimestamp(time.time(), dt.UTC)
            decision = evaluate(revwh.data(), context.cursor, now=now, settle_seconds=settle_seconds)
            if decision.run_request is None:  # the UI shows the skip reason; no log line every minute
                return dg.SensorResult(skip_reason=dg.SkipReason(decision.reason), cursor=decision.cursor)
            context.log.info(decision.reason)
            return dg.SensorResult(run_requests=[decision.run_request], cursor=decision.cursor)

        return _sensor


RAW_FILES_SENSOR = DecisionSensor(
    "raw_files_sensor",
    "Every minute: fingerprints raw/<log>/dt=*/ (names, sizes, mtimes; no file is read) and, when "
    "arrival days changed, requests ONE run over event dates [min(A)-3, max(A)]. The JSON cursor "
    "holds each arrival day's fingerprint, so every change is requested exactly once.",
    evaluate_raw_changes,
)
build_raw_files_sensor = RAW_FILES_SENSOR.build

raw_files_sensor = build_raw_files_sensor()

SCHEDULES = [daily_revenue_pipeline]
SENSORS = [raw_files_sensor]
