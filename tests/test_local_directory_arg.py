"""`--data-dir` of the commands that only work on a local folder (generate, publish): a path or file:// URL."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pipelines.cli import local_directory


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("data/demo", Path("data/demo")),
        ("/srv/revenue data", Path("/srv/revenue data")),
        ("file:///srv/revenue%20data", Path("/srv/revenue data")),
        ("file://localhost/srv/d", Path("/srv/d")),
    ],
)
def test_paths_and_file_urls_are_local_folders(text: str, path: Path) -> None:
    assert local_directory(text) == path


@pytest.mark.parametrize("text", ["s3://bucket/data", "memory://d", "file://otherhost/srv/d"])
def test_other_urls_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not local: this command needs a local data directory"):
        local_directory(text)


def test_revwh_generate_writes_into_the_folder_a_file_url_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "generated"
    args = ["generate", "--data-dir", target.as_uri(), "--start", "2025-03-01", "--days", "1", "--events-per-day", "50"]
    assert main(args) == 0
    assert (target / "reference" / "fx_rates.csv").is_file() and (target / "raw").is_dir()
    assert not (tmp_path / "file:").exists()
