"""Who calls is settled before anything of the request's input is read (``vir.api.strict``).

FastAPI reads a route's JSON body before it solves the route's dependencies: a
certificate of an organisation vir does not know, or of a role a route is not for, got
400 ``malformed-json`` for a broken body (and for a key given twice, a detail of how vir
reads JSON) where it is owed its 403 whatever it sent. Every route of the index and of
the key holder is swept here with real certificates (no dependency stands in for the
caller): a new route is in the inventory below, or this fails until it is looked at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.inapp import InApp, in_app, in_keyholder
from support.instore import ORGS, T0
from support.world import MUNICIPALITY, VEILIG_THUIS, person

from vir.api.metrics import flat_routes
from vir.api.strict import before_body
from vir.crypto import pki
from vir.domain.encoding import b64url_encode
from vir.domain.organisations import Organisation, Role
from vir.keyholder.bearer import Person
from vir.services.onboarding import register_certificate, register_organisation

CA = pki.create_ca("sweep test CA", T0 - dt.timedelta(days=1))
BSN = "123456782"  # in a path: never repeated in an answer
UUID = "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"
FILL = {"{local_ref}": BSN, "{match_id}": UUID, "{consultation_id}": UUID}

PUBLIC = {"GET /health", "GET /openapi.json", "HEAD /openapi.json", "GET /v1/openapi.json"}
TLS_CLIENT = {"GET /ready", "GET /metrics"}  # any certificate of the client CA
INDEX = {
    "POST /v1/signals",
    "POST /v1/signals/batch",
    "GET /v1/signals",
    "GET /v1/signals/{local_ref}",
    "PATCH /v1/signals/{local_ref}",
    "DELETE /v1/signals/{local_ref}",
    "GET /v1/matches",
    "GET /v1/matches/{match_id}",
    "POST /v1/matches/{match_id}/handover",
    "POST /v1/matches/{match_id}/handover/accept",
    "POST /v1/matches/{match_id}/handover/decline",
    "POST /v1/matches/{match_id}/follow-up",
    "GET /v1/follow-up/overdue",
    "POST /v1/follow-up/overdue/{match_id}/reminder",
    "GET /v1/notifications",
    "PUT /v1/organisation/coordinator",
    "POST /v1/consultations",
    "POST /v1/consultations/{consultation_id}/feedback",
    "GET /v1/organisations",
    "GET /v1/functions",
    "POST /v1/address-exclusions",
    "DELETE /v1/address-exclusions",
    "GET /v1/address-exclusions",
    "POST /v1/privacy/access",
    "POST /v1/privacy/erasure",
    "POST /v1/privacy/deaths",
    "GET /v1/privacy/uninformed",
    "GET /v1/privacy/reports/events",
    "GET /v1/privacy/reports/monitor",
    "GET /v1/privacy/reports/participation",
    "GET /v1/audit/checkpoint",
    "GET /v1/audit/proof/inclusion",
    "GET /v1/audit/proof/consistency",
}
KEYHOLDER = {"POST /v1/oprf/evaluate", "GET /v1/oprf/epochs", "GET /v1/oprf/usage"}

JSON = {"content-type": "application/json"}
# What a caller may send that the route would refuse for its input, were it read.
INPUTS: dict[str, dict[str, Any]] = {
    "malformed": {"content": b'{"local_ref": ', "headers": JSON},
    "key twice": {"content": b'{"epoch": 1, "epoch": 2}', "headers": JSON},
    "NaN": {"content": b'{"epoch": NaN}', "headers": JSON},
    "long number": {"content": b'{"epoch": ' + b"9" * 5000 + b"}", "headers": JSON},
    "query twice": {"params": [("limit", "1"), ("limit", "2")]},
    "invalid": {"json": {"unknown": "x" * 70}},
}


def _issue(oin: str, name: str) -> pki.Issued:
    return pki.issue_client_certificate(
        CA, oin, name, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=30)
    )


def _pem(issued: pki.Issued) -> str:
    return pki.cert_pem(issued.cert).decode("ascii")


STRANGER = _pem(_issue("00000001999999990000", "Onbekende stichting"))  # not registered


def _routes(app: InApp) -> set[str]:
    return {
        f"{method} {route.path}"
        for route in flat_routes(app.app.router.routes)
        for method in getattr(route, "methods", None) or ()
    }


def _path(route: str) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    for name, value in FILL.items():
        path = path.replace(name, value)
    return method, path


def _send(app: InApp, route: str, certificate: str, sent: dict[str, Any]) -> httpx.Response:
    method, path = _path(route)
    app.anonymous()
    return app.request(method, path, certificate=certificate, **sent)


def _problem(reply: httpx.Response, status: int, slug: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == f"urn:vir:problem:{slug}", reply.text
    assert BSN not in reply.text


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InApp]:
    with in_app(tmp_path_factory.mktemp("sweep-index")) as app:
        yield app


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InApp]:
    with in_keyholder(tmp_path_factory.mktemp("sweep-holder")) as app:
        yield app


def test_every_route_is_in_the_inventory(index: InApp, holder: InApp) -> None:
    assert _routes(index) == PUBLIC | TLS_CLIENT | INDEX
    assert _routes(holder) == PUBLIC | TLS_CLIENT | KEYHOLDER


SWEPT = [("index", route) for route in sorted(INDEX)]
SWEPT += [("holder", route) for route in sorted(KEYHOLDER)]


@pytest.mark.parametrize("sent", INPUTS, ids=list(INPUTS))
@pytest.mark.parametrize(("service", "route"), SWEPT, ids=[f"{s} {r}" for s, r in SWEPT])
def test_an_unknown_organisation_gets_403_whatever_it_sent(
    request: pytest.FixtureRequest, service: str, route: str, sent: str
) -> None:
    app: InApp = request.getfixturevalue(service)
    _problem(_send(app, route, STRANGER, INPUTS[sent]), 403, "unknown-organisation")


# A route, and a registered organisation and role that may not call it.
WRONG_ROLE: list[tuple[str, Organisation, Role]] = [
    ("POST /v1/signals", MUNICIPALITY, Role.PRIVACY_OFFICER),
    ("POST /v1/signals/batch", MUNICIPALITY, Role.ADDRESS_OFFICER),
    ("PATCH /v1/signals/{local_ref}", MUNICIPALITY, Role.FOLLOW_UP_OFFICER),
    ("GET /v1/notifications", MUNICIPALITY, Role.PRIVACY_OFFICER),
    ("PUT /v1/organisation/coordinator", ORGS[0], Role.SYSTEM),
    ("POST /v1/consultations", ORGS[0], Role.SYSTEM),
    ("POST /v1/address-exclusions", VEILIG_THUIS, Role.SYSTEM),
    ("POST /v1/privacy/access", ORGS[0], Role.SYSTEM),
    ("GET /v1/privacy/reports/events", ORGS[0], Role.SYSTEM),
]


@pytest.fixture(scope="module")
def certificates(index: InApp) -> Callable[[Organisation, Role], str]:
    db = index.app.state.services.db
    for org in (MUNICIPALITY, VEILIG_THUIS):  # the store holds ORGS only
        register_organisation(db, org, T0)
    made: dict[tuple[str, Role], str] = {}

    def of(org: Organisation, role: Role) -> str:
        key = (str(org.oin), role)
        if key not in made:
            issued = _issue(str(org.oin), org.name)
            register_certificate(db, issued.cert, T0, role)
            made[key] = _pem(issued)
        return made[key]

    return of


@pytest.mark.parametrize("sent", INPUTS, ids=list(INPUTS))
@pytest.mark.parametrize(
    ("route", "org", "role"), WRONG_ROLE, ids=[route for route, *_ in WRONG_ROLE]
)
def test_the_wrong_role_gets_403_whatever_it_sent(
    index: InApp,
    certificates: Callable[[Organisation, Role], str],
    route: str,
    org: Organisation,
    role: Role,
    sent: str,
) -> None:
    _problem(_send(index, route, certificates(org, role), INPUTS[sent]), 403, "not-permitted")


def test_a_caller_who_may_call_gets_the_input_refusals(
    index: InApp, certificates: Callable[[Organisation, Role], str]
) -> None:
    """The order changed for the caller alone: its own input is still read and refused."""
    school = certificates(ORGS[0], Role.SYSTEM)
    refusals = {
        "malformed": (400, "malformed-json"),
        "key twice": (400, "malformed-json"),
        "NaN": (400, "malformed-json"),
        "long number": (400, "malformed-json"),
        "invalid": (422, "invalid-input"),
    }
    for sent, (status, slug) in refusals.items():
        _problem(_send(index, "POST /v1/signals", school, INPUTS[sent]), status, slug)
    _problem(_send(index, "GET /v1/signals", school, INPUTS["query twice"]), 422, "invalid-input")


def test_the_registry_is_read_once_a_request(
    index: InApp,
    certificates: Callable[[Organisation, Role], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller settled before the body is the one the route's dependencies get: the
    certificate's row is read once, not once more when FastAPI solves them."""
    school = certificates(ORGS[0], Role.SYSTEM)
    authenticator = index.app.state.services.authenticator
    reads: list[str] = []
    for name in ("recall", "authenticate"):
        original = getattr(authenticator, name)

        def counted(claim: Any, _original: Any = original, _name: str = name) -> Any:
            found = _original(claim)
            if found is not None:
                reads.append(_name)
            return found

        monkeypatch.setattr(authenticator, name, counted)
    reply = _send(index, "GET /v1/signals", school, {})
    assert reply.status_code == 200, reply.text
    assert len(reads) == 1, reads


