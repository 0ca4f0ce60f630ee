"""Write encoded lines into raw/<log>/dt=<arrival date>/part-NNNNN.jsonl[.gz] (SPEC §1).

Each producing day writes its own file into every arrival partition it reaches, like an
uploader that ships today's batch and, later, stragglers: a partition holds the on-time
file plus small late ones. Files get numbered in creation order, which is deterministic.
Compression happens in the producer threads (deflate()), the writer only stitches parts
into one gzip member with a fixed header, so .gz output is byte-stable too.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import zlib
from pathlib import Path

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


def deflate(text: memoryview, level: int = 1) -> bytes:
    """Raw deflate of one part, ending on a byte boundary (sync flush) with no history, so
    parts compressed in parallel threads concatenate into one valid gzip member (as pigz)."""
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH)


# gzip member header: deflate, no flags, mtime 0, no extra flags, OS unknown — byte-stable.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_EMPTY_BLOCK = b"\x03\x00"


class _File:
    """One output file; for gzip it keeps the CRC and size of the text for the trailer."""

    def __init__(self, path: Path, gz: bool) -> None:
        self.fh = path.open("wb")
        self.gz = gz
        self.crc = 0
        self.size = 0
        if gz:
            self.fh.write(_GZIP_HEADER)

    def write(self, text: memoryview, deflated: bytes | None) -> None:
        if self.gz:
            assert deflated is not None
            self.crc = zlib.crc32(text, self.crc)
            self.size += len(text)
            text = memoryview(deflated)
        for i in range(0, len(text), _SLICE):
            self.fh.write(text[i : i + _SLICE])

    def close(self) -> None:
        if self.gz:
            self.fh.write(_FINAL_EMPTY_BLOCK + struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        self.fh.close()


class RawWriter:
    """Open files keyed by (log, arrival day, producing day); append-only, ordered writes."""

    def __init__(self, data_dir: Path, compress: bool) -> None:
        self.root = data_dir / "raw"
        self.compress = compress
        self._open: dict[tuple[str, dt.date, int], _File] = {}
        self._parts: dict[tuple[str, dt.date], int] = {}
        self.files = 0
        self.bytes = 0

    def _handle(self, log: str, arrival: dt.date, producer: int) -> _File:
        key = (log, arrival, producer)
        if key not in self._open:
            part = self._parts.get((log, arrival), 0)
            self._parts[(log, arrival)] = part + 1
            folder = self.root / log / f"dt={arrival.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{part:05d}.jsonl" + (".gz" if self.compress else "")
            self._open[key] = _File(folder / name, self.compress)
            self.files += 1
        return self._open[key]

    def write(self, log: str, arrival: dt.date, producer: int, text: memoryview, deflated: bytes | None = None) -> None:
        """Append NDJSON text (and, when compressing, its deflate() made by the producer)."""
        self._handle(log, arrival, producer).write(text.cast("B"), deflated)
        self.bytes += len(text)

    def close_producer(self, producer: int) -> None:
        """Close the files of a finished producing day (keeps open handles bounded)."""
        for key in [k for k in self._open if k[2] == producer]:
            self._open.pop(key).close()

    def close(self) -> None:
        for key in list(self._open):
            self._open.pop(key).close()

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
