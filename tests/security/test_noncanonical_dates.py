"""Dates and whole numbers in one spelling only.

Before: ``date.fromisoformat`` (Python 3.11+) read ISO week dates and the basic format,
so ``GET /v1/privacy/reports/events?from=2026-W01-1`` reported from 2025-12-29, the
portal registered ``remove_on=2027-W01-1``, ``vir-client import`` passed a
``remove_on`` the index then refused and took ``birth_date`` ``20120304`` and
``2012-W10-7``; and ``/v1/audit/proof/inclusion?seq=1.0`` was served as ``seq=1``.
Now every date vir reads goes through ``vir.domain.dates.parse_iso_date`` (exactly
``YYYY-MM-DD`` in ASCII digits) and an integer query parameter is digits alone; each
refusal names the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.inapp import InApp, in_app, signal_body
from support.world import MUNICIPALITY

from vir.api.identity import require_caller
from vir.cli import _report_date
from vir.client import bulk, canonical
from vir.client.reports import _day
from vir.domain import dates
from vir.domain.caller import Caller
from vir.domain.errors import InputError
from vir.domain.organisations import Role
from vir.keyholder import repair
from vir.portal import forms, officer

pytestmark = pytest.mark.sqlite_only("parsing at the entry points: one database is enough")

BAD_DATES = [
    "2026-W01-1",  # ISO week date: 2025-12-29
    "2026-W01",
    "20260101",  # basic format
    "2026-1-01",
    "2026-01-1",
    "\uff12\uff10\uff12\uff16-01-01",  # full-width digits
    "٢٠٢٦-01-01",  # Arabic-Indic digits
    "2026-01-01T00:00",
    "+2026-01-01",
    "2026-001",  # ordinal date
]
GOOD = "2026-01-01"
# (A form field's and a CSV cell's surrounding spaces are trimmed first, by design: the
# same date, one spelling.)

# Each entry point that reads a date from a person or a file: (name, field, read).
EntryPoint = tuple[str, str, Callable[[str], object]]
ENTRY_POINTS: list[EntryPoint] = [
    (
        "portal registration remove_on",
        "remove_on",
        lambda v: forms.date({"remove_on": v}, "remove_on"),
    ),
    ("portal /rapportages from", "from", lambda v: officer._date({"from": v}, "from")),
    (
        "vir-client import remove_on",
        "remove_on",
        lambda v: bulk._date({"remove_on": v}, "remove_on"),
    ),
    ("vir-client birth_date", "birth_date", lambda v: canonical.nl_person("Jansen", v, "m")),
    ("vir-client report --from", "from", lambda v: _day(v, "from")),
    ("vir report --from", "from", lambda v: _report_date(v, "from")),
]


@pytest.mark.parametrize("value", BAD_DATES)
@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_a_noncanonical_date_is_refused_naming_the_field(entry: EntryPoint, value: str) -> None:
    _name, field, read = entry
    with pytest.raises(InputError) as refused:
        read(value)
    assert refused.value.field == field


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_the_documented_form_is_still_read(entry: EntryPoint) -> None:
    _name, _field, read = entry
    read(GOOD)  # no InputError


def test_the_one_parser() -> None:
    assert dates.parse_iso_date(GOOD) == dt.date(2026, 1, 1)
    for value in [*BAD_DATES, "2026-02-30", ""]:
        with pytest.raises(ValueError):
            dates.parse_iso_date(value)
    # Timestamps another key holder sends in a repair: RFC 3339 with a zone only.
    assert repair._parse_time("2026-01-01T00:00:00+00:00").tzinfo is not None
    for value in ["2026-01-01T00:00", "2026-W01-1T00:00:00+00:00", "20260101T000000Z"]:
        with pytest.raises(ValueError):
            repair._parse_time(value)


# --- Over the API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InApp]:
    with in_app(Path(tmp_path_factory.mktemp("dates"))) as running:
        yield running


def _field_refused(reply: Any, field: str) -> None:
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in reply.json()["errors"]], reply.text


@pytest.mark.parametrize("value", BAD_DATES)
def test_the_privacy_officers_report_period(app: InApp, value: str) -> None:
    officer_caller = Caller(MUNICIPALITY, "f" * 64, Role.PRIVACY_OFFICER)
    app.app.dependency_overrides[require_caller] = lambda: officer_caller
    path = "/v1/privacy/reports/events"
    _field_refused(app.request("GET", path, params={"from": value, "to": "2027-01-01"}), "from")
    _field_refused(app.request("GET", path, params={"from": GOOD, "to": value}), "to")
    good = app.request("GET", path, params={"from": GOOD, "to": "2027-01-01"})
    assert good.status_code == 200, good.text
    assert good.json()["period"]["from"] == GOOD


@pytest.mark.parametrize("value", BAD_DATES)
def test_a_registrations_removal_date(app: InApp, value: str) -> None:
    app.as_caller(0)
    body = signal_body("dates-1", "kim", app.epoch) | {"remove_on": value}
    _field_refused(app.request("POST", "/v1/signals", json=body), "remove_on")


BAD_INTEGERS = ["1.0", "+1", "1_0", " 1", "1 ", "\uff11", "١", "-0", "0x1", "1e0", ""]


@pytest.mark.parametrize("value", BAD_INTEGERS)
@pytest.mark.parametrize(
    ("path", "name", "others"),
    [
        ("/v1/audit/proof/inclusion", "seq", {}),
        ("/v1/audit/proof/inclusion", "size", {"seq": "1"}),
        ("/v1/audit/proof/consistency", "from", {}),
        ("/v1/organisations", "limit", {}),
        ("/v1/signals", "limit", {}),
    ],
)
def test_an_integer_query_parameter_is_digits_only(
    app: InApp, path: str, name: str, others: dict[str, str], value: str
) -> None:
    app.as_caller(0)
    _field_refused(app.request("GET", path, params={**others, name: value}), name)
    assert app.request("GET", path, params={**others, name: "1"}).status_code != 422
