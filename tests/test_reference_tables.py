"""Loading a data directory's reference tables: strict where a rule reads, lenient elsewhere.

SPEC §6: the tables may differ from one data directory to another. A value no rule reads (a
country's name, a gift's coins, an unused parameter) or a row given twice must not stop a run; a
key given two different values that a rule reads is ambiguous money and does.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from pipelines.lake import DataDir
from pipelines.reference import ReferenceError, load_reference
from tests.builders import CREATOR_USD_PER_COIN, write_reference


@pytest.fixture
def ref_dir(tmp_path: Path) -> Path:
    write_reference(tmp_path, dt.date(2025, 3, 1), dt.date(2025, 3, 2))
    return tmp_path / "reference"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_columns_no_rule_reads_are_not_checked(ref_dir: Path) -> None:
    (ref_dir / "gift_catalog.csv").write_text("gift_type,coins\nrose,1.0\nlion,\nstar,many\n")
    _append(ref_dir / "countries.csv", "XY,,Nowhere,\n")
    _append(ref_dir / "parameters.csv", "note,\nlaunch_city,Berlin\n")
    ref = load_reference(DataDir.at(ref_dir.parent))
    assert ref.gift_catalog.get_column("gift_type").to_list() == ["rose", "lion", "star"]
    assert ref.countries.filter(country="XY").get_column("region").to_list() == ["Nowhere"]
    assert ref.creator_usd_per_coin == CREATOR_USD_PER_COIN


def test_only_the_columns_a_rule_reads_are_required_in_the_header(ref_dir: Path) -> None:
    (ref_dir / "countries.csv").write_text("region,country\nEurope,DE\n")
    (ref_dir / "gift_catalog.csv").write_text("gift_type\nrose\n")
    ref = load_reference(DataDir.at(ref_dir.parent))
    assert ref.countries.rows() == [("DE", "Europe")]
    (ref_dir / "countries.csv").write_text("country,country_name\nDE,Germany\n")
    with pytest.raises(ReferenceError, match=r"countries.csv: missing column\(s\) \['region'\]"):
        load_reference(DataDir.at(ref_dir.parent))


def test_a_row_given_twice_is_one_row(ref_dir: Path) -> None:
    _append(ref_dir / "fx_rates.csv", "2025-03-01,EUR,1.1\n")
    _append(ref_dir / "countries.csv", "DE,Deutschland,Europe,EUR\n")  # the name differs, the region does not
    _append(ref_dir / "gift_catalog.csv", "rose,2\n")  # only the gift type is read
    _append(ref_dir / "parameters.csv", f"creator_usd_per_coin,{CREATOR_USD_PER_COIN}\n")
    ref = load_reference(DataDir.at(ref_dir.parent))
    assert ref.fx_rates.filter(currency="EUR", date=dt.date(2025, 3, 1)).get_column("usd_per_unit").to_list() == [1.1]
    assert ref.countries.filter(country="DE").get_column("country_name").to_list() == ["Germany"]
    assert ref.gift_catalog.filter(gift_type="rose").height == 1


@pytest.mark.parametrize(
    ("table", "row", "message"),
    [
        ("fx_rates.csv", "2025-03-01,EUR,1.2\n", "key ['date', 'currency'] given different values"),
        ("countries.csv", "DE,Germany,Central Europe,EUR\n", "key ['country'] given different values"),
        ("store_fees.csv", "ios,0.15\n", "key ['platform'] given different values"),
        ("parameters.csv", "creator_usd_per_coin,0.01\n", "key ['name'] given different values"),
    ],
)
def test_a_key_with_two_values_a_rule_reads_fails_the_load(ref_dir: Path, table: str, row: str, message: str) -> None:
    _append(ref_dir / table, row)
    with pytest.raises(ReferenceError, match=re.escape(message)):
        load_reference(DataDir.at(ref_dir.parent))


def test_the_message_names_the_lines_of_the_conflicting_rows(ref_dir: Path) -> None:
    fx = ref_dir / "fx_rates.csv"
    fx.write_text("date,currency,usd_per_unit\n2025-03-01,EUR,1.1\n2025-03-01,GBP,1.3\n2025-03-01,EUR,1.2\n")
    _append(fx, "2025-03-02,GBP,1.3\n2025-03-02,GBP,1.31\n")
    expected = (
        f"{fx}, lines 2, 4: key ['date', 'currency'] given different values: "
        "[{'date': '2025-03-01', 'currency': 'EUR', 'usd_per_unit': '1.1'}, "
        "{'date': '2025-03-01', 'currency': 'EUR', 'usd_per_unit': '1.2'}] (and 2 more such rows)"
    )
    with pytest.raises(ReferenceError) as raised:
        load_reference(DataDir.at(ref_dir.parent))
    assert str(raised.value) == expected


@pytest.mark.parametrize("table", ["countries", "fx_rates", "store_fees", "gift_catalog", "shop_categories"])
def test_a_table_with_only_its_header_fails_the_load(ref_dir: Path, table: str) -> None:
    """Header only (or a header and blank lines): every event would be quarantined as unknown_reference or
    missing_fx_rate, or lose its store fee, and the run would succeed with empty marts."""
    path = ref_dir / f"{table}.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n\n")
    with pytest.raises(ReferenceError, match=re.escape(f"{path}: no rows, only a header")):
        load_reference(DataDir.at(ref_dir.parent))


def test_unused_parameters_may_repeat(ref_dir: Path) -> None:
    _append(ref_dir / "parameters.csv", "note,a\nnote,b\n")
    assert load_reference(DataDir.at(ref_dir.parent)).creator_usd_per_coin == CREATOR_USD_PER_COIN


@pytest.mark.parametrize("value", ["", "nan", "inf", "five"])
def test_creator_usd_per_coin_must_be_a_finite_number(ref_dir: Path, value: str) -> None:
    (ref_dir / "parameters.csv").write_text(f"name,value\ncreator_usd_per_coin,{value}\n")
    with pytest.raises(ReferenceError, match=r"parameters\.csv: creator_usd_per_coin is not a number"):
        load_reference(DataDir.at(ref_dir.parent))


@pytest.mark.parametrize(
    ("table", "row", "message"),
    [
        ("fx_rates.csv", "2025-03-03,EUR,-1.1\n", "usd_per_unit '-1.1' is not a positive number"),
        ("fx_rates.csv", "2025-03-03,EUR,0\n", "usd_per_unit '0' is not a positive number"),
        ("fx_rates.csv", "2025-03-03,EUR,nan\n", "usd_per_unit 'nan' is not a positive number"),
        ("fx_rates.csv", "2025-03-03,EUR,inf\n", "usd_per_unit 'inf' is not a positive number"),
        ("store_fees.csv", "tv,30\n", "fee_rate '30' is not a rate between 0 and 1"),
        ("store_fees.csv", "tv,-0.1\n", "fee_rate '-0.1' is not a rate between 0 and 1"),
        ("shop_categories.csv", "garden,1.5\n", "referral_fee_rate '1.5' is not a rate between 0 and 1"),
    ],
)
def test_rates_out_of_range_fail_the_load_naming_the_line(ref_dir: Path, table: str, row: str, message: str) -> None:
    lines = len((ref_dir / table).read_text().splitlines())
    _append(ref_dir / table, row)
    with pytest.raises(ReferenceError, match=re.escape(f"{table}, line {lines + 1}: {message} (1 such rows)")):
        load_reference(DataDir.at(ref_dir.parent))


def test_rates_at_the_ends_of_their_range_load(ref_dir: Path) -> None:
    _append(ref_dir / "store_fees.csv", "tv,0\nkiosk,1\n")
    _append(ref_dir / "shop_categories.csv", "garden,0.0\nvouchers,1.0\n")
    ref = load_reference(DataDir.at(ref_dir.parent))
    assert dict(ref.store_fees.select("platform", "fee_rate").iter_rows())["kiosk"] == 1.0
    assert dict(ref.shop_categories.select("category", "referral_fee_rate").iter_rows())["garden"] == 0.0


def test_creator_usd_per_coin_must_not_be_negative(ref_dir: Path) -> None:
    (ref_dir / "parameters.csv").write_text("name,value\ncreator_usd_per_coin,-0.005\n")
    with pytest.raises(ReferenceError, match=r"parameters\.csv: creator_usd_per_coin is negative: '-0.005'"):
        load_reference(DataDir.at(ref_dir.parent))
    (ref_dir / "parameters.csv").write_text("name,value\ncreator_usd_per_coin,0\n")
    assert load_reference(DataDir.at(ref_dir.parent)).creator_usd_per_coin == 0.0


def test_blank_lines_are_no_rows(ref_dir: Path) -> None:
    """An editor's or an export's blank last line, a gap, or a line of blanks is no row (as Python's
    csv reader skips it), while a row with only unread columns filled is still a row."""
    before = load_reference(DataDir.at(ref_dir.parent))
    _append(ref_dir / "shop_categories.csv", "\n")
    _append(ref_dir / "store_fees.csv", "\n\n   \n")
    lines = (ref_dir / "countries.csv").read_text().splitlines(keepends=True)
    (ref_dir / "countries.csv").write_text("".join([*lines[:2], "\n", " \t \n", *lines[2:]]))
    after = load_reference(DataDir.at(ref_dir.parent))
    for table in ("countries", "store_fees", "shop_categories"):
        assert getattr(after, table).equals(getattr(before, table))
    assert after.fingerprint(dt.date(2025, 3, 1)) == before.fingerprint(dt.date(2025, 3, 1))

    _append(ref_dir / "countries.csv", ",Nowhere,,\n")
    with pytest.raises(ReferenceError, match=r"countries\.csv, line 8: country is empty"):
        load_reference(DataDir.at(ref_dir.parent))


def test_line_numbers_count_the_blank_lines(ref_dir: Path) -> None:
    (ref_dir / "store_fees.csv").write_text("platform,fee_rate\nios,0.3\n\nandroid,lots\nweb,0.05\n")
    with pytest.raises(ReferenceError, match=r"store_fees\.csv, line 4: fee_rate 'lots' is not"):
        load_reference(DataDir.at(ref_dir.parent))


def test_blanks_around_header_names_are_ignored(ref_dir: Path) -> None:
    before = load_reference(DataDir.at(ref_dir.parent))
    text = (ref_dir / "countries.csv").read_text()
    header, rest = text.split("\n", 1)
    (ref_dir / "countries.csv").write_text(header.replace(",", ", ") + " \n" + rest)
    assert load_reference(DataDir.at(ref_dir.parent)).countries.equals(before.countries)


def test_a_column_named_twice_once_blanks_are_stripped_fails_the_load(ref_dir: Path) -> None:
    (ref_dir / "store_fees.csv").write_text("platform,fee_rate, fee_rate\nios,0.3,0.3\n")
    with pytest.raises(ReferenceError, match=r"store_fees\.csv: a column is named twice"):
        load_reference(DataDir.at(ref_dir.parent))


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_lines_may_end_with_cr_or_crlf(ref_dir: Path, end: str) -> None:
    """Excel for Mac's "CSV (Macintosh)" ends lines with a lone CR, Windows exports with CRLF: both read as
    LF (as the raw logs' lines do), so no table turns into one header line and no rows."""
    before = load_reference(DataDir.at(ref_dir.parent))
    for path in ref_dir.glob("*.csv"):
        path.write_bytes(path.read_bytes().replace(b"\n", end.encode()))
    after = load_reference(DataDir.at(ref_dir.parent))
    for table in ("countries", "fx_rates", "store_fees", "gift_catalog", "shop_categories"):
        assert getattr(after, table).equals(getattr(before, table)), table
    assert after.creator_usd_per_coin == before.creator_usd_per_coin
    (ref_dir / "store_fees.csv").write_bytes(b"platform,fee_rate\rios,0.3\r\rweb,lots\r")
    with pytest.raises(ReferenceError, match=r"store_fees\.csv, line 4: fee_rate 'lots' is not"):
        load_reference(DataDir.at(ref_dir.parent))


def test_bytes_that_are_not_utf8_fail_the_load_only_in_a_column_a_rule_reads(ref_dir: Path) -> None:
    """A Windows export writes cp1252: a country's name no rule reads may hold it; a key may not, since
    the events' UTF-8 keys could then never match it."""
    _append(ref_dir / "countries.csv", "")
    with (ref_dir / "countries.csv").open("ab") as f:
        f.write("CI,Côte d’Ivoire,Africa,XOF\n".encode("cp1252"))
    ref = load_reference(DataDir.at(ref_dir.parent))
    assert ref.countries.filter(country="CI").get_column("region").to_list() == ["Africa"]
    with (ref_dir / "gift_catalog.csv").open("ab") as f:
        f.write("café\n".encode("cp1252"))
    with pytest.raises(ReferenceError, match=r"gift_catalog\.csv, line \d+: gift_type is not UTF-8 text"):
        load_reference(DataDir.at(ref_dir.parent))


def test_a_folder_in_place_of_a_table_fails_the_load_naming_it(ref_dir: Path) -> None:
    (ref_dir / "store_fees.csv").unlink()
    (ref_dir / "store_fees.csv").mkdir()
    with pytest.raises(ReferenceError, match=r"cannot read .*store_fees\.csv"):
        load_reference(DataDir.at(ref_dir.parent))


def test_line_breaks_inside_quoted_values_are_kept(ref_dir: Path) -> None:
    """A quoted value keeps its CR, CRLF or LF, as Python's csv module reads it, whatever the line ends."""
    for end in (b"\n", b"\r\n", b"\r"):
        body = b"category,referral_fee_rate" + end + b'"home\r\ngarden",0.1' + end + b'"a\rb",0.2' + end + b'"c\nd",0.3'
        (ref_dir / "shop_categories.csv").write_bytes(body + end)
        ref = load_reference(DataDir.at(ref_dir.parent))
        assert sorted(ref.shop_categories.get_column("category").to_list()) == ["a\rb", "c\nd", "home\r\ngarden"], end
