"""`revwh generate` arguments: validated up front so mistakes cost one line, not a traceback."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pipelines.cli import CliError, local_directory, non_negative_int, parse_date, positive_int
from pipelines.generate.options import DEFAULT_CHUNK_SIZE, DEFAULT_DIRT_RATE, DEFAULT_LATE_RATE, DIRT_KINDS


def rate(text: str) -> float:
    """argparse type for a share between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def dirt_override(text: str) -> tuple[str, float]:
    """argparse type for KIND=RATE."""
    kind, sep, value = text.partition("=")
    if not sep or kind not in DIRT_KINDS:
        raise argparse.ArgumentTypeError(f"expected KIND=RATE with KIND one of {', '.join(DIRT_KINDS)}: {text!r}")
    return kind, rate(value)


def add_generate_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write reference tables and raw event logs with realistic dirt",
        description="Write <data-dir>/reference/*.csv and <data-dir>/raw/<log>/dt=<arrival>/part-*.jsonl.",
    )
    p.add_argument("--data-dir", type=local_directory, required=True, help="a local path or file:// URL")
    p.add_argument("--start", type=parse_date, required=True, help="first event date, YYYY-MM-DD")
    p.add_argument("--days", type=positive_int, required=True, help="number of event dates")
    p.add_argument("--events-per-day", type=positive_int, required=True, help="weekly mean of events per day")
    p.add_argument("--seed", type=non_negative_int, default=0, help="same seed, same bytes (default 0)")
    p.add_argument("--compress", action="store_true", help="write .jsonl.gz")
    p.add_argument(
        "--dirt-rate",
        type=rate,
        default=DEFAULT_DIRT_RATE,
        help=f"share of events spoiled by each dirt kind, 0 for clean data (default {DEFAULT_DIRT_RATE})",
    )
    p.add_argument(
        "--dirt",
        type=dirt_override,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"override the rate of one dirt kind, repeatable; kinds: {', '.join(DIRT_KINDS)}",
    )
    p.add_argument(
        "--late-rate",
        type=rate,
        default=DEFAULT_LATE_RATE,
        help=f"share of events arriving 1-3 days after their event date (default {DEFAULT_LATE_RATE})",
    )
    p.add_argument("--chunk-size", type=positive_int, default=DEFAULT_CHUNK_SIZE, help="rows built at a time")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(handler=_cmd_generate)


# Arrival days run past the last event date (late data, late_arrival dirt) and the FX table beside them.
LAST_GENERATED_DAY = dt.date.max - dt.timedelta(days=366)


def _cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.generate.dataset import generate_dataset  # numpy/polars only when generating

    if args.days > (LAST_GENERATED_DAY - args.start).days:
        raise CliError(
            f"--start {args.start} with --days {args.days} runs past {LAST_GENERATED_DAY}, the last day generated"
        )

    try:
        stats = generate_dataset(
            args.data_dir,
            args.start,
            args.days,
            args.events_per_day,
            args.seed,
            compress=args.compress,
            dirt_rate=args.dirt_rate,
            dirt_rates=dict(args.dirt),
            late_rate=args.late_rate,
            chunk_size=args.chunk_size,
        )
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if not args.quiet:
        print(stats.summary(args.data_dir), file=sys.stdout)
    built = [name for name in ("lake", "warehouse.duckdb") if (args.data_dir / name).exists()]
    if built:  # its own earlier raw files were replaced; what was built from them stays until a run
        print(
            f"revwh generate: warning: {args.data_dir} already holds {' and '.join(built)} built from the raw files "
            "this replaced; `revwh run` over the dates lands the new ones (or generate into an empty directory)",
            file=sys.stderr,
        )
    return 0
