"""Veilig Thuis's household consultation and feedback, and who takes part, over the API.

The whole app in-process (``support.inapp``) on a fresh store (SQLite, or PostgreSQL
with ``VIR_TEST_DATABASE=postgresql``): organisations register with ``POST
/v1/signals``, Veilig Thuis consults by a parent (``POST /v1/consultations`` with
``parent``) and gives feedback (``POST /v1/consultations/{id}/feedback``), and what
each organisation learns is read from ``GET /v1/notifications`` and from the webhook
the notification is delivered to.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import launch
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS, T0, UTRECHT_ORGS
from support.service import RunningService
from support.webhook_receiver import Receiver, hook_keys
from support.world import VEILIG_THUIS, person

from vir.api.identity import require_caller
from vir.api.routes.signals import notification_item
from vir.client.canonical import nl_bsn
from vir.client.connection import VirClient
from vir.client.demo import made_up_bsn
from vir.crypto.standard_webhooks import new_secret
from vir.delivery import admin
from vir.delivery.webhook import WebhookChannel
from vir.delivery.worker import Worker
from vir.domain.encoding import b64url_encode
from vir.domain.organisations import Category, Organisation, Role
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.store.organisations import add_certificate
from vir.store.tables import CertificateRow

SCHOOL, GP, YOUTH_CARE, POLICE = range(4)
# What a safety feedback's match shows (besides an empty coordinator and historical).
_SHOWN = ("id", "kind", "via", "active", "participants", "safety_feedback")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as running:
        db = running.app.state.services.db
        for org in (VEILIG_THUIS, *UTRECHT_ORGS):
            register_organisation(db, org, T0)
        yield running


def act_as(app: InApp, org: int | Organisation, role: Role = Role.SYSTEM) -> None:
    organisation = ORGS[org] if isinstance(org, int) else org
    caller = Caller(organisation, f"{int(str(organisation.oin)):064x}", role)
    app.app.dependency_overrides[require_caller] = lambda: caller


def register(app: InApp, org: int | Organisation, ref: str, child: str, *parents: str) -> None:
    body = signal_body(ref, child, app.epoch)
    body["parents"] = [b64url_encode(person(p)) for p in parents]
    act_as(app, org)
    reply = app.request("POST", "/v1/signals", json=body)
    assert reply.status_code == 201, reply.text


def news(app: InApp, org: int | Organisation) -> list[dict[str, Any]]:
    act_as(app, org)
    reply = app.request("GET", "/v1/notifications", params={"limit": 500})
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def consult(app: InApp, field: str, who: str, purpose: str = "triage") -> dict[str, Any]:
    act_as(app, VEILIG_THUIS)
    body = {"epoch": app.epoch, field: b64url_encode(person(who)), "purpose": purpose}
    reply = app.request("POST", "/v1/consultations", json=body)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def feedback(app: InApp, consultation_id: str, code: str) -> int:
    act_as(app, VEILIG_THUIS)
    return app.request(
        "POST", f"/v1/consultations/{consultation_id}/feedback", json={"code": code}
    ).status_code


def household(app: InApp) -> None:
    """Two children of mother Ida: Bo at the school (which names Ida), Cas at the GP
    (which names Ida) and at Veilig Thuis itself; Ida as a young mother at youth care;
    Bo's brother-in-law Dex at the police (another household: Eva's)."""
    register(app, SCHOOL, "sch-bo", "bo", "ida")
    register(app, GP, "gp-cas", "cas", "ida")
    register(app, VEILIG_THUIS, "vt-cas", "cas")
    register(app, YOUTH_CARE, "jz-ida", "ida")
    register(app, POLICE, "pol-dex", "dex", "eva")


def test_household_consultation_finds_the_reporters_of_every_child_of_the_parent(
    app: InApp,
) -> None:
    household(app)
    answer = consult(app, "parent", "ida")
    assert answer["form"] == "household"
    found = sorted((i["organisation"]["name"], i["status"]) for i in answer["involvement"])
    assert found == [
        ("Huisarts B", "active"),
        ("Jeugdzorg C", "active"),
        ("School A", "active"),
        ("Veilig Thuis T", "active"),
    ]
    # The person form is as it was: one young person's reporters only.
    person_form = consult(app, "person", "bo")
    assert person_form["form"] == "person"
    assert [i["organisation"]["name"] for i in person_form["involvement"]] == ["School A"]
    # A withdrawn signal on a young person of the household is shown archived, as in the
    # person form; a child whose only link to the parent went leaves the household.
    act_as(app, YOUTH_CARE)
    reply = app.request("DELETE", "/v1/signals/jz-ida", params={"reason": "risk_ended"})
    assert reply.status_code == 204
    act_as(app, GP)
    reply = app.request("DELETE", "/v1/signals/gp-cas", params={"reason": "risk_ended"})
    assert reply.status_code == 204
    again = consult(app, "parent", "ida")
    assert sorted((i["organisation"]["name"], i["status"]) for i in again["involvement"]) == [
        ("Jeugdzorg C", "archived"),
        ("School A", "active"),
    ]


def test_feedback_reaches_exactly_the_reporters_found_with_the_code_only(app: InApp) -> None:
    receiver = Receiver()
    receiver.up()
    try:
        db = app.app.state.services.db
        admin.set_webhook(
            db,
            str(ORGS[SCHOOL].oin),
            receiver.url,
            new_secret(),
            T0,
            dev=True,
            keys_dir=hook_keys(),
        )
        household(app)
        before = {org: len(news(app, org)) for org in (SCHOOL, GP, YOUTH_CARE, POLICE)}
        answer = consult(app, "parent", "ida")
        assert feedback(app, answer["consultation_id"], "taken_up") == 204

        told = {}
        for org in (SCHOOL, GP, YOUTH_CARE, POLICE):
            new = news(app, org)[before[org] :]
            told[org] = [n for n in new if n["type"] == "match.safety_feedback"]
            assert len(new) == len(told[org])
        assert not told[POLICE], "another household's reporter is told nothing"
        assert not [n for n in news(app, VEILIG_THUIS) if n["type"] == "match.safety_feedback"]
        refs = {org: [n["local_ref"] for n in told[org]] for org in (SCHOOL, GP, YOUTH_CARE)}
        assert refs == {SCHOOL: ["sch-bo"], GP: ["gp-cas"], YOUTH_CARE: ["jz-ida"]}

        (item,) = told[SCHOOL]
        shown = item["match"]
        assert {k: shown[k] for k in _SHOWN} == {
            "id": answer["consultation_id"],
            "kind": "household",
            "via": "parent",
            "active": True,
            "participants": [],
            "safety_feedback": {
                "organisation": {"oin": str(VEILIG_THUIS.oin), "name": "Veilig Thuis T"},
                "code": "taken_up",
                "label": "Veilig Thuis heeft de zaak in behandeling genomen",
            },
        }
        assert shown.get("coordinator") is None and not shown.get("historical")
        assert item["delivery"] == {"webhook": "pending"}
        text = json.dumps(told)
        for who in ("ida", "bo", "cas", "dex", "eva"):
            assert b64url_encode(person(who)) not in text
        for other in ("Huisarts B", "Jeugdzorg C", "Anna de Vries", "triage"):
            assert other not in json.dumps(item), "nothing about the case or other reporters"

        # Delivered as every notification is: the school's webhook gets it.
        worker = Worker(
            db,
            [WebhookChannel(db, keys_dir=hook_keys(), dev=True)],
            lambda: T0,
            notification_item,
            rng=random.Random(0),
        )
        assert worker.run_until_idle() >= 1
        events = [json.loads(r.body) for r in receiver.snapshot()]
        pushed = [e["data"] for e in events if e["data"]["type"] == "match.safety_feedback"]
        assert [(d["local_ref"], d["match"]["safety_feedback"]["code"]) for d in pushed] == [
            ("sch-bo", "taken_up")
        ]

        # Closing: told once more, the match shown inactive; then nothing more to say.
        assert feedback(app, answer["consultation_id"], "closed") == 204
        (closed,) = news(app, GP)[before[GP] + 1 :]
        assert closed["match"]["safety_feedback"]["code"] == "closed"
        assert closed["match"]["active"] is False
        assert feedback(app, answer["consultation_id"], "handed_over") == 409
    finally:
        receiver.down()


def test_feedback_on_a_person_consultation_tells_that_person_s_reporters(app: InApp) -> None:
    household(app)
    answer = consult(app, "person", "cas")
    assert feedback(app, answer["consultation_id"], "handed_over") == 204
    (item,) = [n for n in news(app, GP) if n["type"] == "match.safety_feedback"]
    assert (item["match"]["kind"], item["match"]["via"]) == ("person", "person")
    assert item["match"]["safety_feedback"]["code"] == "handed_over"
    for org in (SCHOOL, YOUTH_CARE, POLICE):
        assert not [n for n in news(app, org) if n["type"] == "match.safety_feedback"]


def _certify(app: InApp, org: Organisation, *, revoked: bool = False) -> None:
    db = app.app.state.services.db
    with db.write() as session:
        add_certificate(
            session,
            fingerprint=f"{int(str(org.oin)):064x}",
            oin=str(org.oin),
            serial=str(org.oin),
            not_before=T0 - dt.timedelta(days=1),
            not_after=T0 + dt.timedelta(days=365),
            now=T0,
        )
    if revoked:
        with db.write() as session:
            row = session.get(CertificateRow, f"{int(str(org.oin)):064x}")
            assert row is not None
            row.revoked_at = T0 - dt.timedelta(hours=1)


def test_organisations_lists_the_connected_organisations_of_the_own_region(app: InApp) -> None:
    for org in (*ORGS[:3], VEILIG_THUIS, *UTRECHT_ORGS):
        _certify(app, org)
    _certify(app, ORGS[POLICE], revoked=True)  # no longer connected
    act_as(app, SCHOOL)
    reply = app.request("GET", "/v1/organisations")
    assert reply.status_code == 200, reply.text
    page = reply.json()
    assert page == {
        "region": "Rotterdam",
        "items": [
            {"name": "Huisarts B", "category": "gp", "category_label": "Huisartsen"},
            {"name": "Jeugdzorg C", "category": "youth_care", "category_label": "Jeugdhulp"},
            {"name": "School A", "category": "education", "category_label": "Onderwijs"},
            {
                "name": "Veilig Thuis T",
                "category": "veilig_thuis",
                "category_label": "Veilig Thuis",
            },
        ],
        "next": None,
    }
    assert str(ORGS[SCHOOL].oin) not in reply.text, "names and categories only"
    # Paged: two at a time, in the same order.
    first = app.request("GET", "/v1/organisations", params={"region": "Rotterdam", "limit": 2})
    assert [i["name"] for i in first.json()["items"]] == ["Huisarts B", "Jeugdzorg C"]
    rest = app.request("GET", "/v1/organisations", params={"after": first.json()["next"]})
    assert [i["name"] for i in rest.json()["items"]] == ["School A", "Veilig Thuis T"]
    assert rest.json()["next"] is None
    # The coordinator certificate may look too; the other region's list is not theirs.
    act_as(app, UTRECHT_ORGS[0], Role.COORDINATOR)
    names = [i["name"] for i in app.request("GET", "/v1/organisations").json()["items"]]
    assert names == ["Huisarts U", "School U"]


def test_the_categories_document_lists_every_category_and_the_default_order() -> None:
    from vir.domain.coordination import DEFAULT_RULES

    text = (Path(__file__).resolve().parents[2] / "docs" / "categories.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| [^|]+ \| (yes|no) \| (\S+) \| (\S+) \|", text, re.M)
    assert sorted(r[0] for r in rows) == sorted(c.value for c in Category)
    reports = {c: r == "yes" for c, r, _, _ in rows}
    assert reports == {c.value: c.reports for c in Category}
    consults = {c for c, _, consult, _ in rows if consult == "**yes**"}
    assert consults == {Category.VEILIG_THUIS.value}
    order = sorted((int(o), c) for c, _, _, o in rows if o != "—")
    assert [c for _, c in order] == [c.value for c in DEFAULT_RULES]


def every_notification(client: VirClient) -> list[dict[str, Any]]:
    """All of the organisation's notifications (the shared service holds other tests')."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = client.request("GET", "/v1/notifications", params=params).json()
        if not page["items"]:
            return items
        items += page["items"]
        params["after"] = page["next"]


