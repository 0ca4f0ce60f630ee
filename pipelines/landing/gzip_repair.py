"""Valid gzip files that DuckDB's reader refuses, rewritten so that it reads them.

DuckDB's gzip reader (2.0) refuses some headers RFC 1952 allows: the FTEXT, FHCRC and FCOMMENT flags
("Unsupported GZIP archive"; Go's ``gzip.Writer`` sets FCOMMENT whenever a comment is given), and the
zero padding after the last member that GNU gzip and Python skip ("Input is not a GZIP stream").
SPEC §1 admits any ``.jsonl.gz``, so such a file must land like any other. Only when DuckDB refuses a
file is it read again by Python's ``gzip`` module, streamed into a plain gzip member of the same name
in a scratch folder (so every line keeps its file name), and the read is done again with that copy.
A file Python cannot read either (not gzip, a truncated stream) keeps DuckDB's error.
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

from pipelines.duck import connect, read_lines_sql, sql_path

T = TypeVar("T")
_CHUNK = 1 << 20


def rewrite_gzip(source: Path, target: Path) -> str | None:
    """Stream ``source``'s text into ``target`` as one gzip member with a bare header: None when done,
    else why Python's gzip module cannot read ``source`` to its end either (and no ``target``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            gzip.open(source, "rb") as text,
            target.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as out,
        ):
            shutil.copyfileobj(text, out, _CHUNK)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        target.unlink(missing_ok=True)
        return str(exc) or type(exc).__name__
    return None


def file_named_in(message: str, files: list[Path]) -> Path | None:
    """The file an error message names: the longest path it holds (``x.jsonl`` is part of ``x.jsonl.gz``)."""
    return max((p for p in files if p.as_posix() in message), key=lambda p: len(p.as_posix()), default=None)


def reason_for(message: str, path: Path) -> str:
    """What DuckDB says is wrong with ``path``: the first line of its error, without the ``IO Error:``
    prefix and without the file name it ends with."""
    return message.splitlines()[0].removeprefix("IO Error: ").split(f": {path.as_posix()}")[0]


# Header flags DuckDB's reader refuses (RFC 1952 §2.3.1): FTEXT, FHCRC, FCOMMENT.
_REFUSED_FLAGS = 0x01 | 0x02 | 0x10


def header_refused(path: Path) -> bool:
    """The file's first gzip header carries a flag DuckDB's reader refuses (read from its first 4 bytes)."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and head[:2] == b"\x1f\x8b" and bool(head[3] & _REFUSED_FLAGS)


def refused_files(files: list[Path]) -> dict[Path, str]:
    """Every one of ``files`` DuckDB's line reader refuses, with its reason, each read alone once: DuckDB's
    error for zero padding after a gzip stream does not name its file."""
    refused: dict[Path, str] = {}
    with connect() as con:
        for path in files:
            try:
                # one reject kept a file: the table lasts as long as the connection, and only refusals count here
                con.execute(f"SELECT count(*) FROM ({read_lines_sql(sql_path(path), rejects_limit=1)})").fetchall()
            except duckdb.IOException as exc:
                refused[path] = reason_for(str(exc), path)
    return refused


def read_with_gzip_repair(files: list[Path], scratch: Path, read: Callable[[list[Path]], T]) -> T:
    """``read(files)``; when DuckDB refuses ``.gz`` files, ``read`` again with them rewritten under
    ``scratch`` (see the module docstring). ``read`` must start afresh on each call.

    Every refused file of a kind is found at its first refusal, not one per read: the one DuckDB names
    and those whose header it would refuse, or, for a refusal of the stream itself (zero padding, whose
    error may name no file), every ``.gz`` it cannot read alone. So a day of many such files is read two
    or three times, not once per file. DuckDB's error stands when the file is not a ``.gz``; when Python
    cannot read it either, the error gives both readers' reasons and names the file (DuckDB's own
    message may not)."""
    current = list(files)
    repaired: set[Path] = set()
    while True:
        try:
            return read(current)
        except duckdb.IOException as exc:
            pending = [p for p in current if p.name.endswith(".gz") and p not in repaired]
            named = file_named_in(str(exc), current)
            if named is not None:
                if named in repaired or not named.name.endswith(".gz"):
                    raise
                refused = {named: reason_for(str(exc), named)}
                others = [p for p in pending if p != named]
                if "Unsupported GZIP archive" in refused[named]:  # a header flag: the others' headers tell
                    refused |= {p: refused[named] for p in others if header_refused(p)}
                else:  # zero padding or garbage after the stream: only reading tells
                    refused |= refused_files(others)
            else:
                refused = refused_files(pending)
                if not refused:
                    raise
            for bad, reason in refused.items():
                copy = scratch / f"gzip-{len(repaired)}" / bad.name
                python_refuses = rewrite_gzip(bad, copy)
                if python_refuses is not None:
                    raise duckdb.IOException(f"{reason}; Python's gzip: {python_refuses}: {bad.as_posix()}") from exc
                current[current.index(bad)] = copy
                repaired.add(copy)
