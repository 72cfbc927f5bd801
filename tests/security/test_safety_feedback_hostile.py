"""Hostile callers of Veilig Thuis's household consultation, its feedback and the list of
connected organisations: wrong organisations, another Veilig Thuis's consultation,
codes outside the list, unknown fields, free text, floods, oversized input and ids that
do not exist. Nobody learns whether a consultation exists, and no refusal tells a
reporter anything.

The whole app in-process (``support.inapp``) on a fresh store: SQLite, or PostgreSQL
with ``VIR_TEST_DATABASE=postgresql``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS, T0
from support.world import MUNICIPALITY, VEILIG_THUIS, person

from vir.api.identity import require_caller
from vir.domain.encoding import b64url_encode
from vir.domain.errors import Conflict, NotFound
from vir.domain.feedback import FEEDBACK_DAYS, FeedbackCode
from vir.domain.organisations import Category, Oin, Organisation, Role
from vir.services.consultations import ConsultationService
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.store.tables import AuditEntryRow, NotificationRow

SCHOOL, GP = 0, 1
OTHER_VEILIG_THUIS = Organisation(
    Oin("00000009000000000197"), "Veilig Thuis Elders", Category.VEILIG_THUIS, "Rotterdam", "c"
)
FEEDBACK = "/v1/consultations/{}/feedback"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path, consult_burst=5, consult_rate_per_second=0.001) as running:
        db = running.app.state.services.db
        for org in (VEILIG_THUIS, OTHER_VEILIG_THUIS, MUNICIPALITY):
            register_organisation(db, org, T0)
        for org, ref, child in ((SCHOOL, "s-1", "bo"), (GP, "g-1", "cas")):
            body = signal_body(ref, child, running.epoch) | {
                "parents": [b64url_encode(person("ida"))]
            }
            act_as(running, ORGS[org])
            assert running.request("POST", "/v1/signals", json=body).status_code == 201
        yield running


def caller_of(org: Organisation, role: Role = Role.SYSTEM) -> Caller:
    return Caller(org, f"{int(str(org.oin)):064x}", role)


def act_as(app: InApp, org: Organisation, role: Role = Role.SYSTEM) -> Caller:
    caller = caller_of(org, role)
    app.app.dependency_overrides[require_caller] = lambda: caller
    return caller


def household_consultation(app: InApp, org: Organisation = VEILIG_THUIS) -> str:
    act_as(app, org)
    body = {"epoch": app.epoch, "parent": b64url_encode(person("ida")), "purpose": "triage"}
    reply = app.request("POST", "/v1/consultations", json=body)
    assert reply.status_code == 200, reply.text
    consultation_id: str = reply.json()["consultation_id"]
    return consultation_id


def give(app: InApp, consultation_id: str, body: Any, org: Organisation = VEILIG_THUIS) -> Any:
    act_as(app, org)
    return app.request("POST", FEEDBACK.format(consultation_id), json=body)


def problem(reply: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    found: dict[str, Any] = reply.json()
    assert found["type"] == f"urn:vir:problem:{kind}"
    return found


def feedback_notifications(app: InApp) -> list[tuple[str, str]]:
    with app.app.state.services.db.read() as session:
        rows = session.execute(
            select(NotificationRow.oin, NotificationRow.payload).where(
                NotificationRow.type == "match.safety_feedback"
            )
        )
        return [(oin, json.loads(p)["safety_feedback"]["code"]) for oin, p in rows]


def audit(app: InApp, action: str) -> list[dict[str, Any]]:
    db = app.app.state.services.db
    db.integrate()
    with db.read() as session:
        bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        return [e for e in (json.loads(bytes(b)) for b in bodies) if e["action"] == action]


@pytest.mark.parametrize(
    ("org", "role"),
    [
        (ORGS[SCHOOL], Role.SYSTEM),
        (ORGS[GP], Role.COORDINATOR),
        (MUNICIPALITY, Role.PRIVACY_OFFICER),
    ],
)
def test_only_veilig_thuis_consults_a_household_and_gives_feedback(
    app: InApp, org: Organisation, role: Role
) -> None:
    consultation_id = household_consultation(app)
    act_as(app, org, role)
    body = {"epoch": app.epoch, "parent": b64url_encode(person("ida")), "purpose": "triage"}
    problem(app.request("POST", "/v1/consultations", json=body), 403, "not-permitted")
    reply = app.request("POST", FEEDBACK.format(consultation_id), json={"code": "taken_up"})
    problem(reply, 403, "not-permitted")
    assert feedback_notifications(app) == []
    refused = audit(app, "request.refused")
    # (The claimed organisation is the presented certificate's; none here, in-process.)
    assert {(e["objects"]["endpoint"], e["reason"]) for e in refused} == {
        ("POST /v1/consultations", "not_permitted"),
        ("POST /v1/consultations/{consultation_id}/feedback", "not_permitted"),
    }


def test_another_veilig_thuis_s_consultation_looks_like_none_at_all(app: InApp) -> None:
    mine = household_consultation(app, OTHER_VEILIG_THUIS)
    theirs = problem(give(app, mine, {"code": "taken_up"}), 404, "not-found")
    nothing = problem(give(app, str(uuid.uuid4()), {"code": "taken_up"}), 404, "not-found")
    assert theirs == nothing, "the answer says nothing about whether it exists"
    assert feedback_notifications(app) == []
    # Its own organisation may.
    assert give(app, mine, {"code": "taken_up"}, OTHER_VEILIG_THUIS).status_code == 204
    assert sorted(feedback_notifications(app)) == sorted(
        [(str(ORGS[SCHOOL].oin), "taken_up"), (str(ORGS[GP].oin), "taken_up")]
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "opened"}, "code"),
        ({"code": "TAKEN_UP"}, "code"),
        ({"code": "Kind wordt thuis mishandeld door stiefvader"}, "code"),
        ({"code": "taken_up", "note": "vader drinkt"}, "note"),
        ({"code": "taken_up", "text": "zie dossier"}, "text"),
        ({"code": 1}, "code"),
        ({"code": ["taken_up"]}, "code"),
        ({}, "code"),
        ({"code": "x" * 20_000}, "code"),
    ],
)
def test_codes_outside_the_list_unknown_fields_and_free_text_are_refused(
    app: InApp, body: dict[str, Any], field: str
) -> None:
    consultation_id = household_consultation(app)
    found = problem(give(app, consultation_id, body), 422, "invalid-input")
    assert field in [e["field"] for e in found["errors"]]
    for value in body.values():
        if isinstance(value, str) and value != "taken_up":
            assert value[:30] not in json.dumps(found), "a refusal never repeats the value"
    assert feedback_notifications(app) == []


def test_a_flood_of_feedback_tells_each_reporter_once_per_code(app: InApp) -> None:
    consultation_id = household_consultation(app)
    statuses = [give(app, consultation_id, {"code": "taken_up"}).status_code for _ in range(40)]
    assert statuses == [204] + [409] * 39
    assert len(feedback_notifications(app)) == 2
    assert give(app, consultation_id, {"code": "closed"}).status_code == 204
    for code in FeedbackCode:  # nothing after closed
        problem(give(app, consultation_id, {"code": code.value}), 409, "conflict")
    assert sorted(code for _, code in feedback_notifications(app)) == [
        "closed",
        "closed",
        "taken_up",
        "taken_up",
    ]
    entries = audit(app, "consultation.feedback")
    assert [(e["objects"]["code"], e["objects"]["notified"]) for e in entries] == [
        ("taken_up", 2),
        ("closed", 2),
    ]
    assert all(set(e["objects"]) == {"consultation", "code", "notified"} for e in entries)


def test_oversized_input_and_malformed_ids(app: InApp) -> None:
    consultation_id = household_consultation(app)
    act_as(app, VEILIG_THUIS)
    huge = json.dumps({"code": "taken_up", "pad": "x" * 70_000})
    reply = app.request(
        "POST",
        FEEDBACK.format(consultation_id),
        content=huge,
        headers={"content-type": "application/json"},
    )
    problem(reply, 413, "body-too-large")
    for wrong in ("x" * 36, "1" * 37, "..%2F..%2Fsignals", "%00" * 12, consultation_id.upper()):
        reply = app.request("POST", FEEDBACK.format(wrong), json={"code": "taken_up"})
        assert reply.status_code in (404, 422), reply.text
        assert reply.headers["content-type"].startswith("application/problem+json")
    assert feedback_notifications(app) == []


def test_the_household_form_refuses_what_the_person_form_refuses(app: InApp) -> None:
    act_as(app, VEILIG_THUIS)
    ida = b64url_encode(person("ida"))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"epoch": app.epoch, "parent": ida, "person": ida, "purpose": "triage"}, "parent"),
        ({"epoch": app.epoch, "parent": ida, "person": None, "purpose": "triage"}, "parent"),
        ({"epoch": app.epoch, "person": None, "purpose": "triage"}, "person"),
        ({"epoch": app.epoch, "purpose": "triage"}, "person"),
        (
            {"epoch": app.epoch, "parent": b64url_encode(b"\xff" * 32), "purpose": "triage"},
            "parent",
        ),
        ({"epoch": app.epoch, "parent": "not base64!", "purpose": "triage"}, "parent"),
        ({"epoch": app.epoch, "parent": ida, "purpose": "curiosity"}, "purpose"),
        ({"epoch": app.epoch, "parent": ida, "purpose": "triage", "reason": "x"}, "reason"),
        ({"epoch": 99, "parent": ida, "purpose": "triage"}, "epoch"),
    ]
    for body, field in cases:
        reply = app.request("POST", "/v1/consultations", json=body)
        assert reply.status_code == 422, (body, reply.text)
        assert field in [e["field"] for e in reply.json()["errors"]], (body, reply.text)
        assert ida not in reply.text
    assert audit(app, "consultation.made") == []


def test_both_forms_draw_on_one_rate_limit(app: InApp) -> None:
    ida = b64url_encode(person("ida"))
    act_as(app, VEILIG_THUIS)
    statuses = []
    for i in range(7):
        field = "parent" if i % 2 else "person"
        body = {"epoch": app.epoch, field: ida, "purpose": "triage"}
        statuses.append(app.request("POST", "/v1/consultations", json=body).status_code)
    assert statuses == [200] * 5 + [429] * 2
    assert len(audit(app, "consultation.made")) == 5


def test_feedback_ends_with_the_term(app: InApp) -> None:
    """The real service on the app's database, with a clock moved on."""
    consultation_id = household_consultation(app)
    db = app.app.state.services.db
    vt = caller_of(VEILIG_THUIS)
    last = T0 + dt.timedelta(days=FEEDBACK_DAYS)
    ConsultationService(db, lambda: last).feedback(vt, consultation_id, FeedbackCode.TAKEN_UP)
    later = ConsultationService(db, lambda: last + dt.timedelta(seconds=1))
    with pytest.raises(NotFound):
        later.feedback(vt, consultation_id, FeedbackCode.CLOSED)
    with pytest.raises(Conflict):
        ConsultationService(db, lambda: last).feedback(vt, consultation_id, FeedbackCode.TAKEN_UP)
    assert len(feedback_notifications(app)) == 2


def test_organisations_is_for_professionals_of_the_own_region(app: InApp) -> None:
    for org, role in ((MUNICIPALITY, Role.PRIVACY_OFFICER), (MUNICIPALITY, Role.ADDRESS_OFFICER)):
        act_as(app, org, role)
        problem(app.request("GET", "/v1/organisations"), 403, "not-permitted")
    act_as(app, ORGS[SCHOOL])
    problem(
        app.request("GET", "/v1/organisations", params={"region": "Utrecht"}),
        403,
        "outside-region",
    )
    for params in (
        {"limit": 0},
        {"limit": 501},
        {"after": "-1"},
        {"after": "1e9"},
        {"after": "9" * 7},
        {"region": "R" * 101},
    ):
        reply = app.request("GET", "/v1/organisations", params=params)
        assert reply.status_code == 422, (params, reply.text)
    refused = audit(app, "request.refused")
    assert ("GET /v1/organisations", "outside_region") in {
        (e["objects"]["endpoint"], e["reason"]) for e in refused
    }
    listed = audit(app, "organisations.listed")
    assert listed == [], "a refused request lists nothing"
