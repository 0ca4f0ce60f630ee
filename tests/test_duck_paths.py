"""File names reach DuckDB as literals that name exactly the file: quotes, blanks and the glob
characters ``*?[]`` in a folder or file name (SPEC §1: a raw file may have any name)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.duck import sql_glob, sql_list, sql_path, sql_str


def _write(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"v": [value]}).write_parquet(path)
    return path


def _values(sql: str) -> list[int]:
    return sorted(r[0] for r in duckdb.sql(sql).fetchall())


@pytest.mark.parametrize(
    ("name", "lookalike"),
    [("a*b.parquet", "acb.parquet"), ("q[1].parquet", "q1.parquet"), ("what?.parquet", "whatx.parquet")],
)
def test_a_file_path_names_that_file_only(tmp_path: Path, name: str, lookalike: str) -> None:
    target, other = _write(tmp_path / name, 1), _write(tmp_path / lookalike, 2)
    assert _values(f"SELECT v FROM read_parquet({sql_path(target)})") == [1]
    assert _values(f"SELECT v FROM read_parquet({sql_list([target, other])})") == [1, 2]
    # unescaped, DuckDB globs: the lookalike is read instead of, or beside, the file
    assert _values(f"SELECT v FROM read_parquet({sql_str(target)})") != [1]


def test_filename_gives_the_real_name_back(tmp_path: Path) -> None:
    target = _write(tmp_path / "it's [a] file*.parquet", 7)
    rows = duckdb.sql(f"SELECT filename, v FROM read_parquet({sql_list([target])}, filename = true)").fetchall()
    assert rows == [(target.as_posix(), 7)]


def test_a_glob_matches_inside_its_folder_only(tmp_path: Path) -> None:
    folder = tmp_path / "o'brien [x] data"
    _write(folder / "one.parquet", 1)
    _write(folder / "two.parquet", 2)
    _write(tmp_path / "o'brien x data" / "three.parquet", 3)  # what the unescaped folder pattern would match
    assert _values(f"SELECT v FROM read_parquet({sql_glob(folder, '*.parquet')})") == [1, 2]


def test_a_write_target_keeps_its_characters(tmp_path: Path) -> None:
    target = tmp_path / "o'brien [x]" / "out*.parquet"
    target.parent.mkdir()
    duckdb.sql(f"COPY (SELECT 5 AS v) TO {sql_str(target)} (FORMAT parquet)")
    assert target.exists()
    assert _values(f"SELECT v FROM read_parquet({sql_path(target)})") == [5]
