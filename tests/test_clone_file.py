"""pipelines.lake.clone_file: the publish's copy of the warehouse (block-sharing where the file system can)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pipelines.lake import clone_file


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # not a multiple of any block size
    return path


def test_copy_is_identical_and_independent(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    clone_file(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    with dst.open("r+b") as f:  # writing the copy leaves the original alone (copy on write where shared)
        f.write(b"changed")
    assert src.read_bytes()[:7] != b"changed"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    clone_file(tmp_path / "empty", tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b""


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP])
def test_falls_back_to_a_byte_copy(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def unsupported(*_args: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    clone_file(src, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == src.read_bytes()


def test_a_partial_copy_is_finished_by_a_byte_copy(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = os.copy_file_range, []

    def short(fin: int, fout: int, count: int) -> int:
        calls.append(count)
        return real(fin, fout, min(count, 4096)) if len(calls) == 1 else 0  # then the source "ends"

    monkeypatch.setattr(os, "copy_file_range", short)
    clone_file(src, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == src.read_bytes()


def test_other_errors_are_raised(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", disk_full)
    with pytest.raises(OSError, match="No space left"):
        clone_file(src, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
