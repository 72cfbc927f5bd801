from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vir.client.canonical import is_valid_bsn, nl_address, nl_bsn, nl_person
from vir.domain.errors import InputError


@pytest.mark.parametrize("bsn", ["123456782", "111222333", "999999990", " 123456782 "])
def test_valid_bsns(bsn: str) -> None:
    assert nl_bsn(bsn) == f"nl-bsn:{bsn.strip()}"


@pytest.mark.parametrize(
    ("bsn", "why"),
    [
        ("123456789", "11-proof"),
        ("000000000", "11-proof"),
        ("12345678", "9 digits"),
        ("1234567820", "9 digits"),
        ("12345678a", "9 digits"),
        ("１２３４５６７８２", "9 digits"),
        ("", "9 digits"),
    ],
)
def test_invalid_bsns_say_why_without_the_value(bsn: str, why: str) -> None:
    with pytest.raises(InputError) as info:
        nl_bsn(bsn)
    assert why in info.value.detail
    assert info.value.field == "bsn"
    if bsn:
        assert bsn not in str(info.value)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_eleven_proof_definition(bsn: str) -> None:
    total = sum(int(d) * w for d, w in zip(bsn, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
    assert is_valid_bsn(bsn) == (total % 11 == 0 and bsn != "000000000")


@pytest.mark.parametrize(
    ("surname", "expected"),
    [
        ("Jansen", "jansen"),
        ("  de Vries ", "devries"),
        ("Çelik", "celik"),
        ("Müller-Lüdenscheidt", "muller-ludenscheidt"),
        ("van 't Hof", "van'thof"),
        ("ÉÈÊË", "eeee"),
        ("Öztürk\tYılmaz", "ozturkyılmaz"),
        ("Ĳsselmeer", "ijsselmeer"),
    ],
)
def test_surname_normalisation(surname: str, expected: str) -> None:
    assert nl_person(surname, "2012-03-04", "V") == f"nl-person:{expected}:2012-03-04:v"


def test_person_accepts_a_date_object() -> None:
    assert nl_person("Bakker", dt.date(2010, 1, 2), "m") == "nl-person:bakker:2010-01-02:m"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "2012-01-01", "m"), "surname"),
        (("  ", "2012-01-01", "m"), "surname"),
        (("a:b", "2012-01-01", "m"), "surname"),
        (("jan\x00", "2012-01-01", "m"), "surname"),
        (("jansen", "2012-13-01", "m"), "birth_date"),
        (("jansen", "01-02-2012", "m"), "birth_date"),
        (("jansen", "2012-01-01", "f"), "gender"),
    ],
)
def test_person_bad_input(args: tuple[str, str, str], field: str) -> None:
    with pytest.raises(InputError) as info:
        nl_person(*args)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("postcode", "number", "suffix", "expected"),
    [
        ("3011 ab", 12, "", "nl-address:3011AB:12:"),
        ("3011AB", "012", "a", "nl-address:3011AB:12:A"),
        (" 3011ab ", " 7 ", " - 2 ", "nl-address:3011AB:7:2"),
        ("3011 AB", 7, "bis", "nl-address:3011AB:7:BIS"),
        ("3011AB", 7, "A-1", "nl-address:3011AB:7:A1"),
    ],
)
def test_address_normalisation(
    postcode: str, number: int | str, suffix: str, expected: str
) -> None:
    assert nl_address(postcode, number, suffix) == expected


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("0123AB", 1), "postcode"),
        (("3011A", 1), "postcode"),
        (("3011ABC", 1), "postcode"),
        (("ABCD12", 1), "postcode"),
        (("3011AB", 0), "house_number"),
        (("3011AB", "12a"), "house_number"),
        (("3011AB", 100000), "house_number"),
        (("3011AB", 1, "toolongsuffix"), "suffix"),
        (("3011AB", 1, "ä"), "suffix"),
    ],
)
def test_address_bad_input(args: tuple[str, int | str], field: str) -> None:
    with pytest.raises(InputError) as info:
        nl_address(*args)
    assert info.value.field == field
