"""Entries under raw/ that landing never reads: a misspelt log or dt= folder, a file not named *.jsonl[.gz].

SPEC §1 fixes the layout (raw/<log>/dt=YYYY-MM-DD/<name>.jsonl or .jsonl.gz) and landing reads only
what fits it. Anything else is most likely a producer's mistake (raw/impresions, dt=2025-3-01,
part-0.json) whose lines would be missing from the numbers without a word, so runs name it. Only
directory listings: no file is opened. Hidden names (a leading dot: a producer's temporary file, an
editor's or a file manager's) are neither read nor reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from pipelines.contract import LOGS, PARTITIONS_START
from pipelines.errors import CliError
from pipelines.lake import DataDir
from pipelines.landing.land import RAW_SUFFIXES

FIRST_ARRIVAL = dt.date.fromisoformat(PARTITIONS_START)
SHOWN = 3  # names shown per folder; the rest are counted


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:  # no permission: landing could not read it either
        raise CliError(f"cannot list {folder}: {exc.strerror or exc}") from None


def _names(entries: list[Path]) -> str:
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:SHOWN])
    return shown + (f" and {len(entries) - SHOWN} more" if len(entries) > SHOWN else "")


def arrival_folder_day(name: str) -> dt.date | None:
    """The arrival day of a folder named exactly dt=YYYY-MM-DD (landing reads no other spelling)."""
    try:
        day = dt.date.fromisoformat(name.removeprefix("dt="))
    except ValueError:
        return None
    return day if name == f"dt={day.isoformat()}" else None


def unknown_log_folders(data: DataDir) -> list[str]:
    """raw/<name> entries that are not one of the five logs."""
    raw = data.root / "raw"
    unknown = [p for p in _visible(raw) if p.name not in LOGS]
    if not unknown:
        return []
    return [f"raw/ holds {_names(unknown)}, not one of the logs ({', '.join(LOGS)}): nothing in it is read"]


def unread_log_entries(data: DataDir, log: str, arrivals: Iterable[dt.date] = ()) -> list[str]:
    """In raw/<log>/: entries that are not a dt=YYYY-MM-DD folder from the first partition on; in the
    folders of ``arrivals``: entries that are not a .jsonl / .jsonl.gz file."""
    log_dir = data.root / "raw" / log
    notes = []
    misnamed, early = [], []
    for entry in _visible(log_dir):
        day = arrival_folder_day(entry.name) if entry.is_dir() else None
        if day is None:
            misnamed.append(entry)
        elif day < FIRST_ARRIVAL:
            early.append(entry)
    if misnamed:
        notes.append(f"raw/{log}/ holds {_names(misnamed)}, not a folder named dt=YYYY-MM-DD: nothing in it is read")
    if early:
        notes.append(f"raw/{log}/ holds {_names(early)}, before the first daily partition {FIRST_ARRIVAL}: not read")
    for day in sorted(set(arrivals)):
        folder = data.raw_partition(log, day)
        visible = _visible(folder)
        # is_file: a link in a loop or to nothing is not a file either
        not_files = [p for p in visible if p.name.endswith(RAW_SUFFIXES) and not p.is_file()]
        unread = [p for p in visible if not p.name.endswith(RAW_SUFFIXES)]
        if not_files:
            notes.append(
                f"raw/{log}/{folder.name}/ holds {_names(not_files)}, not read: not a regular file "
                "(a folder, a broken or looping link, a pipe)"
            )
        if unread:
            notes.append(
                f"raw/{log}/{folder.name}/ holds {_names(unread)}, not read: only files named *.jsonl or *.jsonl.gz are"
            )
    return notes


def unread_raw_notes(data: DataDir, arrivals: Iterable[dt.date] = ()) -> list[str]:
    """Everything under raw/ that landing skips: unknown logs, misnamed folders, and the unread entries
    of the ``arrivals`` folders of every log."""
    days = list(arrivals)
    return unknown_log_folders(data) + [note for log in LOGS for note in unread_log_entries(data, log, days)]