def _vir_client(
    service: RunningService, who: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vir.client.cli", "--url", service.url]
    command += ["--dev-dir", str(service.dev), "--dev-org", who, *args]
    return launch.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False)


def test_vir_client_consults_a_household_gives_feedback_and_lists_who_takes_part(
    service: RunningService,
) -> None:
    """Over real HTTPS with the demo organisations' certificates and a real key holder."""
    mother, first, second = made_up_bsn(), made_up_bsn(), made_up_bsn()
    refs = {}
    for who, child in (("education", first), ("gp", second)):
        refs[who] = f"vt-cli-{uuid.uuid4().hex[:12]}"
        with service.client(who) as client:
            made = client.pseudonymise([nl_bsn(child), nl_bsn(mother)])
            client.register_signal(
                {
                    "local_ref": refs[who],
                    "epoch": made.epoch,
                    "person": made.pseudonyms[0],
                    "parents": [made.pseudonyms[1]],
                    "professional": {"name": "Anna de Vries", "email": "anna@example.nl"},
                }
            )
    consulted = _vir_client(
        service,
        "veilig_thuis",
        "consult",
        "bsn",
        "--purpose",
        "triage",
        "--household",
        stdin=f"{mother}\n",
    )
    assert consulted.returncode == 0, consulted.stderr
    answer = json.loads(consulted.stdout)
    assert answer["form"] == "household"
    assert {"Basisschool De Regenboog", "Huisartsenpraktijk Kralingen"} <= {
        i["organisation"]["name"] for i in answer["involvement"]
    }
    given = _vir_client(service, "veilig_thuis", "feedback", answer["consultation_id"], "taken_up")
    assert given.returncode == 0, given.stderr
    assert "in behandeling genomen" in given.stdout
    for who in ("education", "gp"):
        with service.client(who) as client:
            items = every_notification(client)
        told = [n for n in items if n["type"] == "match.safety_feedback"]
        assert [n["local_ref"] for n in told] == [refs[who]]
        assert told[0]["match"]["id"] == answer["consultation_id"]
    # The same code again is refused by the service; a made-up id and code by the client.
    again = _vir_client(service, "veilig_thuis", "feedback", answer["consultation_id"], "taken_up")
    assert again.returncode == 1 and "409" in again.stderr
    bad_id = _vir_client(service, "veilig_thuis", "feedback", "../signals", "closed")
    assert bad_id.returncode == 2 and "consultation_id" in bad_id.stderr
    bad_code = _vir_client(service, "veilig_thuis", "feedback", answer["consultation_id"], "x")
    assert bad_code.returncode == 2
    # Another organisation may not consult.
    school = _vir_client(
        service, "education", "consult", "bsn", "--purpose", "triage", stdin=f"{first}\n"
    )
    assert school.returncode == 1 and "403" in school.stderr
    assert first not in school.stderr + school.stdout

    listed = _vir_client(service, "gp", "organisations")
    assert listed.returncode == 0, listed.stderr
    assert "Jeugdhulp" in listed.stdout and "Veilig Thuis Rotterdam Rijnmond" in listed.stdout
    as_json = json.loads(_vir_client(service, "gp", "organisations", "--json").stdout)
    assert {
        "name": "Jeugdzorg Rijnmond",
        "category": "youth_care",
        "category_label": "Jeugdhulp",
    } in as_json
    elsewhere = _vir_client(service, "gp", "organisations", "--region", "Utrecht")
    assert elsewhere.returncode == 1 and "403" in elsewhere.stderr
