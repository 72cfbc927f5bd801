"""Matchregie over the API (issue 17): one coordinator per match by each region's
rules, who takes over when the coordinator leaves, and one match read by id.

Organisations in two regions: Rotterdam (``ORGS``: school, GP, youth care, police),
whose operator puts the GP before youth care (``vir region coordination``), and
Utrecht (``UTRECHT_ORGS``: school, GP), which keeps the default rules (youth care
first, schools only report). The whole app in-process on a fresh store: SQLite, or
PostgreSQL with ``VIR_TEST_DATABASE=postgresql``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import launch
from support.clirun import run_vir
from support.inapp import InApp
from support.instore import ORGS, UTRECHT_ORGS
from support.matchregie import act_as, news, regie_app, register
from support.service import RunningService

from vir.client.canonical import nl_bsn
from vir.client.demo import made_up_bsn
from vir.domain.organisations import Organisation

SCHOOL, GP, YOUTH_CARE, POLICE = ORGS
SCHOOL_U, GP_U = UTRECHT_ORGS


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with regie_app(tmp_path) as running:
        ran = run_vir(
            running.app.state.services.db,
            "region",
            "coordination",
            "--region",
            "Rotterdam",
            "--categories",
            "gp,youth_care",
        )
        assert ran.code == 0, ran.err
        yield running


def lead(match: dict[str, Any]) -> str | None:
    """The name of the coordinator's organisation a match shows."""
    coordinator = match.get("coordinator")
    return None if coordinator is None else str(coordinator["organisation"]["name"])


def read(app: InApp, org: Organisation, match_id: str) -> dict[str, Any]:
    act_as(app, org)
    reply = app.request("GET", f"/v1/matches/{match_id}")
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def test_each_region_chooses_by_its_own_rules(app: InApp) -> None:
    # Rotterdam: the school and youth care match on Bo; youth care coordinates (the
    # school only reports). The GP joins: first under Rotterdam's rules, but the
    # coordinator stays while its signal is in the match.
    register(app, SCHOOL, "s-bo", "bo")
    (match,) = register(app, YOUTH_CARE, "j-bo", "bo")["matches"]
    assert lead(match) == "Jeugdzorg C"
    register(app, GP, "g-bo", "bo")
    assert lead(read(app, SCHOOL, match["id"])) == "Jeugdzorg C"
    # Utrecht: the school and the GP match on Cas, the GP coordinates by default.
    register(app, SCHOOL_U, "su-cas", "cas")
    (utrecht,) = register(app, GP_U, "gu-cas", "cas")["matches"]
    assert lead(utrecht) == "Huisarts U"
    # Across regions the earliest signal's region decides. On Dex, Utrecht's GP comes
    # first: by Utrecht's rules Rotterdam's youth care coordinates. On Eef, Rotterdam's
    # youth care comes first: by Rotterdam's rules Utrecht's GP does.
    register(app, GP_U, "gu-dex", "dex")
    (dex,) = register(app, YOUTH_CARE, "j-dex", "dex")["matches"]
    assert lead(dex) == "Jeugdzorg C"
    register(app, YOUTH_CARE, "j-eef", "eef")
    (eef,) = register(app, GP_U, "gu-eef", "eef")["matches"]
    assert lead(eef) == "Huisarts U"
    # Every notification shows the coordinator, the same for every participant.
    for org in (SCHOOL, GP):
        shown = {lead(n["match"]) for n in news(app, org) if n["match"]["id"] == match["id"]}
        assert shown == {"Jeugdzorg C"}
    youth_care = {(n["match"]["id"], lead(n["match"])) for n in news(app, YOUTH_CARE)}
    assert youth_care == {
        (match["id"], "Jeugdzorg C"),
        (dex["id"], "Jeugdzorg C"),
        (eef["id"], "Huisarts U"),
    }


def test_when_the_coordinator_leaves_the_rules_choose_again_and_all_are_told(
    app: InApp,
) -> None:
    register(app, SCHOOL, "s-bo", "bo")
    (match,) = register(app, YOUTH_CARE, "j-bo", "bo")["matches"]
    register(app, GP, "g-bo", "bo")
    act_as(app, YOUTH_CARE)
    reply = app.request("DELETE", "/v1/signals/j-bo", params={"reason": "unjustified"})
    assert reply.status_code == 204, reply.text
    for org in (SCHOOL, GP):
        told = [n for n in news(app, org) if n["type"] == "match.coordinator"]
        assert [(n["match"]["id"], lead(n["match"])) for n in told] == [(match["id"], "Huisarts B")]
    assert lead(read(app, GP, match["id"])) == "Huisarts B"
    # No fallback needed here, but a match of reporting-only members has a coordinator
    # all the same: the earliest signal.
    register(app, POLICE, "p-fay", "fay")
    (only_report,) = register(app, SCHOOL, "s-fay", "fay")["matches"]
    assert lead(only_report) == "Politie D"


