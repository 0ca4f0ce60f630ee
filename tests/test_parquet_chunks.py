"""``parquet_chunks`` reads a file in frames of whole consecutive row groups, up to a row limit."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from pipelines.lake import parquet_chunks


def _file(tmp_path: Path, groups: list[int]) -> Path:
    path = tmp_path / "f.parquet"
    frame = pl.DataFrame({"n": range(sum(groups))})
    with pq.ParquetWriter(path, frame.to_arrow().schema) as writer:
        offset = 0
        for size in groups:
            writer.write_table(frame.slice(offset, size).to_arrow())
            offset += size
    assert [pq.ParquetFile(path).metadata.row_group(i).num_rows for i in range(len(groups))] == groups
    return path


def test_row_groups_are_joined_up_to_the_limit(tmp_path: Path) -> None:
    path = _file(tmp_path, [3, 3, 3, 3, 2])
    chunks = list(parquet_chunks(path, rows=7))
    assert [c.height for c in chunks] == [6, 6, 2]
    assert pl.concat(chunks).get_column("n").to_list() == list(range(14))


def test_a_row_group_larger_than_the_limit_comes_alone(tmp_path: Path) -> None:
    path = _file(tmp_path, [2, 9, 2, 2])
    chunks = list(parquet_chunks(path, rows=5))
    assert [c.height for c in chunks] == [2, 9, 4]
    assert pl.concat(chunks).get_column("n").to_list() == list(range(15))


def test_a_small_file_is_one_frame(tmp_path: Path) -> None:
    path = _file(tmp_path, [3, 3])
    assert [c.height for c in parquet_chunks(path, rows=6)] == [6]
    assert [c.height for c in parquet_chunks(path)] == [6]
