"""Running `revwh` in-process from tests."""

from __future__ import annotations

from pipelines.cli import main


def run_cli(argv: list[str]) -> int:
    """main()'s return code, or the code argparse exits with."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
