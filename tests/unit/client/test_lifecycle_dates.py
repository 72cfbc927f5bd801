"""Dates the client computes so that the date of birth never leaves it."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vir.client.lifecycle import OutOfScope, confirm_covers, removal_dates, who_to_inform
from vir.domain.lifecycle import InformedWho
from vir.domain.signals import add_years

TODAY = dt.date(2026, 11, 22)


def test_two_years_for_a_child() -> None:
    dates = removal_dates(dt.date(2015, 3, 1), TODAY)
    assert dates.remove_on == dt.date(2028, 11, 22)
    assert dates.archive_until is None  # 23 in 2038, after the archive term
    assert dates.as_fields() == {"remove_on": "2028-11-22"}


def test_the_23rd_birthday_caps_removal_and_archive() -> None:
    dates = removal_dates(dt.date(2004, 6, 30), TODAY)  # turns 23 on 2027-06-30
    assert dates.remove_on == dt.date(2027, 6, 30)
    assert dates.archive_until == dt.date(2027, 6, 30)
    older = removal_dates(dt.date(2001, 12, 1), dt.date(2021, 1, 1))  # 23 in 2024
    assert older.remove_on == dt.date(2023, 1, 1)
    assert older.archive_until == dt.date(2024, 12, 1)


def test_leap_day_birthdays() -> None:
    dates = removal_dates(dt.date(2004, 2, 29), dt.date(2026, 1, 1))
    assert dates.remove_on == dt.date(2027, 2, 28)


@pytest.mark.parametrize("born", [dt.date(2003, 11, 22), dt.date(2027, 1, 1)])
def test_out_of_scope(born: dt.date) -> None:
    with pytest.raises(OutOfScope):
        removal_dates(born, TODAY)


@given(
    born=st.dates(dt.date(2000, 1, 1), dt.date(2026, 11, 22)),
    today=st.dates(dt.date(2026, 11, 22), dt.date(2030, 1, 1)),
)
def test_removal_is_never_later_than_two_years_or_23(born: dt.date, today: dt.date) -> None:
    limit = add_years(born, 23)
    if not born <= today < limit:
        return
    dates = removal_dates(born, today)
    assert today < dates.remove_on <= min(add_years(today, 2), limit)
    if dates.archive_until is not None:
        assert dates.archive_until == limit


@pytest.mark.parametrize(
    ("born", "who"),
    [
        (dt.date(2015, 11, 23), InformedWho.REPRESENTATIVE),  # 10 (11 tomorrow)
        (dt.date(2014, 11, 22), InformedWho.BOTH),  # 12 today
        (dt.date(2010, 11, 23), InformedWho.BOTH),  # 15
        (dt.date(2010, 11, 22), InformedWho.YOUNG_PERSON),  # 16 today
    ],
)
def test_who_must_be_informed(born: dt.date, who: InformedWho) -> None:
    assert who_to_inform(born, TODAY) is who


def test_a_confirmation_must_cover_the_bracket() -> None:
    confirm_covers(InformedWho.BOTH, dt.date(2015, 1, 1), TODAY)
    with pytest.raises(ValueError, match="representative"):
        confirm_covers(InformedWho.YOUNG_PERSON, dt.date(2020, 1, 1), TODAY)
