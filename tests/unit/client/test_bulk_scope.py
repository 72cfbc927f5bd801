"""An import row with the young person's date of birth (``vir-client import``/``sync``):
a young person of 23 or older is refused before anything is sent, and the 23rd birthday
is stated to the index as ``archive_until`` when it comes before the archive term ends.

Found by a walk against DESIGN.md in stop 42 ("Scope: young persons under 23"): the
import passed a 36-year-old through and never told the index the 23rd birthday, so a
signal outlived it by up to two years, and its archived copy by five."""

from __future__ import annotations

import datetime as dt

import pytest

from vir.client.bulk import parse_row
from vir.client.demo import made_up_bsn
from vir.domain.errors import InputError

TODAY = dt.date(2026, 12, 4)
CONTACT = {"professional_name": "Els Visser", "professional_email": "e.visser@school.example"}


def _without_bsn(born: str, **more: str) -> dict[str, str]:
    return {
        "local_ref": "r-1",
        "surname": "Jansen",
        "birth_date": born,
        "gender": "v",
        **CONTACT,
        **more,
    }


@pytest.mark.parametrize("born", ["1990-01-15", "2003-12-04", "2026-12-05"])
def test_out_of_scope_is_refused_naming_the_column_not_the_date(born: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_row(2, _without_bsn(born), TODAY)
    assert refused.value.field == "birth_date"
    assert born not in refused.value.detail and born[:4] not in refused.value.detail
    with_bsn = {"bsn": made_up_bsn(), "birth_date": born, "local_ref": "r-2", **CONTACT}
    with pytest.raises(InputError):
        parse_row(3, with_bsn, TODAY)


def test_the_23rd_birthday_is_stated_when_it_comes_before_the_archive_term_ends() -> None:
    row = parse_row(2, _without_bsn("2003-12-20"), TODAY)  # 23 on 2026-12-20
    assert row.fields["archive_until"] == "2026-12-20"
    with_bsn = {"bsn": made_up_bsn(), "birth_date": "2010-03-01", "local_ref": "r-2", **CONTACT}
    assert parse_row(3, with_bsn, TODAY).fields["archive_until"] == "2033-03-01"
    assert "birth_date" not in str(parse_row(3, with_bsn, TODAY).fields)


def test_a_young_child_states_nothing_and_a_stated_date_must_agree() -> None:
    assert "archive_until" not in parse_row(2, _without_bsn("2020-05-05"), TODAY).fields
    agreeing = _without_bsn("2003-12-20", archive_until="2026-12-20")
    assert parse_row(2, agreeing, TODAY).fields["archive_until"] == "2026-12-20"
    with pytest.raises(InputError) as refused:
        parse_row(2, _without_bsn("2003-12-20", archive_until="2027-12-20"), TODAY)
    assert refused.value.field == "archive_until"
