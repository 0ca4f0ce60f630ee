"""The generator against SPEC §1–4, checked by an independent reading of the rules."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from pipelines.contract import FIELDS, LOGS, REFERENCE_TABLES, JsonType
from pipelines.generate import DIRT_KINDS, generate_dataset
from pipelines.landing.gzip_check import gzip_fault
from tests.generate_checker import Checked, check, parse_time, read_lines, read_table

START = dt.date(2025, 3, 1)
DAYS = 4
EVENTS = 4_000


def tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    generate_dataset(root, START, DAYS, EVENTS, seed=5, dirt_rate=0.0, chunk_size=1_500)
    return root


@pytest.fixture(scope="module")
def clean_checked(clean: Path) -> Checked:
    return check(clean)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("dirty")
    stats = generate_dataset(root, START, DAYS, EVENTS, seed=5, dirt_rate=0.02, chunk_size=1_500)
    return root, stats


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root, seed in ((a, 1), (b, 1), (c, 2)):
        generate_dataset(root, START, 2, 3_000, seed=seed, dirt_rate=0.01, chunk_size=700)
    assert tree(a) == tree(b)
    assert tree(a) != tree(c)
    assert (a / "reference" / "fx_rates.csv").read_bytes() != (c / "reference" / "fx_rates.csv").read_bytes()


def test_rerun_replaces_previous_output(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "d", START, 3, 2_000, seed=1)
    generate_dataset(tmp_path / "d", START, 1, 2_000, seed=1)
    generate_dataset(tmp_path / "e", START, 1, 2_000, seed=1)
    assert tree(tmp_path / "d") == tree(tmp_path / "e")


def test_compressed_output_is_gzip_of_the_same_lines(tmp_path: Path) -> None:
    plain, packed, again = tmp_path / "plain", tmp_path / "packed", tmp_path / "again"
    generate_dataset(plain, START, 2, 2_000, seed=3)
    generate_dataset(packed, START, 2, 2_000, seed=3, compress=True)
    generate_dataset(again, START, 2, 2_000, seed=3, compress=True)
    assert tree(packed) == tree(again)  # no file name or time in the gzip header
    files = sorted(packed.glob("raw/*/dt=*/*"))
    assert files and all(f.name.endswith(".jsonl.gz") for f in files)
    for f in files:
        twin = plain / f.relative_to(packed).with_suffix("")
        assert gzip.decompress(f.read_bytes()) == twin.read_bytes()
        assert gzip_fault(f) is None  # the parts compressed in parallel make one sound member


def test_layout_and_reference_tables(clean: Path) -> None:
    for table, header in REFERENCE_TABLES.items():
        assert tuple(read_table(clean / "reference" / f"{table}.csv")[0]) == header
    countries = read_table(clean / "reference" / "countries.csv")[1]
    regions = {r["region"] for r in countries}
    assert {"North America", "Europe", "Southeast Asia", "Latin America", "Middle East", "East Asia"} <= regions
    assert {r["country"]: r["currency"] for r in countries}["DE"] == "EUR"
    gifts = {r["gift_type"]: int(r["coins"]) for r in read_table(clean / "reference" / "gift_catalog.csv")[1]}
    assert gifts["rose"] == 1 and gifts["universe"] == 34999
    params = {r["name"]: r["value"] for r in read_table(clean / "reference" / "parameters.csv")[1]}
    assert float(params["creator_usd_per_coin"]) == 0.005
    # fx: every day from the start to 3 days after the last event date, every currency + USD
    fx = {
        (r["date"], r["currency"]): float(r["usd_per_unit"])
        for r in read_table(clean / "reference" / "fx_rates.csv")[1]
    }
    currencies = {r["currency"] for r in countries} | {"USD"}
    days = [(START + dt.timedelta(days=i)).isoformat() for i in range(DAYS + 3)]
    assert set(fx) == {(d, c) for d in days for c in currencies}
    assert all(v > 0 for v in fx.values()) and all(fx[(d, "USD")] == 1.0 for d in days)
    assert len({fx[(d, "EUR")] for d in days}) > 1  # it drifts
    # raw partitions: arrival dates only, every log present
    for log in LOGS:
        parts = sorted((clean / "raw" / log).glob("dt=*/part-*.jsonl"))
        assert parts, log
        for p in parts:
            dt.date.fromisoformat(p.parent.name.removeprefix("dt="))


def _json_type_ok(kind: JsonType, value: object) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    return {
        JsonType.STRING: isinstance(value, str) and value != "",
        JsonType.ID: isinstance(value, str),  # we write ids as strings
        JsonType.NUMBER: is_int or isinstance(value, float),
        JsonType.INTEGER: is_int,
        JsonType.BOOLEAN: isinstance(value, bool),
        JsonType.TIMESTAMP: parse_time(value) is not None,
        JsonType.NULLABLE_STRING: value is None or isinstance(value, str),
    }[kind]


def test_clean_dataset_is_all_valid(clean: Path, clean_checked: Checked) -> None:
    ids: dict[str, set[str]] = {log: set() for log in LOGS}
    for log in LOGS:
        names = [f.name for f in FIELDS[log]]
        for path in sorted((clean / "raw" / log).glob("dt=*/*.jsonl")):
            for line in read_lines(path):
                obj = json.loads(line)
                assert list(obj) == names, line
                for f in FIELDS[log]:
                    assert _json_type_ok(f.json_type, obj[f.name]), (f.name, line)
                assert obj["event_id"] not in ids[log], obj["event_id"]
                ids[log].add(obj["event_id"])
    result = clean_checked
    assert result.reasons == Counter()
    assert result.blank == 0 and result.collapsed == 0
    assert sum(len(v) for v in result.accepted.values()) == sum(len(v) for v in ids.values())
    assert all(e["user_age"] >= 18 for log in ("coin_purchases", "gifts") for e in result.accepted[log])


def test_clean_dataset_looks_like_the_business(clean: Path, clean_checked: Checked) -> None:
    acc = clean_checked.accepted
    total = sum(len(v) for v in acc.values())
    imp = acc["impressions"]
    assert 0.85 <= len(imp) / total <= 0.90
    assert {e["pricing_model"] for e in imp} == {"cpm", "cpc"}
    assert {e["ad_format"] for e in imp} == {"in_feed", "topview", "branded_hashtag_challenge"}
    cpc = [e["clicked"] for e in imp if e["pricing_model"] == "cpc"]
    assert 0.01 < sum(cpc) / len(cpc) < 0.08
    assert any(e["clicked"] for e in imp if e["pricing_model"] == "cpm")
    fx = {
        (r["date"], r["currency"]): float(r["usd_per_unit"])
        for r in read_table(clean / "reference" / "fx_rates.csv")[1]
    }

    def mean_cpm_usd(fmt: str) -> float:
        usd = [
            e["price"] * fx[(e["event_time"][:10], e["currency"])]
            for e in imp
            if e["ad_format"] == fmt and e["pricing_model"] == "cpm"
        ]
        return sum(usd) / len(usd)

    assert mean_cpm_usd("topview") > mean_cpm_usd("in_feed")
    # local pricing: a coin pack costs a different number in each currency
    packs = {(e["currency"], e["platform"], e["coins"]): e["amount"] for e in acc["coin_purchases"]}
    assert len({v for (c, p, coins), v in packs.items() if coins == 70 and p != "web"}) > 3
    # gifts: a few creators get most
    per_creator = Counter(e["creator_id"] for e in acc["gifts"])
    top_tenth = sum(n for _, n in per_creator.most_common(max(1, len(per_creator) // 10)))
    assert top_tenth / len(acc["gifts"]) > 0.4
    # orders: refunds of placed orders, same amount, later; affiliates sometimes
    orders = acc["orders"]
    placed = {e["order_id"]: e for e in orders if e["event_type"] == "placed"}
    refunds = [e for e in orders if e["event_type"] == "refunded"]
    assert refunds
    for r in refunds:
        p = placed.get(r["order_id"])
        if p is not None:
            assert r["amount"] == p["amount"] and r["event_id"] != p["event_id"]
            assert r["event_time"][:10] > p["event_time"][:10]
    with_aff = [e for e in orders if e["affiliate_creator_id"] is not None]
    assert 0 < len(with_aff) < len(orders)
    assert all(e["affiliate_rate"] == 0.0 for e in orders if e["affiliate_creator_id"] is None)
    # creator fund: one payout per creator per day
    fund = Counter((e["creator_id"], e["event_time"][:10]) for e in acc["fund_payouts"])
    assert fund and max(fund.values()) == 1
    # weekday cycle and legit late arrivals
    per_day = Counter(e["event_time"][:10] for e in imp)
    assert len(set(per_day.values())) > 1


def test_late_but_valid_arrivals_exist(clean_checked: Checked) -> None:
    result = clean_checked
    lateness = Counter(
        (result.arrival[(log, e["event_id"])] - dt.date.fromisoformat(e["event_time"][:10])).days
        for log in LOGS
        for e in result.accepted[log]
    )
    assert set(lateness) == {0, 1, 2, 3}
    assert 0.01 < (sum(lateness.values()) - lateness[0]) / sum(lateness.values()) < 0.06


def test_every_dirt_kind_is_caught_by_exactly_its_rule(dirty: tuple[Path, object]) -> None:
    root, stats = dirty
    result = check(root)
    made = stats.dirt  # type: ignore[attr-defined]
    assert all(made[k] > 0 for k in DIRT_KINDS), made
    for reason in (
        "malformed",
        "schema_violation",
        "future_event",
        "late_arrival",
        "invalid_value",
        "unknown_reference",
        "missing_fx_rate",
        "underage",
    ):
        assert result.reasons[reason] == made[reason] > 0, reason
    assert result.reasons["conflicting_duplicate"] == 2 * made["conflicting_duplicate"] > 0
    assert result.collapsed >= made["duplicate"] > 0  # some are delivered three times
    assert result.blank == made["blank_line"] > 0
    assert result.lines == stats.total_lines  # type: ignore[attr-defined]


def test_single_dirt_kind_override(tmp_path: Path) -> None:
    stats = generate_dataset(tmp_path, START, 2, 3_000, seed=4, dirt_rate=0.0, dirt_rates={"malformed": 0.05})
    assert {k for k, v in stats.dirt.items() if v} == {"malformed"}
    result = check(tmp_path)
    assert set(result.reasons) == {"malformed"} and result.reasons["malformed"] == stats.dirt["malformed"]


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, START, 0, 10)
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, START, 1, 10, dirt_rates={"nonsense": 0.1})
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, START, 1, 10, dirt_rate=0.5)  # ten kinds cannot take half each
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        generate_dataset(tmp_path / "file" / "sub", START, 1, 10)


def test_pre_rendered_campaign_text_matches_field_by_field_rendering(tmp_path: Path) -> None:
    import numpy as np

    from pipelines.generate.encode import build_lookups, encode
    from pipelines.generate.events import Context, impressions
    from pipelines.generate.population import build_population
    from pipelines.generate.reference import write_reference
    from pipelines.generate.rng import rng_for
    from pipelines.generate.timing import epoch_day

    ref = write_reference(tmp_path, START, 1, 0)
    pop = build_population(ref, 10_000, 0)
    day = epoch_day(START)
    lk = build_lookups(ref, pop, day, day)
    cols = impressions(Context(ref, pop, 0, 0.03, day), rng_for(0, "t"), day, 0, 2_000)
    fast = encode("impressions", cols, lk, "imp-x-", "x")
    slow = encode("impressions", cols, lk, "imp-x-", "x", touched=np.ones(2_000, dtype=bool))
    assert fast.to_list() == slow.to_list()
