"""The reference sensor: re-run the event dates whose reference data changed.

A reference table edited in place (an FX rate that arrives late, a country
added, a store fee corrected) changes what rules 7 and 8 decide and what the
facts are worth, for event dates that are already published. No raw file
changed, so the raw-files sensor cannot see it.

Each staged manifest records ``Reference.fingerprint(event_date)`` of the tables
it was built with: a digest of the shared tables plus that date's FX rates. The
sensor loads the current tables, recomputes the fingerprint of every staged
event date and requests ONE run over [min, max] of the dates that differ. So a
late FX rate for one day re-runs that day; a changed fee or country re-runs
all of history (a restatement, which is what finance would expect). Manifests
written before fingerprints were recorded carry none and are left alone, so
upgrading does not start a backfill of its own.

The cursor holds a digest of the stale dates it requested and their new
fingerprints: while that run is queued or running, later ticks request nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import dagster as dg

from pipelines.contract import LOGS, REFERENCE_TABLES
from pipelines.defs.automation import (
    FIRST_PARTITION,
    SETTLE_SECONDS,
    DecisionSensor,
    SensorDecision,
    last_complete_day,
    range_tags,
)
from pipelines.lake import DataDir
from pipelines.reference import ReferenceError, load_reference

CURSOR_VERSION = 1
STALE_DATES_TAG = "revwh/stale_event_dates"


def recorded_fingerprints(data: DataDir) -> dict[dt.date, set[str]]:
    """The reference fingerprints staged manifests recorded, by event date (all logs)."""
    out: dict[dt.date, set[str]] = {}
    for log in LOGS:
        folder = data.lake / "_manifests" / "staged" / log
        for path in folder.glob("*.json") if folder.is_dir() else []:
            try:
                day = dt.date.fromisoformat(path.stem)
                recorded = json.loads(path.read_text()).get("reference", "")
            except (ValueError, OSError):
                continue  # not a manifest of ours, or replaced while being read: the next tick sees it
            if recorded:
                out.setdefault(day, set()).add(recorded)
    return out


def _newest_reference_mtime(data: DataDir) -> float:
    paths = [data.reference / f"{table}.csv" for table in REFERENCE_TABLES]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def _describe(days: list[dt.date]) -> str:
    return ",".join(d.isoformat() for d in days) if len(days) <= 10 else f"{days[0]}..{days[-1]} ({len(days)} days)"


def _cursor(requested: str, seq: int) -> str:
    return json.dumps({"v": CURSOR_VERSION, "seq": seq, "requested": requested})


def _parse(cursor: str | None) -> tuple[str, int]:
    try:
        value = json.loads(cursor or "")
        if value.get("v") == CURSOR_VERSION:
            return str(value["requested"]), int(value["seq"])
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return "", 0  # no cursor, an older layout or nonsense: the manifests say what is stale anyway


def evaluate_reference_changes(
    data: DataDir, cursor: str | None, *, now: dt.datetime, settle_seconds: float = SETTLE_SECONDS
) -> SensorDecision:
    """Compare the reference tables with what every staged event date was built with; decide the run."""
    requested, seq = _parse(cursor)
    if not (data.reference / "countries.csv").is_file():
        return SensorDecision(None, _cursor(requested, seq), f"no reference tables in {data.root}")
    if settle_seconds > 0 and now.timestamp() - _newest_reference_mtime(data) < settle_seconds:
        return SensorDecision(None, _cursor(requested, seq), "waiting for the reference tables to settle")
    try:
        reference = load_reference(data)
    except ReferenceError as exc:  # a half-edited table: say why, request nothing, look again next tick
        return SensorDecision(None, _cursor(requested, seq), f"reference tables unusable, nothing requested: {exc}")

    last = last_complete_day(now)
    stale = sorted(
        day
        for day, recorded in recorded_fingerprints(data).items()
        if FIRST_PARTITION <= day <= last and recorded != {reference.fingerprint(day)}
    )
    if not stale:
        return SensorDecision(None, _cursor("", seq), "every staged event date was built with these reference tables")
    wanted = {d.isoformat(): reference.fingerprint(d) for d in stale}
    digest = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]
    if digest == requested:
        return SensorDecision(None, _cursor(requested, seq), f"already requested: event dates {_describe(stale)}")
    seq += 1
    request = dg.RunRequest(
        run_key=f"reference-{seq}-{digest}",
        tags=range_tags(stale[0], stale[-1], "reference_sensor") | {STALE_DATES_TAG: _describe(stale)},
    )
    reason = f"reference tables changed for event dates {_describe(stale)}: event dates {stale[0]}..{stale[-1]}"
    return SensorDecision(request, _cursor(digest, seq), reason)


REFERENCE_SENSOR = DecisionSensor(
    "reference_tables_sensor",
    "Every minute: recomputes each staged event date's reference fingerprint (shared tables + that "
    "date's FX rates) and, where it differs from the one the staged manifests recorded, requests ONE "
    "run over those event dates. A late FX rate re-runs its day; a changed fee or country re-runs history.",
    evaluate_reference_changes,
)
build_reference_sensor = REFERENCE_SENSOR.build

reference_tables_sensor = build_reference_sensor()
