"""The revwh command line (SPEC §6): generate data, run the pipeline, query, report, publish.

Every subcommand validates its arguments up front and fails with one readable
line instead of a traceback. Exit codes: 0 done; 1 the work failed (a step of
`revwh run`, the query of `revwh sql`); 2 unusable input (arguments, data
directory, reference tables); 141 the reader of stdout went away (`| head`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import sys
import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from pipelines.errors import CliError

__all__ = ["CliError", "build_parser", "main"]

DESCRIPTION = "Revenue warehouse of a short-video platform: generate data, run the pipeline, query, report, publish."


def parse_date(text: str) -> dt.date:
    """argparse type for YYYY-MM-DD dates (only that form: fromisoformat alone also takes 20250301 and 2025-W10-1)."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value


def data_location(text: str) -> Path | str:
    """argparse type for --data-dir: a path, or a URL kept as text (Path would fold "s3://b" into "s3:/b")."""
    return text if "://" in text else Path(text)


def local_directory(text: str) -> Path:
    """argparse type for a --data-dir that must be local: a path or a file:// URL. Another URL is refused
    in one line (Path would turn "file:///srv/d" into the relative folder "file:/srv/d")."""
    if "://" not in text:
        return Path(text)
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(urllib.parse.unquote(parsed.path))
    raise argparse.ArgumentTypeError(
        f"{text!r} is not local: this command needs a local data directory (a path or a file:// URL)"
    )


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="materialise every asset for event dates START..END through Dagster")
    p.add_argument(
        "--data-dir", type=data_location, required=True, help="a path, file:// or fsspec URL (e.g. s3://bucket/p)"
    )
    p.add_argument("--start", type=parse_date, required=True, help="first event date, YYYY-MM-DD")
    p.add_argument("--end", type=parse_date, required=True, help="last event date, YYYY-MM-DD (inclusive)")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument(
        "--executor",
        choices=("in_process", "celery"),
        default="in_process",
        help="celery: run each step on Celery workers (REVWH_CELERY_BROKER, needs DAGSTER_HOME)",
    )
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.runner import run_range

    return run_range(args.data_dir, args.start, args.end, quiet=args.quiet, executor=args.executor)


def _add_sql(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sql", help="run read-only SQL on the warehouse")
    p.add_argument("query", help='one SQL statement, e.g. "SELECT * FROM marts.revenue_by_stream"')
    p.add_argument("--data-dir", type=data_location, required=True, help="a path, file:// or fsspec URL")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(handler=_cmd_sql)


def _cmd_sql(args: argparse.Namespace) -> int:
    from pipelines.storage import local_for_reading
    from pipelines.warehouse.query import run_query

    return run_query(local_for_reading(args.data_dir), args.query, args.format)


def _add_publish(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish",
        help="rebuild warehouse.duckdb from the lake without re-running (e.g. after moving the data directory)",
    )
    p.add_argument(
        "--data-dir", type=local_directory, required=True, help="a local data directory (a path or file:// URL)"
    )
    p.add_argument("--full", action="store_true", help="rebuild every table instead of only the changed partitions")
    p.set_defaults(handler=_cmd_publish)


def _cmd_publish(args: argparse.Namespace) -> int:
    from pipelines.lake import DataDir
    from pipelines.warehouse.publish import publish_warehouse
    from pipelines.writer_lock import writer_lock

    data = DataDir.at(args.data_dir)
    if not (data.lake / "marts").is_dir():
        raise CliError(f"no lake with marts in {data.root}: run `revwh run --data-dir {args.data_dir} ...` first")
    with writer_lock(data, "revwh publish", on_wait=lambda text: print(f"revwh publish: {text}", file=sys.stderr)):
        path = publish_warehouse(
            data, full=args.full, on_note=lambda note: print(f"revwh publish: warning: {note}", file=sys.stderr)
        )
    print(f"revwh publish: {path} ({'rebuilt' if args.full else 'updated'} from {data.lake})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="revwh", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    from pipelines.generate.cli import add_generate_parser

    add_generate_parser(sub)
    _add_run(sub)
    _add_sql(sub)
    _add_publish(sub)
    try:
        from pipelines.reports.cli import add_report_parser
    except ImportError:  # the report is optional until it exists
        pass
    else:
        add_report_parser(sub)
    return parser


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a supervisor, `kill`) ends a command as Ctrl-C does: 130, one line


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set a handler
        return _main(argv)
    before = signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # Dagster maps SIGTERM to SIGINT in a run too
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, before)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"revwh {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:  # a data directory or file this user may not read or write
        where = f": {exc.filename}" if exc.filename else ""
        print(f"revwh {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"revwh {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `revwh sql … | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141


if __name__ == "__main__":
    sys.exit(main())
