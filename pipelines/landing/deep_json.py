"""Python's json module on lines nested deeper than the interpreter's recursion limit.

``json.loads`` and ``json.dumps`` recurse once per level of nesting and raise RecursionError near
1,000 levels, which is valid JSON all the same. Inside a DuckDB UDF that error would fail the whole
landing query, so such a line is parsed again on a thread of its own, with a large stack and a
recursion limit to match. RFC 8259 §9 lets a reader limit the depth: beyond MAX_NESTING levels a line
is not read (its caller calls it malformed).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

MAX_NESTING = 1_000_000
# Address space, not memory: only the pages a parse touches are used (1M levels parse in 0.45 s).
_STACK_BYTES = 1 << 30
_LOCK = threading.Lock()  # one deep parse at a time: the stack size and recursion limit are process-wide


class TooDeep(Exception):
    """The text opens more than MAX_NESTING arrays and objects."""


def nesting_bound(text: str) -> int:
    """An upper bound of the text's depth: every '[' and '{' it holds, in strings or not."""
    return text.count("[") + text.count("{")


def call_deep(fn: Callable[[], T], text: str) -> T:
    """``fn()`` (a json call on ``text``) on a thread whose stack and recursion limit fit ``text``'s
    nesting; its exception is raised here. TooDeep beyond MAX_NESTING levels."""
    bound = nesting_bound(text)
    if bound > MAX_NESTING:
        raise TooDeep(bound)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    with _LOCK:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 2 * bound + 1_000))
        previous = threading.stack_size(_STACK_BYTES)
        try:
            worker = threading.Thread(target=run, name="revwh-deep-json")
            worker.start()
            worker.join()
        finally:
            threading.stack_size(previous)
            sys.setrecursionlimit(limit)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
