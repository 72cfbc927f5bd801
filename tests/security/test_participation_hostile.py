"""Hostile requests for the participation monitor (``GET /v1/privacy/reports/participation``):
the wrong certificate, another region, malformed and oversized input.

Each caller presents a real client certificate, registered with its role, handed to the
app as the embedded TLS server hands over the one it verified. Rotterdam's school has a
signal; Utrecht's school too. Every refusal is problem+json naming the field (never the
value), and audited as ``request.refused``; nothing of another region reaches a regional
officer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS, T0, UTRECHT_ORGS
from support.world import MUNICIPALITY, OPERATOR, UTRECHT

from vir.audit.chain import AuditEvent
from vir.crypto import pki
from vir.domain.organisations import Organisation, Role
from vir.services.onboarding import register_certificate, register_organisation
from vir.store.tables import AuditEntryRow

PATH = "/v1/privacy/reports/participation"
PERIOD = {"from": "2026-11-01", "to": "2026-12-01"}
SCHOOL_U = UTRECHT_ORGS[0]
ROTTERDAM_OINS = {str(o.oin) for o in ORGS}
CALLERS: dict[str, tuple[Organisation, Role]] = {
    "rotterdam": (MUNICIPALITY, Role.PRIVACY_OFFICER),
    "rotterdam_follow_up": (MUNICIPALITY, Role.FOLLOW_UP_OFFICER),
    "rotterdam_address": (MUNICIPALITY, Role.ADDRESS_OFFICER),
    "utrecht": (UTRECHT, Role.PRIVACY_OFFICER),
    "utrecht_follow_up": (UTRECHT, Role.FOLLOW_UP_OFFICER),
    "national": (OPERATOR, Role.NATIONAL_PRIVACY_OFFICER),
    "school": (ORGS[0], Role.SYSTEM),
    "school_coordinator": (ORGS[0], Role.COORDINATOR),
}


class Api:
    def __init__(self, app: InApp, pems: dict[str, str]) -> None:
        self.app = app
        self.pems = pems

    def get(self, who: str, **params: Any) -> httpx.Response:
        return self.app.request("GET", PATH, params=params, certificate=self.pems[who])

    def refusals(self, since: int) -> list[AuditEvent]:
        db = self.app.app.state.services.db
        db.integrate()
        with db.read() as session:
            bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
            events = [AuditEvent.decode(bytes(b)) for b in bodies][since:]
        return [e for e in events if e.action == "request.refused"]

    def entries(self) -> int:
        db = self.app.app.state.services.db
        db.integrate()
        with db.read() as session:
            return len(session.scalars(select(AuditEntryRow.seq)).all())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with in_app(tmp_path) as app:
        db = app.app.state.services.db
        for org in (MUNICIPALITY, UTRECHT, *UTRECHT_ORGS, OPERATOR):
            register_organisation(db, org, T0)
        for index, body in ((0, signal_body("kim-a", "kim", app.epoch)),):
            app.as_caller(index)
            assert app.request("POST", "/v1/signals", json=body).status_code == 201
        app.anonymous()
        ca = pki.create_ca("test CA", T0)
        pems = {}
        for who, (org, role) in CALLERS.items():
            issued = pki.issue_client_certificate(
                ca, str(org.oin), org.name, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=30)
            )
            register_certificate(db, issued.cert, T0, role)
            pems[who] = pki.cert_pem(issued.cert).decode("ascii")
        yield Api(app, pems)


@pytest.mark.parametrize("who", ["school", "school_coordinator", "rotterdam_address"])
def test_other_certificates_are_refused_and_audited(api: Api, who: str) -> None:
    before = api.entries()
    reply = api.get(who, **PERIOD)
    assert reply.status_code == 403
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == "urn:vir:problem:not-permitted"
    assert "kim" not in reply.text
    (refused,) = api.refusals(before)
    assert (refused.reason, refused.objects["endpoint"]) == ("not_permitted", f"GET {PATH}")


@pytest.mark.parametrize(
    ("who", "region"),
    [("rotterdam", "Utrecht"), ("utrecht", "Rotterdam"), ("rotterdam_follow_up", "Utrecht")],
)
def test_another_region_is_refused_and_audited(api: Api, who: str, region: str) -> None:
    before = api.entries()
    reply = api.get(who, **PERIOD, region=region)
    assert reply.status_code == 403
    assert reply.json()["type"] == "urn:vir:problem:outside-region"
    assert not any(oin in reply.text for oin in ROTTERDAM_OINS)
    (refused,) = api.refusals(before)
    assert refused.reason == "outside_region"


@pytest.mark.parametrize("who", ["utrecht", "utrecht_follow_up"])
def test_a_regional_officer_sees_no_organisation_of_another_region(api: Api, who: str) -> None:
    for fmt in ("json", "csv"):
        reply = api.get(who, **PERIOD, format=fmt)
        assert reply.status_code == 200, reply.text
        assert not any(oin in reply.text for oin in ROTTERDAM_OINS)
        assert not any(o.name in reply.text for o in ORGS)
    report = api.get(who, **PERIOD).json()
    assert [o["oin"] for o in report["organisations"]] == [str(o.oin) for o in UTRECHT_ORGS]
    # The comparison names regions only, and shows Rotterdam's one signal as a small count.
    assert report["regions"]["signals"]["rows"][1][0] == "Rotterdam"
    assert "1" not in report["regions"]["signals"]["rows"][1][1:]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01", "to": "2026-12-01"}, "from"),
        ({"from": "123456782", "to": "2026-12-01"}, "from"),  # BSN-shaped: never echoed
        ({"from": "2026-11-01", "to": "next week"}, "to"),
        ({"from": "2026-12-01", "to": "2026-11-01"}, "from"),  # backwards
        ({"from": "2026-11-01", "to": "2026-11-01"}, "from"),  # empty
        ({"from": "2020-01-01", "to": "2026-12-01"}, "to"),  # more than three years
        ({**PERIOD, "days": "0"}, "days"),
        ({**PERIOD, "days": "366"}, "days"),
        ({**PERIOD, "days": "-14"}, "days"),
        ({**PERIOD, "days": "14.5"}, "days"),
        ({**PERIOD, "days": "9" * 40}, "days"),
        ({**PERIOD, "region": "R" * 101}, "region"),
        ({**PERIOD, "format": "xlsx"}, "format"),
        ({**PERIOD, "dialect": "excel"}, "dialect"),
        ({"to": "2026-12-01"}, "from"),
    ],
)
def test_malformed_and_oversized_input_is_refused_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    before = api.entries()
    reply = api.get("national", **params)
    assert reply.status_code == 422, reply.text
    problem = reply.json()
    assert reply.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == [field]
    for value in params.values():
        if value not in ("2026-11-01", "2026-12-01"):
            assert value not in reply.text
    # Refused by the route's own check (input_error) or by FastAPI's (invalid_input).
    (refused,) = api.refusals(before)
    assert refused.reason in ("input_error", "invalid_input")
    # Nothing was made: no report.generated.
    db = api.app.app.state.services.db
    with db.read() as session:
        bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        made = [AuditEvent.decode(bytes(b)) for b in bodies][before:]
    assert "report.generated" not in {e.action for e in made}


def test_without_a_certificate_nothing_is_answered(api: Api) -> None:
    reply = api.app.request("GET", PATH, params=PERIOD)
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"
