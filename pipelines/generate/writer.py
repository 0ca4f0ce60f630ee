"""Write encoded lines into raw/<log>/dt=<arrival date>/part-NNNNN.jsonl[.gz] (SPEC §1).

Each producing day writes its own file into every arrival partition it reaches, like an
uploader that ships today's batch and, later, stragglers: a partition holds the on-time
file plus small late ones. Files get numbered in creation order, which is deterministic;
gzip headers carry no name and mtime 0, so compressed output is byte-stable too.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.contract import LOGS

_SLICE = 1 << 16  # big single writes are slow on this VM; 64 KiB slices are not
_PART = re.compile(r"part-\d+\.jsonl(\.gz)?")


def text_of(lines: pl.Series) -> memoryview:
    """The bytes of newline-terminated lines, straight from the Arrow string buffer (no join)."""
    array = lines.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string: one data buffer
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    _, offsets, data = array.buffers()[:3]
    bounds = np.frombuffer(offsets, dtype=np.int64 if pa.types.is_large_string(array.type) else np.int32)
    first, last = int(bounds[array.offset]), int(bounds[array.offset + len(array)])
    return memoryview(data)[first:last] if data is not None else memoryview(b"")


def clear_raw(data_dir: Path) -> None:
    """Remove files an earlier generation wrote, so the directory holds one dataset only."""
    for log in LOGS:
        log_dir = data_dir / "raw" / log
        if not log_dir.is_dir():
            continue
        for part_dir in log_dir.glob("dt=*"):
            for f in part_dir.iterdir():
                if f.is_file() and _PART.fullmatch(f.name):
                    f.unlink()
            if part_dir.is_dir() and not any(part_dir.iterdir()):
                part_dir.rmdir()


class RawWriter:
    """Open files keyed by (log, arrival day, producing day); append-only, ordered writes."""

    def __init__(self, data_dir: Path, compress: bool, compresslevel: int = 1) -> None:
        self.root = data_dir / "raw"
        self.compress = compress
        self.compresslevel = compresslevel
        self._open: dict[tuple[str, dt.date, int], tuple[BinaryIO, BinaryIO | None]] = {}
        self._parts: dict[tuple[str, dt.date], int] = {}
        self.files = 0
        self.bytes = 0

    def _handle(self, log: str, arrival: dt.date, producer: int) -> BinaryIO:
        key = (log, arrival, producer)
        if key not in self._open:
            part = self._parts.get((log, arrival), 0)
            self._parts[(log, arrival)] = part + 1
            folder = self.root / log / f"dt={arrival.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{part:05d}.jsonl" + (".gz" if self.compress else "")
            raw = (folder / name).open("wb")
            if self.compress:
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=self.compresslevel, mtime=0)
                self._open[key] = (gz, raw)  # type: ignore[assignment]
            else:
                self._open[key] = (raw, None)
            self.files += 1
        return self._open[key][0]

    def write(self, log: str, arrival: dt.date, producer: int, data: memoryview) -> None:
        fh = self._handle(log, arrival, producer)
        view = data.cast("B")
        for i in range(0, len(view), _SLICE):
            fh.write(view[i : i + _SLICE])
        self.bytes += len(data)

    def close_producer(self, producer: int) -> None:
        """Close the files of a finished producing day (keeps open handles bounded)."""
        for key in [k for k in self._open if k[2] == producer]:
            outer, inner = self._open.pop(key)
            outer.close()
            if inner is not None:
                inner.close()

    def close(self) -> None:
        for producer in sorted({k[2] for k in self._open}):
            self.close_producer(producer)

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