def test_a_match_is_read_by_its_participants_only(app: InApp) -> None:
    register(app, SCHOOL, "s-bo", "bo")
    (match,) = register(app, GP, "g-bo", "bo")["matches"]
    shown = read(app, SCHOOL, match["id"])
    assert shown["id"] == match["id"] and shown["active"] is True
    assert [p["organisation"]["name"] for p in shown["participants"]] == ["Huisarts B"]
    assert lead(shown) == "Huisarts B"
    # The GP sees itself as coordinator; its own organisation is not a participant.
    own = read(app, GP, match["id"])
    assert lead(own) == "Huisarts B"
    assert [p["organisation"]["name"] for p in own["participants"]] == ["School A"]
    # An organisation without a signal in it does not find it.
    act_as(app, YOUTH_CARE)
    assert app.request("GET", f"/v1/matches/{match['id']}").status_code == 404


def test_the_rules_in_effect_are_shown(app: InApp) -> None:
    db = app.app.state.services.db
    rotterdam = run_vir(db, "region", "coordination", "--region", "Rotterdam")
    assert rotterdam.code == 0
    assert rotterdam.out.split("\n")[1:3] == ["  1  gp", "  2  youth_care"]
    assert "configured" in rotterdam.out
    utrecht = run_vir(db, "region", "coordination", "--region", "Utrecht")
    assert "default" in utrecht.out and "  1  youth_care" in utrecht.out
    assert "education" not in utrecht.out


def post(app: InApp, org: Organisation, path: str, body: object = None) -> dict[str, Any]:
    act_as(app, org)
    reply = app.request("POST", path, json=body) if body is not None else app.request("POST", path)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def test_a_handover_accepted_and_one_declined(app: InApp) -> None:
    # Bo: the school, youth care and the GP; youth care coordinates.
    register(app, SCHOOL, "s-bo", "bo")
    (match,) = register(app, YOUTH_CARE, "j-bo", "bo")["matches"]
    register(app, GP, "g-bo", "bo")
    path = f"/v1/matches/{match['id']}/handover"
    offered = post(app, YOUTH_CARE, path, {"to": str(GP.oin)})
    assert offered["handover"]["to_organisation"]["name"] == "Huisarts B"
    assert lead(offered) == "Jeugdzorg C", "an offer alone moves nothing"
    (told,) = [n for n in news(app, GP) if n["type"] == "match.handover_offered"]
    assert told["local_ref"] == "g-bo" and told["match"]["id"] == match["id"]
    # The GP declines: youth care, who offered, is told; nobody else.
    declined = post(app, GP, f"{path}/decline")
    assert declined["handover"] is None and lead(declined) == "Jeugdzorg C"
    (back,) = [n for n in news(app, YOUTH_CARE) if n["type"] == "match.handover_declined"]
    assert back["local_ref"] == "j-bo"
    assert not [n for n in news(app, SCHOOL) if n["type"].startswith("match.handover")]
    # Offered again, the GP accepts: the role moves and everyone is told.
    post(app, YOUTH_CARE, path, {"to": str(GP.oin)})
    accepted = post(app, GP, f"{path}/accept")
    assert lead(accepted) == "Huisarts B" and accepted["handover"] is None
    for org in (SCHOOL, GP, YOUTH_CARE):
        moved = [n for n in news(app, org) if n["type"] == "match.coordinator"]
        assert [lead(n["match"]) for n in moved] == ["Huisarts B"]
    # The handed-over coordinator stays while its signal is in the match: youth care
    # (first under the default rules) leaving changes nothing.
    act_as(app, YOUTH_CARE)
    assert app.request("DELETE", "/v1/signals/j-bo", params={"reason": "unjustified"}).is_success
    assert lead(read(app, SCHOOL, match["id"])) == "Huisarts B"


def test_an_offer_lapses_when_its_target_or_its_coordinator_leaves(app: InApp) -> None:
    register(app, SCHOOL, "s-bo", "bo")
    (match,) = register(app, YOUTH_CARE, "j-bo", "bo")["matches"]
    register(app, GP, "g-bo", "bo")
    path = f"/v1/matches/{match['id']}/handover"
    post(app, YOUTH_CARE, path, {"to": str(GP.oin)})
    act_as(app, GP)
    assert app.request("DELETE", "/v1/signals/g-bo", params={"reason": "unjustified"}).is_success
    assert read(app, SCHOOL, match["id"])["handover"] is None
    # And when the coordinator who offered leaves: on Cas, youth care offers to the
    # school and withdraws; the GP is chosen and the offer is gone.
    register(app, SCHOOL, "s-cas", "cas")
    (cas,) = register(app, YOUTH_CARE, "j-cas", "cas")["matches"]
    register(app, GP, "g-cas", "cas")
    post(app, YOUTH_CARE, f"/v1/matches/{cas['id']}/handover", {"to": str(SCHOOL.oin)})
    act_as(app, YOUTH_CARE)
    assert app.request("DELETE", "/v1/signals/j-cas", params={"reason": "unjustified"}).is_success
    after = read(app, SCHOOL, cas["id"])
    assert after["handover"] is None and lead(after) == "Huisarts B"
    act_as(app, SCHOOL)
    reply = app.request("POST", f"/v1/matches/{cas['id']}/handover/accept")
    assert reply.status_code == 404, "a lapsed offer cannot be accepted"


