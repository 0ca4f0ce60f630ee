"""Land one (log, arrival day): raw NDJSON → typed Parquet by event date + quarantine.

The whole day goes through one streaming DuckDB ``COPY``, so memory stays
bounded however large the day is. The partition is written beside the old one
and swapped in, so a re-run replaces it and never doubles it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipelines.contract import MAX_LATENESS_DAYS
from pipelines.duck import compute_connection, sql_list
from pipelines.lake import DataDir, replace_dir, temp_sibling
from pipelines.landing.rules_sql import landing_select, register_udfs
from pipelines.quality.quarantine import QUARANTINE_COLUMNS_SQL, write_empty_quarantine

RAW_SUFFIXES = (".jsonl", ".jsonl.gz")
# Bump when the landing rules change, so a re-run re-lands unchanged raw files.
LANDING_VERSION = "1"


@dataclass
class LandingStats:
    """What one landing partition saw; kept in its manifest for checks and metadata."""

    log: str
    arrival_date: str
    files: int = 0
    landed: int = 0  # non-blank lines (copies)
    accepted: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_event_date: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    skipped: bool = False


def raw_files(data: DataDir, log: str, arrival: dt.date) -> list[Path]:
    """Every .jsonl / .jsonl.gz file of a partition folder (a missing folder has none)."""
    folder = data.raw_partition(log, arrival)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(RAW_SUFFIXES))


def fingerprint(files: list[Path]) -> str:
    """Names, sizes and modification times: changes whenever a raw file does."""
    h = hashlib.sha256(LANDING_VERSION.encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_manifest(data: DataDir, log: str, arrival: dt.date) -> LandingStats | None:
    path = data.manifest_file("landing", log, arrival)
    if not path.exists():
        return None
    return LandingStats(**json.loads(path.read_text()))


def _write_manifest(data: DataDir, stats: LandingStats) -> None:
    path = data.manifest_file("landing", stats.log, dt.date.fromisoformat(stats.arrival_date))
    tmp = temp_sibling(path)
    tmp.write_text(json.dumps(asdict(stats), indent=1, sort_keys=True))
    os.replace(tmp, path)


def _readable(files: list[Path]) -> list[Path]:
    """Drop empty files (DuckDB's reader refuses them; they hold no lines anyway)."""
    return [p for p in files if p.stat().st_size > 0]


def land_partition(data: DataDir, log: str, arrival: dt.date, *, force: bool = False) -> LandingStats:
    """Apply rules 1–4 to every copy of ``log`` that arrived on ``arrival``.

    Skips the work (and says so) when the raw files are unchanged since the
    last landing of this partition, unless ``force``.
    """
    files = raw_files(data, log, arrival)
    fp = fingerprint(files)
    previous = read_manifest(data, log, arrival)
    if previous and previous.fingerprint == fp and not force and data.landing_partition(log, arrival).exists():
        previous.skipped = True
        return previous

    stats = LandingStats(log=log, arrival_date=arrival.isoformat(), files=len(files), fingerprint=fp)
    final_dir = data.landing_partition(log, arrival)
    quarantine_path = data.quarantine_file("landing", log, arrival)
    work = temp_sibling(final_dir)
    work.mkdir(parents=True)
    accepted_dir = work / "accepted"
    accepted_dir.mkdir()
    readable = _readable(files)
    try:
        if readable:
            _copy_partition(data, log, arrival, readable, work, accepted_dir, quarantine_path, stats)
        else:
            write_empty_quarantine(quarantine_path)
        replace_dir(accepted_dir, final_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _write_manifest(data, stats)
    return stats


def _copy_partition(
    data: DataDir,
    log: str,
    arrival: dt.date,
    files: list[Path],
    work: Path,
    accepted_dir: Path,
    quarantine_path: Path,
    stats: LandingStats,
) -> None:
    con = compute_connection(data)
    try:
        register_udfs(con)
        select = landing_select(log, sql_list(files), arrival.isoformat())
        split = work / "split"
        con.execute(
            f"""COPY (
                    SELECT *, CASE WHEN reason IS NULL THEN strftime(event_date, '%Y-%m-%d')
                                   ELSE 'rejected' END AS part
                    FROM ({select})
                ) TO '{split.as_posix()}' (FORMAT parquet, PARTITION_BY (part), COMPRESSION zstd)"""
        )
        for part in sorted(split.iterdir()) if split.exists() else []:
            value = part.name.split("=", 1)[1]
            if value == "rejected":
                continue
            os.replace(part, accepted_dir / f"event_date={value}")
        rejected = split / "part=rejected"
        tmp_q = temp_sibling(quarantine_path)
        if rejected.exists():
            con.execute(
                f"""COPY (SELECT {QUARANTINE_COLUMNS_SQL.format(log=log, stage="landing")}
                          FROM read_parquet('{rejected.as_posix()}/*.parquet'))
                    TO '{tmp_q.as_posix()}' (FORMAT parquet)"""
            )
            os.replace(tmp_q, quarantine_path)
            rows = con.execute(
                f"SELECT reason, count(*) FROM read_parquet('{rejected.as_posix()}/*.parquet') GROUP BY 1"
            ).fetchall()
            stats.by_reason = {r: int(n) for r, n in sorted(rows)}
        else:
            write_empty_quarantine(quarantine_path)
        if any(accepted_dir.iterdir()):
            rows = con.execute(
                f"""SELECT strftime(event_date, '%Y-%m-%d'), count(*)
                    FROM read_parquet('{accepted_dir.as_posix()}/*/*.parquet', hive_partitioning = false)
                    GROUP BY 1"""
            ).fetchall()
            stats.by_event_date = {d: int(n) for d, n in sorted(rows)}
    finally:
        con.close()
    stats.accepted = sum(stats.by_event_date.values())
    stats.quarantined = sum(stats.by_reason.values())
    stats.landed = stats.accepted + stats.quarantined


def landing_files_for_event_date(data: DataDir, log: str, event_date: dt.date) -> list[Path]:
    """Accepted copies with this event date, from arrival days D..D+3 (rule 4's window)."""
    out: list[Path] = []
    for lag in range(MAX_LATENESS_DAYS + 1):
        folder = data.landing_partition(log, event_date + dt.timedelta(days=lag))
        part = folder / f"event_date={event_date.isoformat()}"
        if part.is_dir():
            out.extend(sorted(part.glob("*.parquet")))
    return out
