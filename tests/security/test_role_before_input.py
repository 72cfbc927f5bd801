"""A certificate of the wrong role is refused before its input is looked at.

Each route that only some roles may call decides who calls before it validates the body
or the query (``vir.api.roles``): the wrong role gets 403 ``not-permitted`` whatever it
sent, so an invalid body does not earn it a 422 that describes how the route checks its
input. Each case is also sent by a caller who may call the route, which gets the 422:
the input really is invalid, so the 403 is the role's and not an accident.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.inapp import InApp, in_app
from support.instore import ORGS
from support.matchregie import act_as
from support.world import MUNICIPALITY, OPERATOR, VEILIG_THUIS

from vir.domain.organisations import Organisation, Role

SCHOOL, YOUTH_CARE = ORGS[0], ORGS[2]
Who = tuple[Organisation, Role]

REPORTER: Who = (SCHOOL, Role.SYSTEM)
COORDINATOR: Who = (YOUTH_CARE, Role.COORDINATOR)
VT: Who = (VEILIG_THUIS, Role.SYSTEM)
PRIVACY: Who = (MUNICIPALITY, Role.PRIVACY_OFFICER)
NATIONAL: Who = (OPERATOR, Role.NATIONAL_PRIVACY_OFFICER)
ADDRESS: Who = (MUNICIPALITY, Role.ADDRESS_OFFICER)
FOLLOW_UP: Who = (MUNICIPALITY, Role.FOLLOW_UP_OFFICER)
OFFICERS = [PRIVACY, NATIONAL, ADDRESS, FOLLOW_UP]
MATCH = "0" * 32
NONSENSE = {"unknown": "x" * 70}

# (method, path, request arguments, a caller who may, callers who may not)
CASES: list[tuple[str, str, dict[str, Any], Who, list[Who]]] = [
    ("POST", "/v1/signals", {"json": NONSENSE}, REPORTER, OFFICERS),
    ("POST", "/v1/signals/batch", {"json": {"signals": []}}, REPORTER, OFFICERS),
    ("PATCH", "/v1/signals/ref-1", {"json": {"remove_on": 7}}, REPORTER, OFFICERS),
    ("DELETE", "/v1/signals/ref-1", {"params": {"reason": "?"}}, REPORTER, OFFICERS),
    ("GET", "/v1/notifications", {"params": {"after": "-1"}}, REPORTER, OFFICERS),
    ("GET", "/v1/organisations", {"params": {"limit": 0}}, REPORTER, OFFICERS),
    ("PUT", "/v1/organisation/coordinator", {"json": NONSENSE}, COORDINATOR, [REPORTER, *OFFICERS]),
    ("POST", f"/v1/matches/{MATCH}/handover", {"json": NONSENSE}, REPORTER, OFFICERS),
    ("POST", f"/v1/matches/{MATCH}/follow-up", {"json": NONSENSE}, REPORTER, OFFICERS),
    ("POST", "/v1/consultations", {"json": NONSENSE}, VT, [REPORTER, *OFFICERS]),
    ("POST", f"/v1/consultations/{MATCH}/feedback", {"json": NONSENSE}, VT, [REPORTER, PRIVACY]),
    ("POST", "/v1/address-exclusions", {"json": NONSENSE}, ADDRESS, [REPORTER, PRIVACY, VT]),
    ("DELETE", "/v1/address-exclusions", {"json": NONSENSE}, ADDRESS, [REPORTER, PRIVACY, VT]),
    ("POST", "/v1/privacy/access", {"json": NONSENSE}, PRIVACY, [REPORTER, ADDRESS, FOLLOW_UP]),
    ("POST", "/v1/privacy/erasure", {"json": NONSENSE}, PRIVACY, [REPORTER, ADDRESS]),
    ("POST", "/v1/privacy/deaths", {"json": NONSENSE}, NATIONAL, [REPORTER, FOLLOW_UP]),
    (
        "GET",
        "/v1/privacy/reports/events",
        {"params": {"from": "gisteren"}},
        PRIVACY,
        [REPORTER, VT, ADDRESS, FOLLOW_UP],
    ),
    (
        "GET",
        "/v1/privacy/reports/monitor",
        {"params": {"granularity": "week"}},
        PRIVACY,
        [REPORTER, FOLLOW_UP],
    ),
    (
        "GET",
        "/v1/privacy/reports/participation",
        {"params": {"days": 0}},
        FOLLOW_UP,
        [REPORTER, ADDRESS, COORDINATOR],
    ),
    ("GET", "/v1/follow-up/overdue", {"params": {"days": 0}}, FOLLOW_UP, [REPORTER, PRIVACY]),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InApp]:
    tmp: Path = tmp_path_factory.mktemp("roles")
    with in_app(tmp) as app:
        yield app


def _problem(app: InApp, who: Who, method: str, path: str, sent: dict[str, Any]) -> Any:
    act_as(app, *who)
    reply = app.request(method, path, **sent)
    assert reply.headers["content-type"] == "application/problem+json", reply.text
    return reply.status_code, reply.json()["type"]


@pytest.mark.parametrize(
    ("method", "path", "sent", "may", "may_not"),
    CASES,
    ids=[f"{method} {path}" for method, path, *_ in CASES],
)
def test_the_wrong_role_gets_403_whatever_it_sent(
    app: InApp, method: str, path: str, sent: dict[str, Any], may: Who, may_not: list[Who]
) -> None:
    assert _problem(app, may, method, path, sent) == (422, "urn:vir:problem:invalid-input")
    for who in may_not:
        assert _problem(app, who, method, path, sent) == (403, "urn:vir:problem:not-permitted"), who