def test_follow_up_statuses(app: InApp) -> None:
    register(app, SCHOOL, "s-bo", "bo")
    (match,) = register(app, YOUTH_CARE, "j-bo", "bo")["matches"]
    register(app, GP, "g-bo", "bo")
    path = f"/v1/matches/{match['id']}/follow-up"
    post(app, SCHOOL, path, {"event": "contact_made", "contact_with": [str(YOUTH_CARE.oin)]})
    post(
        app,
        YOUTH_CARE,
        path,
        {"event": "contact_made", "contact_with": [str(SCHOOL.oin), str(GP.oin)]},
    )
    # Care cannot start before a plan; the coordinator records both, in order, once.
    act_as(app, YOUTH_CARE)
    early = app.request("POST", path, json={"event": "care_started"})
    assert early.status_code == 409, early.text
    post(app, YOUTH_CARE, path, {"event": "plan_agreed"})
    done = post(app, YOUTH_CARE, path, {"event": "care_started"})
    again = app.request("POST", path, json={"event": "plan_agreed"})
    assert again.status_code == 409
    # A contact recorded twice keeps its first time.
    post(app, SCHOOL, path, {"event": "contact_made", "contact_with": [str(YOUTH_CARE.oin)]})
    shown = read(app, GP, match["id"])["follow_up"]
    assert shown == done["follow_up"]
    events = [
        (
            f["organisation"]["name"],
            f["event"],
            f["contact_with"] and f["contact_with"]["name"],
        )
        for f in shown
    ]
    assert events == [
        ("School A", "contact_made", "Jeugdzorg C"),
        ("Jeugdzorg C", "contact_made", "School A"),
        ("Jeugdzorg C", "contact_made", "Huisarts B"),
        ("Jeugdzorg C", "plan_agreed", None),
        ("Jeugdzorg C", "care_started", None),
    ]
    times = [f["recorded_at"] for f in shown]
    assert times == sorted(times) and times[0] < times[1] < times[3] < times[4]


def _vir_client(service: RunningService, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vir.client.cli", "--url", service.url]
    command += ["--dev-dir", str(service.dev), "--dev-org", who, *args]
    return launch.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_coordination_cycle_with_vir_client(service: RunningService) -> None:
    """Over real HTTPS with the demo organisations' certificates and a real key holder:
    the GP coordinates by the default rules, hands over to the school, which declines
    and then accepts; both confirm contact, the school records plan and care."""
    bsn = nl_bsn(made_up_bsn())
    ids = {}
    for who in ("education", "gp"):
        with service.client(who) as client:
            made = client.pseudonymise([bsn])
            answer = client.register_signal(
                {
                    "local_ref": f"regie-{uuid.uuid4().hex[:12]}",
                    "epoch": made.epoch,
                    "person": made.pseudonyms[0],
                    "professional": {"name": "Anna de Vries", "email": "anna@example.nl"},
                }
            )
            ids[who] = answer
    (match,) = ids["gp"]["matches"]
    school, gp = service.org("education").oin, service.org("gp").oin

    def run(who: str, *args: str) -> dict[str, Any]:
        done = _vir_client(service, who, "match", *args)
        assert done.returncode == 0, done.stderr
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    shown = run("education", "show", match["id"])
    assert lead(shown) == "Huisartsenpraktijk Kralingen"
    run("gp", "handover", match["id"], "--to", school)
    assert lead(run("education", "decline", match["id"])) == "Huisartsenpraktijk Kralingen"
    run("gp", "handover", match["id"], "--to", school)
    assert lead(run("education", "accept", match["id"])) == "Basisschool De Regenboog"
    run("gp", "follow-up", match["id"], "contact_made", "--with", school)
    run("education", "follow-up", match["id"], "contact_made", "--with", gp)
    run("education", "follow-up", match["id"], "plan_agreed")
    final = run("education", "follow-up", match["id"], "care_started")
    assert [f["event"] for f in final["follow_up"]] == [
        "contact_made",
        "contact_made",
        "plan_agreed",
        "care_started",
    ]
    # The GP is no longer coordinator: refused by the service; bad input by the client.
    refused = _vir_client(service, "gp", "match", "handover", match["id"], "--to", school)
    assert refused.returncode == 1 and "403" in refused.stderr
    bad_id = _vir_client(service, "gp", "match", "show", "../signals")
    assert bad_id.returncode == 2 and "match_id" in bad_id.stderr
    bad_oin = _vir_client(service, "gp", "match", "handover", match["id"], "--to", "Huisarts")
    assert bad_oin.returncode == 2 and "Huisarts" not in bad_oin.stderr
    bad_event = _vir_client(service, "gp", "match", "follow-up", match["id"], "gesprek")
    assert bad_event.returncode == 2
