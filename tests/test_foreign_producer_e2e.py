"""End to end on data written the way *another* producer would write it.

The external check runs the pipeline on data it has never seen, from a generator that is not
ours. Our generator writes compact JSON with a fixed key order; this test re-encodes every
well-formed line of a generated data directory into an equivalent spelling (shuffled keys,
blanks and tabs between tokens, ``\\u`` escapes in keys and values, ``+00:00`` instead of ``Z``,
numbers in exponent form, extra nested fields, a name given twice with the real value last, CRLF
files, gzip files), leaves every other line
byte for byte, and checks that nothing a reader of the SPEC would call the same data changes:

- the marts equal the independent implementation on the re-encoded data, to the cent;
- they also equal the independent implementation on the *original* data, and so do the
  quarantine counts per (log, reason): spelling never changes a number.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from pipelines.generate import generate_dataset
from pipelines.runner import execute_range
from tests.reference_impl import FIELDS, NUM, TIME_RE, assert_same_results, published_marts, reference_run

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 3)
BLANKS = ("", "", "", " ", "  ", "\t", " \t ")


def _reject_constant(_: str) -> None:
    raise ValueError("NaN/Infinity are not JSON")


def _strict_object(raw: bytes) -> dict | None:
    """The line as a dict when it is strict JSON and an object, else None (left as it is)."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _repeats_a_name(pairs: list[tuple[str, object]]) -> bool:
    return len(pairs) != len({name for name, _ in pairs})


def _string(text: str, rng: random.Random) -> str:
    """A JSON string literal for ``text``: plain, ASCII-escaped, or with one character as \\uXXXX."""
    choice = rng.random()
    if choice < 0.2 and text:
        i = rng.randrange(len(text))
        if ord(text[i]) < 0x10000:
            head, tail = json.dumps(text[:i])[:-1], json.dumps(text[i + 1 :])[1:]
            return f"{head}\\u{ord(text[i]):04X}{tail}" if choice < 0.1 else f"{head}\\u{ord(text[i]):04x}{tail}"
    if choice < 0.3:
        return json.dumps(text, ensure_ascii=True).replace("/", "\\/")
    return json.dumps(text, ensure_ascii=False)


def _number(value: float, rng: random.Random) -> str:
    """The same double in another spelling: 9.43 → 943e-2, 5.0 → 5, or as Python writes it."""
    text = repr(value)
    if rng.random() < 0.5 or "e" in text or "." not in text:
        return text
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, fraction = digits.split(".")
    if fraction == "0":
        return f"{sign}{whole}"
    return f"{sign}{int(whole + fraction)}{rng.choice('eE')}-{len(fraction)}"


def _value(log: str, name: str, value: object, rng: random.Random) -> str:
    if isinstance(value, str):
        if name == "event_time" and TIME_RE.match(value) and value.endswith("Z") and rng.random() < 0.5:
            value = value[:-1] + "+00:00"
        return _string(value, rng)
    if FIELDS[log].get(name) == NUM and isinstance(value, float):
        return _number(value, rng)
    return json.dumps(value)


EXTRAS = (
    {"_trace": {"id": "a:b", "tags": ["x", 1, None, True, 2.5e-3], "empty": {}}},
    {"_schema_version": 3},
    {"_note": "colons: here, and commas, ] } too"},
    {"_list": []},
)


def reencode(log: str, obj: dict, rng: random.Random) -> str:
    """One equivalent spelling of ``obj``: keys shuffled (extra fields sometimes added),
    blanks around every token, escapes and number forms chosen at random."""
    items = list(obj.items())
    if rng.random() < 0.25:
        items += list(rng.choice(EXTRAS).items())
    rng.shuffle(items)
    if rng.random() < 0.05:  # a name given twice: the last value counts, so a decoy before it changes nothing
        at = rng.randrange(len(items))
        items.insert(rng.randrange(at + 1), (items[at][0], ["decoy", None]))
    members = []
    for name, value in items:
        key = _string(name, rng)
        text = _value(log, name, value, rng) if name in obj and value is obj[name] else json.dumps(value)
        members.append(f"{rng.choice(BLANKS)}{key}{rng.choice(BLANKS)}:{rng.choice(BLANKS)}{text}{rng.choice(BLANKS)}")
    return "{" + ",".join(members) + rng.choice(BLANKS) + "}"


def rewrite(src: Path, dst: Path, seed: int) -> Counter:
    """Copy data directory ``src`` to ``dst`` with every well-formed line re-encoded."""
    rng = random.Random(seed)
    shutil.copytree(src / "reference", dst / "reference")
    seen: Counter = Counter()
    for path in sorted((src / "raw").rglob("*.jsonl")):
        lines = path.read_bytes().split(b"\n")
        out = []
        for raw in lines:
            obj = _strict_object(raw) if raw.strip() else None
            if obj is None:
                out.append(raw)
                seen["kept"] += 1
            else:
                text = reencode(path.parent.parent.name, obj, rng)
                out.append(text.encode())
                seen["re-encoded"] += 1
                seen["names given twice"] += json.loads(text, object_pairs_hook=_repeats_a_name)
        eol = b"\r\n" if rng.random() < 0.3 else b"\n"
        body = eol.join(line.rstrip(b"\r") for line in out)
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.3:
            target.with_name(target.name + ".gz").write_bytes(gzip.compress(body))
            seen["gzip files"] += 1
        else:
            target.write_bytes(body)
        seen["crlf files"] += eol == b"\r\n"
    return seen


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory):
    original = tmp_path_factory.mktemp("original")
    generate_dataset(original, START, 5, 4000, seed=23, dirt_rate=0.01)
    root = tmp_path_factory.mktemp("foreign")
    seen = rewrite(original, root, seed=5)
    result = execute_range(root, START, END, log_level="ERROR", instance=dg.DagsterInstance.ephemeral())
    return original, root, result, seen


def test_rewrite_changed_the_spelling(foreign) -> None:
    _, root, _, seen = foreign
    assert seen["re-encoded"] > 15_000 and seen["kept"] > 200  # malformed lines and blanks stay as they are
    assert seen["gzip files"] and seen["crlf files"] and seen["names given twice"] > 500
    sample = next((root / "raw" / "impressions").rglob("*.jsonl")).read_text().splitlines()[:200]
    assert any("\\u" in line for line in sample) and any("+00:00" in line for line in sample)
    assert any("_trace" in line for line in sample) and any(": " in line or "\t" in line for line in sample)


def test_run_passes_every_blocking_check(foreign) -> None:
    _, _, result, _ = foreign
    assert result.success
    failed = [e.asset_check_key for e in result.get_asset_check_evaluations() if not e.passed]
    assert all(k.name == "quarantine_rate_below_threshold" for k in failed), failed


@pytest.mark.parametrize("reference_on", ["re-encoded", "original"])
def test_marts_equal_independent_implementation(foreign, reference_on: str) -> None:
    """Against the reference on the same bytes, and on the original ones: spelling changes no number."""
    original, root, _, _ = foreign
    got = published_marts(root)
    assert_same_results(got, reference_run(root if reference_on == "re-encoded" else original, START, END))
    assert len({reason for _, reason in got[2]}) == 9  # every rule was exercised
