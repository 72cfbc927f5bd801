"""The intake rules, as pure functions: the facts and ``today`` are parameters."""

from __future__ import annotations

import datetime as dt

import pytest

from vir.domain import intake
from vir.domain.errors import InputError, InvalidElement
from vir.domain.intake import SignalRequest
from vir.domain.organisations import Category, Oin, Organisation
from vir.domain.signals import Professional

TODAY = dt.date(2026, 3, 1)
PERSON, PARENT, OTHER_PARENT, ADDRESS = b"p" * 32, b"m" * 32, b"f" * 32, b"a" * 32
BAD = b"bad"


def _valid(element: bytes) -> bool:
    return element != BAD


def _request(**changes: object) -> SignalRequest:
    fields: dict[str, object] = {
        "local_ref": "case-1",
        "epoch": 1,
        "person": PERSON,
        "parents": (PARENT,),
        "address": ADDRESS,
        "remove_on": None,
        "professional": Professional("Anna de Wit", function="jeugdhulpverlener"),
    }
    return SignalRequest(**(fields | changes))  # type: ignore[arg-type]


def _check(request: SignalRequest, category: Category = Category.YOUTH_CARE) -> dt.date:
    return intake.check_signal(
        request, category=category, current_epoch=1, today=TODAY, is_valid_element=_valid
    )


def _field(error: pytest.ExceptionInfo[InputError]) -> str:
    return error.value.field


def test_a_plain_request_is_removed_two_years_on() -> None:
    assert _check(_request()) == dt.date(2028, 3, 1)


def test_the_epoch_must_be_the_current_one() -> None:
    with pytest.raises(InputError) as error:
        _check(_request(epoch=2))
    assert _field(error) == "epoch"
    intake.check_epoch(3, 3)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"person": BAD}, "person"),
        ({"parents": (PARENT, BAD)}, "parents[1]"),
        ({"address": BAD}, "address"),
    ],
)
def test_every_element_is_checked_and_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidElement) as error:
        _check(_request(**changes))
    assert error.value.field == field


@pytest.mark.parametrize("parents", [(PARENT, PARENT), (PERSON,), (OTHER_PARENT, PERSON)], ids=str)
def test_parents_are_distinct_and_not_the_person(parents: tuple[bytes, ...]) -> None:
    with pytest.raises(InputError) as error:
        _check(_request(parents=parents))
    assert _field(error) == "parents"


def test_no_parents_and_no_address_is_fine() -> None:
    assert _check(_request(parents=(), address=None)) == dt.date(2028, 3, 1)


@pytest.mark.parametrize(
    ("remove_on", "archive_until", "expected"),
    [
        (dt.date(2026, 3, 2), None, dt.date(2026, 3, 2)),
        (dt.date(2028, 3, 1), None, dt.date(2028, 3, 1)),
        (None, dt.date(2027, 1, 1), dt.date(2027, 1, 1)),  # turns 23 first
        (None, dt.date(2030, 1, 1), dt.date(2028, 3, 1)),
        (dt.date(2026, 6, 1), dt.date(2027, 1, 1), dt.date(2026, 6, 1)),
        (dt.date(2027, 1, 1), dt.date(2027, 1, 1), dt.date(2027, 1, 1)),
    ],
)
def test_removal_date(
    remove_on: dt.date | None, archive_until: dt.date | None, expected: dt.date
) -> None:
    assert intake.removal_date(remove_on, archive_until, TODAY) == expected


@pytest.mark.parametrize(
    ("remove_on", "archive_until", "field"),
    [
        (TODAY, None, "remove_on"),  # not in the future
        (dt.date(2026, 1, 1), None, "remove_on"),
        (dt.date(2028, 3, 2), None, "remove_on"),  # more than two years ahead
        (dt.date(2027, 1, 2), dt.date(2027, 1, 1), "remove_on"),  # after turning 23
        (None, TODAY, "archive_until"),  # 23 already: out of scope
        (dt.date(2026, 6, 1), dt.date(2026, 2, 1), "archive_until"),
    ],
)
def test_removal_date_refused(
    remove_on: dt.date | None, archive_until: dt.date | None, field: str
) -> None:
    with pytest.raises(InputError) as error:
        intake.removal_date(remove_on, archive_until, TODAY)
    assert _field(error) == field


def test_leap_day_maximum() -> None:
    assert intake.removal_date(None, None, dt.date(2028, 2, 29)) == dt.date(2030, 2, 28)


def test_the_function_belongs_to_the_category() -> None:
    teacher = Professional("Anna de Wit", function="leerkracht")
    with pytest.raises(InputError) as error:
        _check(_request(professional=teacher))
    assert _field(error) == "professional.function"
    intake.check_function(Category.YOUTH_CARE, Professional("Anna de Wit", function="overig"))
    intake.check_function(Category.YOUTH_CARE, None)
    # A municipality registers nothing: require_reporter refuses it, not this rule.
    intake.check_function(Category.MUNICIPALITY, teacher)


def test_informed_between_registration_and_today() -> None:
    intake.check_informed(TODAY, TODAY, TODAY)
    for on, registered in [(TODAY + dt.timedelta(days=1), TODAY), (TODAY, TODAY.replace(day=2))]:
        with pytest.raises(InputError) as error:
            intake.check_informed(on, TODAY, registered)
        assert _field(error) == "informed.on"


@pytest.mark.parametrize("convenant", [None, "", "   "])
def test_a_reporter_needs_a_convenant(convenant: str | None) -> None:
    org = Organisation(Oin("0" * 20), "Jeugdzorg", Category.YOUTH_CARE, "Rotterdam", convenant)
    with pytest.raises(InputError) as error:
        intake.check_convenant(org)
    assert _field(error) == "convenant"
    municipality = Organisation(Oin("1" * 20), "Gemeente", Category.MUNICIPALITY, "Rotterdam")
    intake.check_convenant(municipality)


def test_the_content_hash_ignores_parent_order() -> None:
    one = _request(parents=(PARENT, OTHER_PARENT))
    assert one.content_hash() == _request(parents=(OTHER_PARENT, PARENT)).content_hash()
    assert one.content_hash() != _request(parents=(PARENT,)).content_hash()
