"""`revwh report`: write the static HTML revenue report of a data directory's warehouse."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.cli import CliError, non_negative_int


def add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `revwh report --data-dir DIR [--out PATH]` (imported by pipelines.cli when present)."""
    p = subparsers.add_parser(
        "report",
        help="write an HTML revenue report (charts + KPI tables) from the published warehouse",
        description=(
            "Read <data-dir>/warehouse.duckdb and write a self-contained HTML page (charts embedded) to "
            "<data-dir>/reports/revenue_report.html, or to --out, with the chart PNGs beside it."
        ),
    )
    # text, not Path: a URL data directory (s3://…) must keep its double slash
    p.add_argument("--data-dir", required=True, help="a path, or a URL data directory as for `revwh sql`")
    p.add_argument("--out", type=Path, default=None, help="HTML file to write (its folder is created)")
    p.add_argument(
        "--days",
        type=non_negative_int,
        default=None,
        help="event dates covered, ending at the latest one (0 = all history; default $REVWH_REPORT_DAYS or 7)",
    )
    p.set_defaults(handler=_cmd_report)


def _local_data_dir(location: str) -> Path:
    """A URL data directory is mirrored locally first, as `revwh sql` does; a path is used as it is."""
    if "://" not in location:
        return Path(location)
    try:
        from pipelines.storage import StorageError, local_for_reading
    except ImportError as exc:  # storage support is optional
        raise CliError(f"URL data directories are not supported here: {exc}") from exc
    try:
        return local_for_reading(location)
    except StorageError as exc:
        raise CliError(str(exc)) from exc


def _cmd_report(args: argparse.Namespace) -> int:
    from pipelines.reports.build import ReportError, build_report

    if args.out is not None and args.out.suffix.lower() not in (".html", ".htm"):
        raise CliError(f"--out must name an .html file: {args.out}")
    from pipelines.reports.data import report_days

    try:
        days = report_days() if args.days is None else args.days
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        report = build_report(_local_data_dir(args.data_dir), args.out, days)
    except ReportError as exc:
        raise CliError(str(exc)) from exc
    print(f"revwh report: wrote {report.html_path} ({len(report.charts)} charts)")
    return 0
