"""The text of raw lines that are not UTF-8, as the quarantine keeps it.

DuckDB's reader sends such a line to its reject table with its bytes mangled: each invalid byte and
at times the valid byte after it read as ``?`` (``x\\xe9abc`` became ``x??bc``, losing the ``a``), and
a line after a CRLF began with a stray newline. The quarantine should show the producer what they
sent, as closely as text can: the line's own bytes, each invalid sequence replaced by U+FFFD (Python's
``errors="replace"``, the WHATWG rule), every valid character kept.

Only files DuckDB rejected lines of are read again, in blocks; a block that decodes whole is skipped at
C speed, and in a block holding a bad line only the lines around invalid bytes are cut out. A file with
many such lines (``duck.REJECTS_PER_FILE``: DuckDB keeps no more of them) is read in batches, never whole.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

BLOCK_BYTES = 16 << 20
BOM = b"\xef\xbb\xbf"
# The first stretch decoded after a bad line; it grows fourfold while the text decodes.
WINDOW_BYTES = 4096
# Bad lines in a row, each within about two lines of the one before, after which a block is split into lines.
CLOSE_BAD_LINES = 16


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


def _split_unfit(block: bytes, max_line_bytes: int | None) -> Iterator[bytes]:
    """The lines of ``block`` that are not UTF-8 (or longer than ``max_line_bytes``), line by line."""
    return (line for line in block.splitlines() if not _fits(line, max_line_bytes))


def _unfit_lines(block: bytes, max_line_bytes: int | None) -> Iterator[bytes]:
    """The lines of ``block`` that are not UTF-8 (or longer than ``max_line_bytes``), in order.

    The decoder stops at the first invalid byte, so the valid stretch before it is skipped at C speed
    and only the line around that byte is cut out; the next attempt starts after it. A block of many
    valid lines and a few bad ones costs about one decode, not a list of every line. The decoder's
    error holds a copy of its input, so the stretches decoded start small after a bad line. Where bad
    lines come one after the other (an error costs more than a line's split), the rest of the block
    is split into lines, as is a block longer than ``max_line_bytes`` (only such a block can hold a
    line longer than that: a block ends at a line end)."""
    if max_line_bytes is not None and len(block) > max_line_bytes:
        yield from _split_unfit(block, max_line_bytes)
        return
    view, size = memoryview(block), len(block)
    pos = floor = 0  # decoded up to pos; the lines from floor on were not cut out yet
    window, close_together = WINDOW_BYTES, 0
    next_lf = next_cr = -2  # the next LF / CR at or after the bad byte; -1: none left, -2: not looked for
    while pos < size:
        if close_together >= CLOSE_BAD_LINES:
            yield from _split_unfit(block[floor:], max_line_bytes)
            return
        try:
            _, used = codecs.utf_8_decode(view[pos : pos + window], None, pos + window >= size)
            pos, window = pos + used, min(window * 4, BLOCK_BYTES)
            continue
        except UnicodeDecodeError as exc:
            bad = pos + exc.start
        window = WINDOW_BYTES  # the error copies its window: keep it small near bad lines
        start = max(floor - 1, block.rfind(b"\n", floor, bad), block.rfind(b"\r", floor, bad)) + 1
        # each search starts past the last one, so a block of many bad lines is scanned once
        if next_lf == -2 or 0 <= next_lf < bad:
            next_lf = block.find(b"\n", bad)
        if next_cr == -2 or 0 <= next_cr < bad:
            next_cr = block.find(b"\r", bad)
        end = min([i for i in (next_lf, next_cr) if i >= 0], default=size)
        close_together = close_together + 1 if start - floor <= 2 * (end - start) else 0
        yield block[start:end]
        pos = floor = end + 1


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
            for line in _unfit_lines(block, max_line_bytes):
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
