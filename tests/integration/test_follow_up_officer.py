"""Matchregie end to end in two regions (issue 17, "Done when"): the coordinator chosen
by each region's rules, a handover declined and one accepted, content-free follow-up,
each municipality's follow-up officer seeing exactly its own region's overdue matches
and nothing more, and a reminder reaching the participants that have not confirmed
contact.

Rotterdam (``ORGS``: school, GP, youth care, police) puts the GP before youth care
(``vir region coordination``); Utrecht (``UTRECHT_ORGS``: school, GP) keeps the default
rules. The whole app in-process on a fresh store, SQLite or PostgreSQL, with a clock
the test moves on by days.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.clirun import run_vir
from support.inapp import InApp
from support.instore import ORGS, T0, UTRECHT_ORGS
from support.matchregie import TickingClock, act_as, news, regie_app, register
from support.world import MUNICIPALITY, UTRECHT

from vir.audit.chain import AuditEvent
from vir.client.connection import ServiceError
from vir.client.failures import failed
from vir.domain.organisations import Organisation, Role
from vir.services.onboarding import register_organisation

SCHOOL, GP, YOUTH_CARE, POLICE = ORGS
SCHOOL_U, GP_U = UTRECHT_ORGS


@dataclass
class Regions:
    app: InApp
    clock: TickingClock

    def later(self, days: int) -> None:
        self.clock.offset += dt.timedelta(days=days)

    def as_officer(self, municipality: Organisation) -> None:
        act_as(self.app, municipality, Role.FOLLOW_UP_OFFICER)

    def overdue(self, municipality: Organisation, **params: Any) -> dict[str, Any]:
        self.as_officer(municipality)
        reply = self.app.request("GET", "/v1/follow-up/overdue", params=params)
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        return found

    def remind(self, municipality: Organisation, match_id: str) -> Any:
        self.as_officer(municipality)
        return self.app.request("POST", f"/v1/follow-up/overdue/{match_id}/reminder")

    def post(self, org: Organisation, path: str, body: object = None) -> dict[str, Any]:
        act_as(self.app, org)
        reply = self.app.request("POST", path, json=body)
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        return found

    def audit(self) -> list[AuditEvent]:
        from sqlalchemy import select

        from vir.store.tables import AuditEntryRow

        db = self.app.app.state.services.db
        db.integrate()
        with db.read() as session:
            bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
            return [AuditEvent.decode(bytes(b)) for b in bodies]


@pytest.fixture
def regions(tmp_path: Path) -> Iterator[Regions]:
    clock = TickingClock()
    with regie_app(tmp_path, clock) as running:
        db = running.app.state.services.db
        register_organisation(db, UTRECHT, T0)
        ran = run_vir(
            db, "region", "coordination", "--region", "Rotterdam", "--categories", "gp,youth_care"
        )
        assert ran.code == 0, ran.err
        yield Regions(running, clock)


def lead(match: dict[str, Any]) -> str:
    return str(match["coordinator"]["organisation"]["name"])


def statuses(item: dict[str, Any]) -> dict[str, bool]:
    return {p["organisation"]["name"]: p["contact_confirmed"] for p in item["participants"]}


def test_a_full_coordination_cycle_in_two_regions(
    regions: Regions, capsys: pytest.CaptureFixture[str]
) -> None:
    app = regions.app
    # Bo, in Rotterdam: the school and youth care match; youth care coordinates (the
    # school only reports); the GP joins and the coordinator stays.
    register(app, SCHOOL, "s-bo", "bo")
    (bo,) = register(app, YOUTH_CARE, "j-bo", "bo")["matches"]
    register(app, GP, "g-bo", "bo")
    assert lead(bo) == "Jeugdzorg C"
    # Cas, in Utrecht: the GP coordinates by the default rules.
    register(app, SCHOOL_U, "su-cas", "cas")
    (cas,) = register(app, GP_U, "gu-cas", "cas")["matches"]
    assert lead(cas) == "Huisarts U"
    # Dex spans both: Utrecht's GP first, so Utrecht's rules choose Rotterdam's youth care.
    register(app, GP_U, "gu-dex", "dex")
    (dex,) = register(app, YOUTH_CARE, "j-dex", "dex")["matches"]
    assert lead(dex) == "Jeugdzorg C"
    # Eef, in Rotterdam: the school and the police confirm contact at once.
    register(app, SCHOOL, "s-eef", "eef")
    (eef,) = register(app, POLICE, "p-eef", "eef")["matches"]
    regions.post(
        SCHOOL,
        f"/v1/matches/{eef['id']}/follow-up",
        {"event": "contact_made", "contact_with": [str(POLICE.oin)]},
    )

    # Handover on Bo: the GP declines, then accepts.
    handover = f"/v1/matches/{bo['id']}/handover"
    regions.post(YOUTH_CARE, handover, {"to": str(GP.oin)})
    assert lead(regions.post(GP, f"{handover}/decline")) == "Jeugdzorg C"
    regions.post(YOUTH_CARE, handover, {"to": str(GP.oin)})
    assert lead(regions.post(GP, f"{handover}/accept")) == "Huisarts B"
    # Follow-up on Bo: the school made contact with the GP; the GP, now coordinating,
    # agreed a plan. Youth care recorded nothing.
    follow = f"/v1/matches/{bo['id']}/follow-up"
    regions.post(SCHOOL, follow, {"event": "contact_made", "contact_with": [str(GP.oin)]})
    shown = regions.post(GP, follow, {"event": "plan_agreed"})
    assert [(f["organisation"]["name"], f["event"]) for f in shown["follow_up"]] == [
        ("School A", "contact_made"),
        ("Huisarts B", "plan_agreed"),
    ]

    # Within 14 days nothing is overdue, for either officer.
    assert regions.overdue(MUNICIPALITY)["items"] == []
    assert regions.overdue(UTRECHT)["items"] == []

    regions.later(15)
    rotterdam = regions.overdue(MUNICIPALITY)
    assert (rotterdam["region"], rotterdam["days"]) == ("Rotterdam", 14)
    assert [m["id"] for m in rotterdam["items"]] == [bo["id"], dex["id"]]
    on_bo, on_dex = rotterdam["items"]
    assert statuses(on_bo) == {"School A": True, "Huisarts B": True, "Jeugdzorg C": False}
    assert on_bo["other_regions"] == 0 and on_bo["days_open"] == 15
    # Dex: Rotterdam's officer sees only its own participant, and how many others there are.
    assert statuses(on_dex) == {"Jeugdzorg C": False} and on_dex["other_regions"] == 1
    utrecht = regions.overdue(UTRECHT)
    assert [m["id"] for m in utrecht["items"]] == [cas["id"], dex["id"]]
    assert statuses(utrecht["items"][0]) == {"School U": False, "Huisarts U": False}
    assert statuses(utrecht["items"][1]) == {"Huisarts U": False}
    # Nothing about persons or signals: no local reference, no signal id, no pseudonym.
    text = json.dumps([rotterdam, utrecht])
    for ref in ("s-bo", "j-bo", "g-bo", "su-cas", "gu-cas", "gu-dex", "j-dex"):
        assert ref not in text
    assert set(on_bo) == {
        "id",
        "created_at",
        "days_open",
        "participants",
        "other_regions",
        "reminded_at",
    }
    assert set(on_bo["participants"][0]) == {
        "organisation",
        "category",
        "category_label",
        "professional",
        "contact_confirmed",
    }
    # A region's own period: Utrecht waits 30 days; Rotterdam is unaffected.
    ran = run_vir(
        app.app.state.services.db, "region", "follow-up", "--region", "Utrecht", "--days", "30"
    )
    assert ran.code == 0 and "overdue after 30 days" in ran.out, ran.err
    assert regions.overdue(UTRECHT) | {"items": None} == {
        "region": "Utrecht",
        "days": 30,
        "items": None,
        "next": None,
    }
    assert regions.overdue(UTRECHT)["items"] == []
    assert len(regions.overdue(MUNICIPALITY)["items"]) == 2

    # Rotterdam's officer reminds Bo: only youth care, the one without confirmed contact,
    # is told, through its signal in the match.
    reply = regions.remind(MUNICIPALITY, bo["id"])
    assert reply.status_code == 200, reply.text
    assert [o["name"] for o in reply.json()["reminded"]] == ["Jeugdzorg C"]
    (told,) = [n for n in news(app, YOUTH_CARE) if n["type"] == "match.reminder"]
    assert told["local_ref"] == "j-bo" and told["match"]["id"] == bo["id"]
    assert lead(told["match"]) == "Huisarts B"
    for org in (SCHOOL, GP, GP_U, SCHOOL_U):
        assert not [n for n in news(app, org) if n["type"] == "match.reminder"]
    # Once a day at most; the list shows when.
    again = regions.remind(MUNICIPALITY, bo["id"])
    assert again.status_code == 429 and int(again.headers["retry-after"]) > 80_000
    _says_when_to_remind_again(again, reply.json()["sent_at"], capsys)
    assert regions.overdue(MUNICIPALITY)["items"][0]["reminded_at"] is not None
    # Utrecht's match is not Rotterdam's to remind: 403, audited.
    outside = regions.remind(MUNICIPALITY, cas["id"])
    assert outside.status_code == 403 and outside.json()["type"].endswith("outside-region")
    # Utrecht's officer reminds Dex: Utrecht's GP only, not Rotterdam's youth care.
    regions.later(16)  # Utrecht's 30 days
    reply = regions.remind(UTRECHT, dex["id"])
    assert reply.status_code == 200, reply.text
    assert [o["name"] for o in reply.json()["reminded"]] == ["Huisarts U"]
    (told_u,) = [n for n in news(app, GP_U) if n["type"] == "match.reminder"]
    assert told_u["local_ref"] == "gu-dex"
    assert len([n for n in news(app, YOUTH_CARE) if n["type"] == "match.reminder"]) == 1

    # Contact confirmed on Dex (youth care with Utrecht's GP): it leaves both lists.
    regions.post(
        YOUTH_CARE,
        f"/v1/matches/{dex['id']}/follow-up",
        {"event": "contact_made", "contact_with": [str(GP_U.oin)]},
    )
    assert [m["id"] for m in regions.overdue(MUNICIPALITY)["items"]] == [bo["id"]]
    assert [m["id"] for m in regions.overdue(UTRECHT)["items"]] == [cas["id"]]

    # The officer sees nothing else: a match, signals, notifications are refused (403).
    regions.as_officer(MUNICIPALITY)
    for path in (
        f"/v1/matches/{bo['id']}",
        "/v1/signals",
        "/v1/notifications",
        "/v1/organisations",
    ):
        assert app.request("GET", path).status_code == 403, path
    # (In-process the caller is set directly, so the refusals name no certificate; over
    # mutual TLS they do: tests/security/test_follow_up_hostile.py.)
    refused = {
        (e.objects["endpoint"], e.reason) for e in regions.audit() if e.action == "request.refused"
    }
    reminder = "POST /v1/follow-up/overdue/{match_id}/reminder"
    assert refused == {
        (reminder, "rate_limited"),
        (reminder, "outside_region"),
        ("GET /v1/matches/{match_id}", "not_permitted"),
        ("GET /v1/signals", "not_permitted"),
        ("GET /v1/notifications", "not_permitted"),
        ("GET /v1/organisations", "not_permitted"),
    }
    listed = [e for e in regions.audit() if e.action == "follow_up.overdue_listed"]
    assert {e.organisation for e in listed} == {str(MUNICIPALITY.oin), str(UTRECHT.oin)}
    reminded = [e for e in regions.audit() if e.action == "match.reminded"]
    assert [(e.organisation, e.objects["match"]) for e in reminded] == [
        (str(MUNICIPALITY.oin), bo["id"]),
        (str(UTRECHT.oin), dex["id"]),
    ]


def _says_when_to_remind_again(
    refused: Any, sent_at: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second reminder within the day: the problem says the match was reminded and
    from when it may be reminded again (the first reminder plus a day, UTC, ISO 8601),
    as ``Retry-After`` counts; ``vir-client`` prints that detail."""
    first = dt.datetime.fromisoformat(sent_at.replace("Z", "+00:00"))
    again = first + dt.timedelta(days=1)
    assert again.microsecond == 0  # the ticking clock reads whole seconds
    problem = refused.json()
    assert problem["type"].endswith(":rate-limited")
    when = again.isoformat().replace("+00:00", "Z")
    assert problem["detail"] == (
        f"this match was already reminded in the last 24 hours; "
        f"it can be reminded again from {when}"
    )
    assert int(refused.headers["retry-after"]) <= (again - first).total_seconds()
    assert failed(ServiceError(refused.status_code, problem)) == 1
    printed = capsys.readouterr().err
    assert printed == (
        f"vir-client: 429 Too many requests: this match was already reminded in the last "
        f"24 hours; it can be reminded again from {when}\n"
    )


def test_the_list_pages_with_a_cursor(regions: Regions) -> None:
    app = regions.app
    made = []
    for i in range(7):
        register(app, SCHOOL, f"s-{i}", f"kid{i}")
        (match,) = register(app, GP, f"g-{i}", f"kid{i}")["matches"]
        made.append(match["id"])
    regions.later(14)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = regions.overdue(MUNICIPALITY, **params)
        assert len(page["items"]) <= 3
        seen += [m["id"] for m in page["items"]]
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert seen == made
    assert regions.overdue(MUNICIPALITY, days=15)["items"] == []