def test_a_token_is_verified_once_a_request(holder: InApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """At the key holder's evaluate a person's token is verified before the body is read,
    and the person found then is the one the route gets: one verification a request.
    (The verification itself is tested against a real provider in
    test_keyholder_bearer_edges.py; here only how often the route asks for it.)"""
    asked: list[str] = []

    def verify(token: str) -> Person:
        asked.append(token)
        return Person(ORGS[0], "p" * 64)

    monkeypatch.setattr(holder.app.state.services.bearer, "verify", verify)
    holder.anonymous()
    blinded = b64url_encode(person("Sam"))
    headers = {"authorization": "Bearer a-token"}
    reply = holder.request(
        "POST", "/v1/oprf/evaluate", json={"blinded_elements": [blinded]}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    assert asked == ["a-token"]
    # and a malformed body from a person vir knows is read, and refused for what it is
    malformed = {**INPUTS["malformed"], "headers": {**JSON, **headers}}
    broken = holder.request("POST", "/v1/oprf/evaluate", **malformed)
    _problem(broken, 400, "malformed-json")


def test_a_dependency_settled_before_the_body_must_be_once_a_request() -> None:
    """Settled first and solved again by FastAPI: without ``once_a_request`` the
    registry would be read twice, and a token verified twice."""

    async def twice(_request: Any) -> None:
        return None

    with pytest.raises(TypeError):
        before_body(twice, lambda _request: True)
