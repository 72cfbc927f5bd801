"""Hostile callers of the follow-up officer's endpoints (issue 17, part 3): every other
role and category, another region's match, matches that are unknown, ended, not overdue
or followed up, malformed periods, cursors and ids, and a flood of reminders. Each
refusal is a problem naming the field or the reason, audited, and sends nothing.

The whole app in-process on a fresh store (``support.matchregie``): SQLite, or
PostgreSQL with ``VIR_TEST_DATABASE=postgresql``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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
from support.instore import ORGS, T0, UTRECHT_ORGS
from support.matchregie import TickingClock, act_as, regie_app, register
from support.world import MUNICIPALITY, OPERATOR, UTRECHT

from vir.client.cli import main as client_main
from vir.domain.organisations import Organisation, Role
from vir.services.onboarding import register_organisation
from vir.store.tables import AuditEntryRow, MatchReminderRow, NotificationRow

SCHOOL, GP, YOUTH_CARE, POLICE = ORGS
SCHOOL_U, GP_U = UTRECHT_ORGS
OVERDUE = "/v1/follow-up/overdue"
# Fixed, so that every test process collects the same test ids.
SOME_ID = "5d0c3a4e-8f1b-4c2d-9e7a-1b2c3d4e5f60"


@dataclasses.dataclass
class Scene:
    app: InApp
    bo: str  # Rotterdam: school and GP, no contact recorded
    cas: str  # Utrecht: school and GP


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    clock = TickingClock()
    with regie_app(tmp_path, clock) as app:
        for org in (UTRECHT, OPERATOR):
            register_organisation(app.app.state.services.db, org, T0)
        register(app, SCHOOL, "s-bo", "bo")
        (bo,) = register(app, GP, "g-bo", "bo")["matches"]
        register(app, SCHOOL_U, "su-cas", "cas")
        (cas,) = register(app, GP_U, "gu-cas", "cas")["matches"]
        clock.offset = dt.timedelta(days=15)
        yield Scene(app, bo["id"], cas["id"])


def officer(app: InApp, municipality: Organisation = MUNICIPALITY) -> None:
    act_as(app, municipality, Role.FOLLOW_UP_OFFICER)


def remind(app: InApp, match_id: str) -> httpx.Response:
    return app.request("POST", f"{OVERDUE}/{match_id}/reminder")


def problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    found: dict[str, Any] = reply.json()
    return found


def sent(app: InApp) -> tuple[int, int]:
    """Reminder notifications and recorded reminders: what a refusal must leave alone."""
    with app.app.state.services.db.read() as session:
        notices = session.scalar(
            select(func.count())
            .select_from(NotificationRow)
            .where(NotificationRow.type == "match.reminder")
        )
        reminders = session.scalar(select(func.count()).select_from(MatchReminderRow))
    return int(notices or 0), int(reminders or 0)


def refusals(app: InApp) -> set[tuple[str, str]]:
    db = app.app.state.services.db
    db.integrate()
    with db.read() as session:
        bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        events = [json.loads(bytes(b)) for b in bodies]
    return {
        (e["objects"]["endpoint"], e["reason"]) for e in events if e["action"] == "request.refused"
    }


@pytest.mark.parametrize(
    ("org", "role"),
    [
        (SCHOOL, Role.SYSTEM),
        (GP, Role.COORDINATOR),
        (MUNICIPALITY, Role.PRIVACY_OFFICER),
        (MUNICIPALITY, Role.ADDRESS_OFFICER),
        (OPERATOR, Role.NATIONAL_PRIVACY_OFFICER),
        # A certificate row edited by hand to give a reporter the officer's role.
        (SCHOOL, Role.FOLLOW_UP_OFFICER),
        (OPERATOR, Role.FOLLOW_UP_OFFICER),
    ],
    ids=lambda v: v.value if isinstance(v, Role) else v.name,
)
def test_only_a_municipalitys_follow_up_officer(
    scene: Scene, org: Organisation, role: Role
) -> None:
    act_as(scene.app, org, role)
    problem(scene.app.request("GET", OVERDUE), 403)
    problem(remind(scene.app, scene.bo), 403)
    assert sent(scene.app) == (0, 0)
    assert refusals(scene.app) == {
        (f"GET {OVERDUE}", "not_permitted"),
        (f"POST {OVERDUE}/{{match_id}}/reminder", "not_permitted"),
    }


def test_another_regions_match_is_refused_and_audited(scene: Scene) -> None:
    officer(scene.app, UTRECHT)
    found = problem(remind(scene.app, scene.bo), 403)
    assert found["type"] == "urn:vir:problem:outside-region"
    assert scene.bo not in json.dumps(found), "the answer does not echo the id"
    officer(scene.app)
    assert [m["id"] for m in scene.app.request("GET", OVERDUE).json()["items"]] == [scene.bo]
    problem(remind(scene.app, scene.cas), 403)
    assert sent(scene.app) == (0, 0)
    assert (f"POST {OVERDUE}/{{match_id}}/reminder", "outside_region") in refusals(scene.app)


def test_unknown_ended_not_overdue_and_followed_up_matches(scene: Scene) -> None:
    app = scene.app
    officer(app)
    problem(remind(app, str(uuid.uuid4())), 404)
    # Followed up: the school recorded contact with the GP; nothing to remind.
    act_as(app, SCHOOL)
    body = {"event": "contact_made", "contact_with": [str(GP.oin)]}
    assert app.request("POST", f"/v1/matches/{scene.bo}/follow-up", json=body).is_success
    officer(app)
    assert "confirmed contact" in problem(remind(app, scene.bo), 409)["detail"]
    assert app.request("GET", OVERDUE).json()["items"] == []
    # Not overdue: a match made just now.
    register(app, YOUTH_CARE, "j-dex", "dex")
    (dex,) = register(app, POLICE, "p-dex", "dex")["matches"]
    officer(app)
    assert "not overdue" in problem(remind(app, dex["id"]), 409)["detail"]
    # Ended: the police withdraws; the match is gone for the officer too.
    act_as(app, POLICE)
    assert app.request("DELETE", "/v1/signals/p-dex", params={"reason": "unjustified"}).is_success
    officer(app)
    problem(remind(app, dex["id"]), 404)
    assert sent(app) == (0, 0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"days": "0"}, "days"),
        ({"days": "366"}, "days"),
        ({"days": "x"}, "days"),
        ({"days": "1e3"}, "days"),
        ({"days": "-14"}, "days"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"after": "../../etc"}, "after"),
        ({"after": "1." + "a" * 36 + "x"}, "after"),
        ({"after": "9" * 18 + "." + SOME_ID}, "after"),
        ({"after": "1\x00." + SOME_ID}, "after"),
        ({"after": "1." + SOME_ID * 30}, "after"),
    ],
)
def test_malformed_queries_name_the_field(scene: Scene, params: dict[str, str], field: str) -> None:
    officer(scene.app)
    found = problem(scene.app.request("GET", OVERDUE, params=params), 422)
    assert [e["field"] for e in found["errors"]] == [field]


@pytest.mark.parametrize(
    "match_id",
    [SOME_ID.upper(), "not-a-match", "a" * 1000, "%00" + SOME_ID[3:]],
)
def test_malformed_match_ids(scene: Scene, match_id: str) -> None:
    officer(scene.app)
    found = problem(remind(scene.app, match_id), 422)
    assert [e["field"] for e in found["errors"]] == ["match_id"]
    assert sent(scene.app) == (0, 0)


def test_a_flood_of_reminders_sends_one(scene: Scene) -> None:
    officer(scene.app)
    answers = [remind(scene.app, scene.bo).status_code for _ in range(25)]
    assert answers == [200] + [429] * 24
    assert sent(scene.app) == (2, 1), "one notification per organisation, one reminder"
    # The refusals are aggregated: one entry for the minute's first, not 24.
    db = scene.app.app.state.services.db
    db.integrate()
    with db.read() as session:
        count = session.scalar(select(func.count()).select_from(AuditEntryRow))
    assert int(count or 0) < 60


def test_the_operator_and_client_commands_check_their_input(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    db = scene.app.app.state.services.db
    for days in ("0", "366", "-1"):
        ran = run_vir(db, "region", "follow-up", "--region", "Rotterdam", "--days", days)
        assert ran.code != 0 and "days" in ran.err
    ran = run_vir(db, "region", "follow-up", "--region", "Nergens", "--days", "10")
    assert ran.code != 0 and "region" in ran.err
    shown = run_vir(db, "region", "follow-up", "--region", "Rotterdam")
    assert "default" in shown.out and "14 days" in shown.out
    # vir-client refuses a malformed match id or period before it connects anywhere.
    assert client_main(["follow-up", "remind", "../../v1/signals"]) == 2
    assert "match_id" in capsys.readouterr().err
    assert client_main(["follow-up", "overdue", "--days", "0"]) == 2
    assert "days" in capsys.readouterr().err
