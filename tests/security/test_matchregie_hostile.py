"""Hostile callers of matchregie (issue 17): a match read or acted on by a
non-participant or another region's organisation, a handover offered by a participant
that does not coordinate, answered by the wrong organisation, unknown fields, free text,
oversized lists and malformed ids. Nobody learns whether a match exists, every refusal
is audited, and nothing is recorded or sent.

The whole app in-process on a fresh store (``support.matchregie``): SQLite, or
PostgreSQL with ``VIR_TEST_DATABASE=postgresql``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.clirun import run_vir
from support.inapp import InApp
from support.instore import ORGS, UTRECHT_ORGS
from support.matchregie import act_as, regie_app, register
from support.world import MUNICIPALITY

from vir.domain.organisations import Organisation, Role
from vir.store.tables import (
    AuditEntryRow,
    CoordinationOfferRow,
    MatchFollowUpRow,
    MatchRow,
    NotificationRow,
)

SCHOOL, GP, YOUTH_CARE, POLICE = ORGS
SCHOOL_U, _GP_U = UTRECHT_ORGS
ACTIONS = ("", "/handover", "/handover/accept", "/handover/decline", "/follow-up")
BODIES: dict[str, Any] = {
    "/handover": {"to": str(GP.oin)},
    "/follow-up": {"event": "contact_made", "contact_with": [str(GP.oin)]},
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with regie_app(tmp_path) as running:
        yield running


@pytest.fixture
def match_id(app: InApp) -> str:
    """Bo: the school and youth care (which coordinates); the GP joins."""
    register(app, SCHOOL, "s-bo", "bo")
    (match,) = register(app, YOUTH_CARE, "j-bo", "bo")["matches"]
    register(app, GP, "g-bo", "bo")
    found: str = match["id"]
    return found


def call(app: InApp, org: Organisation, match_id: str, action: str, body: Any = None) -> Any:
    act_as(app, org)
    path = f"/v1/matches/{match_id}{action}"
    if action == "":
        return app.request("GET", path)
    return app.request("POST", path, json=body if body is not None else BODIES.get(action))


def problem(reply: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    found: dict[str, Any] = reply.json()
    assert found["type"] == f"urn:vir:problem:{kind}"
    return found


def audit(app: InApp, action: str) -> list[dict[str, Any]]:
    db = app.app.state.services.db
    db.integrate()
    with db.read() as session:
        bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        return [e for e in (json.loads(bytes(b)) for b in bodies) if e["action"] == action]


def recorded(app: InApp) -> tuple[int, int, int, str | None]:
    """Offers, follow-ups, handover notifications, and the coordinator: what a refused
    request must leave as it was."""
    with app.app.state.services.db.read() as session:
        offers = session.scalar(select(func.count()).select_from(CoordinationOfferRow))
        follow_ups = session.scalar(select(func.count()).select_from(MatchFollowUpRow))
        notices = session.scalar(
            select(func.count())
            .select_from(NotificationRow)
            .where(NotificationRow.type.in_(["match.handover_offered", "match.coordinator"]))
        )
        lead = session.scalar(select(MatchRow.coordinator).where(MatchRow.ended_at.is_(None)))
    return int(offers or 0), int(follow_ups or 0), int(notices or 0), lead


@pytest.mark.parametrize("outsider", [POLICE, SCHOOL_U], ids=["non-participant", "other-region"])
def test_a_match_of_others_looks_like_none_at_all(
    app: InApp, match_id: str, outsider: Organisation
) -> None:
    before = recorded(app)
    for action in ACTIONS:
        theirs = problem(call(app, outsider, match_id, action), 404, "not-found")
        nothing = problem(call(app, outsider, str(uuid.uuid4()), action), 404, "not-found")
        theirs.pop("instance", None)
        nothing.pop("instance", None)
        assert theirs == nothing, "the answer says nothing about whether it exists"
    assert recorded(app) == before
    refused = audit(app, "request.refused")
    assert {(e["objects"]["endpoint"], e["reason"]) for e in refused} == {
        ("GET /v1/matches/{match_id}", "not_found"),
        ("POST /v1/matches/{match_id}/handover", "not_found"),
        ("POST /v1/matches/{match_id}/handover/accept", "not_found"),
        ("POST /v1/matches/{match_id}/handover/decline", "not_found"),
        ("POST /v1/matches/{match_id}/follow-up", "not_found"),
    }
    # An ended match is gone for its former participants too.
    act_as(app, GP)
    assert app.request("DELETE", "/v1/signals/g-bo", params={"reason": "unjustified"}).is_success
    problem(call(app, GP, match_id, ""), 404, "not-found")


def test_a_municipality_s_officer_is_not_a_participant(app: InApp, match_id: str) -> None:
    act_as(app, MUNICIPALITY, Role.PRIVACY_OFFICER)
    problem(app.request("GET", f"/v1/matches/{match_id}"), 403, "not-permitted")


def test_only_the_coordinator_offers_and_only_the_target_answers(app: InApp, match_id: str) -> None:
    before = recorded(app)
    problem(call(app, SCHOOL, match_id, "/handover", {"to": str(GP.oin)}), 403, "not-permitted")
    problem(call(app, GP, match_id, "/handover", {"to": str(GP.oin)}), 403, "not-permitted")
    # No offer open: nothing to answer.
    problem(call(app, GP, match_id, "/handover/accept"), 404, "not-found")
    assert recorded(app) == before
    # Offered to the GP: the school (and youth care itself) may not answer for it.
    assert call(app, YOUTH_CARE, match_id, "/handover", {"to": str(GP.oin)}).status_code == 200
    for wrong in (SCHOOL, YOUTH_CARE):
        for answer in ("/handover/accept", "/handover/decline"):
            problem(call(app, wrong, match_id, answer), 403, "not-permitted")
    # Not to itself, nor to an organisation outside the match (which is not told).
    for target, status in ((YOUTH_CARE, 422), (POLICE, 422), (SCHOOL_U, 422)):
        found = problem(
            call(app, YOUTH_CARE, match_id, "/handover", {"to": str(target.oin)}),
            status,
            "invalid-input",
        )
        assert [e["field"] for e in found["errors"]] == ["to"]
    offers, _follow_ups, notices, lead = recorded(app)
    assert (offers, notices, lead) == (1, 1, before[3])
    assert len(audit(app, "match.handover_offered")) == 1
    assert audit(app, "match.handover_accepted") == audit(app, "match.handover_declined") == []


def test_only_the_coordinator_records_plan_and_care(app: InApp, match_id: str) -> None:
    for org in (SCHOOL, GP):
        for event in ("plan_agreed", "care_started"):
            reply = call(app, org, match_id, "/follow-up", {"event": event})
            problem(reply, 403, "not-permitted")
    # Contact only with participating organisations, never with itself.
    for others in ([str(POLICE.oin)], [str(SCHOOL.oin)], [str(SCHOOL_U.oin)]):
        reply = call(
            app, SCHOOL, match_id, "/follow-up", {"event": "contact_made", "contact_with": others}
        )
        found = problem(reply, 422, "invalid-input")
        assert [e["field"] for e in found["errors"]] == ["contact_with"]
    assert recorded(app)[1] == 0
    assert audit(app, "match.follow_up_recorded") == []


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("/handover", {"to": "00000009000000000101", "note": "vader drinkt"}, "note"),
        ("/handover", {"to": "Huisarts B"}, "to"),
        ("/handover", {"to": "0" * 21}, "to"),
        ("/handover", {}, "to"),
        ("/handover", {"to": ["00000009000000000101"]}, "to"),
        (
            "/follow-up",
            {"event": "contact_made", "contact_with": [], "remark": "zie dossier"},
            "remark",
        ),
        ("/follow-up", {"event": "gesprek gehad met moeder over alcohol"}, "event"),
        ("/follow-up", {"event": "plan_agreed", "plan": "uithuisplaatsing"}, "plan"),
        (
            "/follow-up",
            {"event": "contact_made", "contact_with": ["Huisarts B, tel 0612345678"]},
            "contact_with",
        ),
        (
            "/follow-up",
            {"event": "contact_made", "contact_with": ["00000009000000000101"] * 51},
            "contact_with",
        ),
        ("/follow-up", {"event": "contact_made"}, "contact_with"),
        (
            "/follow-up",
            {"event": "plan_agreed", "contact_with": ["00000009000000000101"]},
            "contact_with",
        ),
        (
            "/follow-up",
            {"event": "contact_made", "contact_with": ["00000009000000000101"] * 2},
            "contact_with",
        ),
    ],
)
def test_unknown_fields_free_text_and_oversized_lists_are_refused(
    app: InApp, match_id: str, action: str, body: dict[str, Any], field: str
) -> None:
    coordinator = YOUTH_CARE
    before = recorded(app)
    found = problem(call(app, coordinator, match_id, action, body), 422, "invalid-input")
    assert any(field in e["field"] for e in found["errors"]), found
    text = json.dumps(found)
    for value in body.values():
        if (
            isinstance(value, str)
            and not value.isdigit()
            and value not in ("contact_made", "plan_agreed")
        ):
            assert value[:20] not in text, "a refusal never repeats the value"
    assert "0612345678" not in text
    assert recorded(app) == before


def test_oversized_bodies_and_malformed_ids(app: InApp, match_id: str) -> None:
    act_as(app, YOUTH_CARE)
    huge = json.dumps({"to": str(GP.oin), "pad": "x" * 70_000})
    reply = app.request(
        "POST",
        f"/v1/matches/{match_id}/handover",
        content=huge,
        headers={"content-type": "application/json"},
    )
    problem(reply, 413, "body-too-large")
    for wrong in ("x" * 36, "1" * 37, "..%2F..%2Fsignals", "%00" * 12, match_id.upper()):
        for action in ACTIONS:
            reply = call(app, YOUTH_CARE, wrong, action)
            assert reply.status_code in (404, 422), reply.text
            assert reply.headers["content-type"].startswith("application/problem+json")
    assert recorded(app)[:3] == (0, 0, 0)


@pytest.mark.parametrize(
    ("region", "categories", "field"),
    [
        ("Rotterdam", "wizards", "categories"),
        ("Rotterdam", "gp,gp", "categories"),
        ("Rotterdam", "", "categories"),
        ("Rotterdam", "gp,,jgz", "categories"),
        ("Rotterdam", "municipality", "categories"),
        ("Rotterdam", "gp;DROP TABLE matches", "categories"),
        ("Rotterdam", "gp," * 5_000, "categories"),
        ("Atlantis", "gp", "region"),
        ("x" * 5_000, "gp", "region"),
    ],
)
def test_the_operator_s_rules_are_checked(
    app: InApp, region: str, categories: str, field: str
) -> None:
    db = app.app.state.services.db
    ran = run_vir(db, "region", "coordination", "--region", region, "--categories", categories)
    assert ran.code == 2 and ran.err.startswith(f"vir: {field}:"), ran.err
    assert len(ran.err) < 200, "a refusal never repeats the input"
    shown = run_vir(db, "region", "coordination", "--region", "Rotterdam")
    assert "default" in shown.out
    assert audit(app, "admin.coordination_changed") == []


def test_a_change_of_rules_is_audited(app: InApp) -> None:
    db = app.app.state.services.db
    ran = run_vir(db, "region", "coordination", "--region", "Rotterdam", "--categories", "jgz,gp")
    assert ran.code == 0, ran.err
    (entry,) = audit(app, "admin.coordination_changed")
    assert entry["actor"] == "admin"
    assert entry["objects"] == {"region": "Rotterdam", "categories": "jgz,gp"}
