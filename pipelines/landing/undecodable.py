"""The text of raw lines that are not UTF-8, as the quarantine keeps it.

DuckDB's reader sends such a line to its reject table with its bytes mangled: each invalid byte and
at times the valid byte after it read as ``?`` (``x\\xe9abc`` became ``x??bc``, losing the ``a``), and
a line after a CRLF began with a stray newline. The quarantine should show the producer what they
sent, as closely as text can: the line's own bytes, each invalid sequence replaced by U+FFFD (Python's
``errors="replace"``, the WHATWG rule), every valid character kept.

Only files DuckDB rejected lines of are read again, in blocks; a block that decodes whole is skipped at
C speed, so only blocks holding a bad line are looked at line by line. A file with many such lines
(``duck.REJECTS_PER_FILE``: DuckDB keeps no more of them) is read in batches, never whole.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

BLOCK_BYTES = 16 << 20
BOM = b"\xef\xbb\xbf"


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def _create(path: Path) -> BinaryIO:
    return gzip.open(path, "wb", compresslevel=1) if path.name.endswith(".gz") else path.open("wb")


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream in blocks that end at a line end (LF or CR), the last one with whatever is left.

    A CRLF cut between two blocks leaves an empty line, which holds no invalid byte: harmless here."""
    carry = b""
    while chunk := stream.read(BLOCK_BYTES):
        data = carry + chunk
        cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield data[: cut + 1]
    if carry:
        yield carry


def _fits(data: bytes, max_line_bytes: int | None) -> bool:
    """``data`` is UTF-8 and, when ``max_line_bytes`` is given, no longer than that."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return max_line_bytes is None or len(data) <= max_line_bytes


def undecodable_batches(
    path: Path, batch_lines: int = 100_000, max_line_bytes: int | None = None
) -> Iterator[list[str]]:
    """Every line of the file (ended by LF, CRLF or a lone CR, as landing reads them) that is not
    valid UTF-8, in file order, decoded with U+FFFD for each invalid sequence, ``batch_lines`` at a time
    (a file in another encoding has one on every line). With ``max_line_bytes``, also every line longer
    than that (which DuckDB's reader rejects too): for a file whose rejects DuckDB did not all keep."""
    out: list[str] = []
    with _open(path) as stream:
        for index, block in enumerate(_blocks(stream)):
            if index == 0 and block.startswith(BOM):
                block = block[len(BOM) :]
            if _fits(block, max_line_bytes):  # a whole block at C speed
                continue
            for line in block.splitlines():
                if _fits(line, max_line_bytes):
                    continue
                out.append(line.decode("utf-8", errors="replace"))
                if len(out) >= batch_lines:
                    yield out
                    out = []
    if out:
        yield out


def undecodable_lines(path: Path) -> list[str]:
    """All of :func:`undecodable_batches` at once, for a file with few of them."""
    return [line for batch in undecodable_batches(path) for line in batch]


def count_undecodable_lines(path: Path, max_line_bytes: int | None = None) -> int:
    return sum(len(batch) for batch in undecodable_batches(path, max_line_bytes=max_line_bytes))


PROBE_BYTES = 1 << 20


def _undecodable(sample: bytes, cut_start: bool, cut_end: bool) -> bool:
    """``sample`` holds bytes that are not UTF-8, beyond a character cut at an end it was cut at."""
    if cut_start:  # skip continuation bytes of a character begun before the sample
        sample = sample.lstrip(bytes(range(0x80, 0xC0)))
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not (cut_end and exc.reason == "unexpected end of data" and exc.end == len(sample))
    return False


def probes_undecodable(path: Path) -> bool:
    """A megabyte of the file is not UTF-8: a file in another encoding, whose every line DuckDB's reader
    would send to its reject table (1.2 GiB of memory and 4 s a million lines, whatever ``rejects_limit``
    says). The first megabyte is probed, and for a plain file also one in the middle and the last (a
    producer that switches encoding during the day). A character cut at a probe's end does not count."""
    try:
        if path.name.endswith(".gz"):
            with _open(path) as stream:
                head = stream.read(PROBE_BYTES + 1)
            return _undecodable(head[:PROBE_BYTES], False, len(head) > PROBE_BYTES)
        size = path.stat().st_size
        with path.open("rb") as stream:
            for start in sorted({0, max(size // 2 - PROBE_BYTES // 2, 0), max(size - PROBE_BYTES, 0)}):
                stream.seek(start)
                if _undecodable(stream.read(PROBE_BYTES), start > 0, start + PROBE_BYTES < size):
                    return True
    except (OSError, EOFError, zlib.error):  # not gzip, cut short: DuckDB's reader reports it
        return False
    return False


def set_aside_undecodable(path: Path, clean: Path, batch_lines: int = 100_000) -> Iterator[list[str]]:
    """Copy the file's UTF-8 lines to ``clean`` (gzip-compressed when its name ends in ``.gz``) and
    yield its other lines, as :func:`undecodable_batches` does: DuckDB then reads the copy without a
    reject, and the lines set aside are quarantined as malformed."""
    clean.parent.mkdir(parents=True, exist_ok=True)
    out: list[str] = []
    with _open(path) as stream, _create(clean) as sink:
        for index, block in enumerate(_blocks(stream)):
            if index == 0 and block.startswith(BOM):
                block = block[len(BOM) :]
            try:
                block.decode("utf-8")
                sink.write(block)
                continue
            except UnicodeDecodeError:
                pass
            kept = []
            for line in block.splitlines():
                try:
                    line.decode("utf-8")
                    kept.append(line)
                except UnicodeDecodeError:
                    out.append(line.decode("utf-8", errors="replace"))
            sink.write(b"\n".join(kept) + b"\n" if kept else b"")
            if len(out) >= batch_lines:
                yield out
                out = []
    if out:
        yield out
