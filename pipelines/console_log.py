"""The console logger of `revwh run`: Dagster's log lines, without stack traces for errors that explain themselves.

A broken raw file, a bad reference table or a missing mart SQL file fails its step with a message written
to be read (the project's own exception classes, or a ``dagster.Failure``); so does Ctrl-C or SIGTERM.
Dagster's console logger prints 30-120 lines of framework stack trace under such a message, which buries
it. This logger prints the message alone on the step's failure line; the full trace stays in the run's
event log (the Dagster UI's run view), ``REVWH_TRACEBACK=1`` prints it, and any other error (a bug, whose
trace is needed) is printed in full as before.
"""

from __future__ import annotations

import logging
import os
import re
import sys

import dagster as dg
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR  # where Dagster puts the event on a record

# A serialised error's message starts with its class path, e.g. "pipelines.landing.land.RawFileError: ".
_OWN_ERROR = re.compile(r"pipelines(\.\w+)+: ")
# dagster.Failure: raised on purpose with a description; a failed blocking check: its evaluation says why
_SELF_EXPLAINED_CLASSES = {"Failure", "DagsterAssetCheckFailedError"}
FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"  # Dagster's default console format
HINT = "(stack trace: REVWH_TRACEBACK=1, or the run in the Dagster UI)"
TRACEBACK_ENV = "REVWH_TRACEBACK"


def root_error(error):
    """The user's exception under Dagster's wrappers (a SerializableErrorInfo, or None)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error


def is_interrupt(error) -> bool:
    """Ctrl-C (or SIGTERM, which Dagster maps to it): Dagster's own error between or inside steps, or the one
    DuckDB raises when the signal reaches it in the middle of a statement. (``error``: the root error.)"""
    if error is None:
        return False
    if error.cls_name in {"DagsterExecutionInterruptedError", "KeyboardInterrupt", "InterruptException"}:
        return True
    return error.cls_name == "RuntimeError" and error.message.strip().endswith("Query interrupted")


def self_explained_text(error) -> str | None:
    """The one-line text of an error written to be read, without its class path; None for any other error."""
    error = root_error(error)
    if error is None:
        return None
    if is_interrupt(error):  # the trace only shows where the step waited; `revwh run` ends with what it left
        return "interrupted"
    text = error.message.strip()
    own = _OWN_ERROR.match(text)
    if own:
        return text[own.end() :]
    if error.cls_name in _SELF_EXPLAINED_CLASSES:
        return " ".join(re.sub(r"^[\w.]+: ", "", text, count=1).split())
    return None


class ShortFailures(logging.Filter):
    """Rewrites a step failure whose error explains itself as one line: Dagster's message, then the error's."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, LOG_RECORD_METADATA_ATTR, None)
        event = meta.get("dagster_event") if isinstance(meta, dict) else None
        data = getattr(event, "event_specific_data", None)
        text = self_explained_text(getattr(data, "error", None)) if event is not None else None
        if text is not None:
            record.msg = f"{record.msg.split(chr(10), 1)[0]} {text} {HINT}"
            record.args = ()
        return True


class OneLineForAbandonedSteps(logging.Filter):
    """Dagster logs an ERROR line for every step it does not execute because a step before it failed:
    one broken raw file gives some thirty of them, under the line that says what broke. The first is
    kept, reworded to say the rest are left out; the rest stay in the run's event log (the UI)."""

    _ABANDONED = re.compile(r"Dependencies for step (\S+) .*Not executing\.$", re.DOTALL)

    def __init__(self) -> None:
        super().__init__()
        self.told = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        found = self._ABANDONED.search(message)
        if found is None:
            return True
        if self.told:
            return False
        self.told = True
        record.msg = (
            f"{message[: found.start()]}Steps that depend on a failed step are not executed (this one and "
            "the steps after it; their list is in the run's event log, the Dagster UI's run view)."
        )
        record.args = ()
        return True


class ShownBeforeRun(logging.Filter):
    """Drops a warning that `revwh run` already printed before the run (a raw entry landing does not
    read, which the landing step also logs for the UI), so the console shows it once, at the top."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__()
        self.notes = notes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not self.notes:
            return True
        message = record.getMessage()
        return not any(message.endswith(note) for note in self.notes)


@dg.logger(
    {
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "shown_before_run": dg.Field([str], is_required=False, default_value=[]),
    },
    description="Dagster's console format on stderr; self-explained step failures without their stack trace.",
)
def short_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("dagster", level=init_context.logger_config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S %z"))
    if os.environ.get(TRACEBACK_ENV, "") in ("", "0"):
        handler.addFilter(ShortFailures())
        handler.addFilter(OneLineForAbandonedSteps())
    handler.addFilter(ShownBeforeRun(list(init_context.logger_config["shown_before_run"])))
    logger.addHandler(handler)
    return logger
