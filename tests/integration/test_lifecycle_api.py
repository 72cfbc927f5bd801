"""Lifecycle and data-subject rights over real mTLS: roles from the dev set-up, PATCH,
consultation, access (JSON and the Dutch PDF), erasure, death notice, bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from typing import Any

import pytest
from pypdf import PdfReader
from support.service import RunningService

from vir.client.connection import ServiceError, VirClient


def _client(service: RunningService, entry: dict[str, Any]) -> VirClient:
    """The organisation's (or role's) client: the index, and the key holder it
    pseudonymises at with the same certificate."""
    dev = service.dev
    return VirClient(
        service.url,
        dev / "ca.crt",
        dev / entry["cert"],
        dev / entry["key"],
        keyholders=service.keyholder_urls,
    )


@pytest.fixture
def clients(service: RunningService) -> dict[str, VirClient]:
    orgs = json.loads((service.dev / "orgs.json").read_text())
    roles = json.loads((service.dev / "roles.json").read_text())
    made = {o["category"]: _client(service, o) for o in orgs}
    made |= {r["role"]: _client(service, r) for r in roles}
    yield made
    for client in made.values():
        client.close()


def _child() -> str:
    return f"nl-person:test{uuid.uuid4().hex[:12]}:2015-03-01:x"


def _signal(client: VirClient, ref: str, canonical: str, name: str) -> dict[str, Any]:
    made = client.pseudonymise([canonical])
    return client.register_signal(
        {
            "local_ref": ref,
            "epoch": made.epoch,
            "person": made.pseudonyms[0],
            "professional": {"name": name, "email": "x@example.nl"},
        }
    )


def _problem(error: pytest.ExceptionInfo[ServiceError]) -> tuple[int, str, list[str]]:
    problem = error.value.problem
    fields = [e["field"] for e in problem.get("errors", [])]
    return error.value.status, problem["type"], fields


def test_roles_rights_and_the_pdf(clients: dict[str, VirClient]) -> None:
    child = _child()
    tag = uuid.uuid4().hex[:8]
    school, gp, youth = clients["education"], clients["gp"], clients["youth_care"]
    _signal(school, f"s-{tag}", child, "Els Visser")
    _signal(gp, f"g-{tag}", child, "Karim Bouali")
    _signal(youth, f"y-{tag}", child, "Sanne de Jong")

    # Contact change and the information duty, by PATCH (informed today: not before the
    # signal was made, not in the future).
    today = dt.datetime.now(dt.UTC).date().isoformat()
    view = school.update_signal(
        f"s-{tag}",
        {
            "professional": {"name": "Bram Jansen", "phone": "010-7654321"},
            "informed": {"on": today, "who": "both"},
        },
    )
    assert view["informed"] == {"on": today, "who": "both"}
    items, _ = gp.all_notifications()
    changed = [n for n in items if n["type"] == "match.contact_changed"]
    assert changed and changed[-1]["local_ref"] == f"g-{tag}"
    assert "Bram Jansen" in json.dumps(changed[-1]["match"]["participants"])
    assert f"s-{tag}" in [s["local_ref"] for s in school.list_signals()]

    # Veilig Thuis consults; a school may not; the purpose is required and checked.
    answer = clients["veilig_thuis"].consult(child, "safety_assessment")
    assert len(answer["involvement"]) == 3
    with pytest.raises(ServiceError) as refused:
        school.consult(child, "triage")
    assert _problem(refused)[:2] == (403, "urn:vir:problem:not-permitted")
    made = clients["veilig_thuis"].pseudonymise([child])
    with pytest.raises(ServiceError) as refused:
        clients["veilig_thuis"].request(
            "POST", "/v1/consultations", {"epoch": made.epoch, "person": made.pseudonyms[0]}
        )
    assert _problem(refused) == (422, "urn:vir:problem:invalid-input", ["purpose"])

    # Withdrawal with an unknown reason: refused, nothing changed.
    with pytest.raises(ServiceError) as refused:
        youth.withdraw_signal(f"y-{tag}", "bored")
    assert _problem(refused)[0] == 422 and _problem(refused)[2] == ["reason"]
    youth.withdraw_signal(f"y-{tag}", "risk_ended")  # archived

    # The privacy officer's access report: JSON and the Dutch PDF.
    officer = clients["privacy_officer"]
    report = officer.access_report(child)
    assert {s["status"] for s in report["signals"]} == {"active", "archived"}
    assert len(report["signals"]) == 3
    pdf = officer.access_report_pdf(child)
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for name in ("Basisschool De Regenboog", "Huisartsenpraktijk Kralingen", "Bram Jansen"):
        assert name in text
    # An organisation may not ask; an unknown person is a clear 404.
    with pytest.raises(ServiceError) as refused:
        school.access_report(child)
    assert _problem(refused)[:2] == (403, "urn:vir:problem:not-permitted")
    with pytest.raises(ServiceError) as refused:
        officer.access_report(_child())
    assert _problem(refused)[:2] == (404, "urn:vir:problem:not-found")

    # An objection erases the GP's signal (no archive); a death notice the rest.
    gp_signal = next(s for s in report["signals"] if s["organisation"]["name"].startswith("Huis"))
    assert officer.erase(child, "objection", [gp_signal["signal_id"]]) == [gp_signal["signal_id"]]
    assert len(officer.deceased(child)) == 2
    with pytest.raises(ServiceError) as refused:
        officer.access_report(child)
    assert refused.value.status == 404


def test_bad_dates_are_refused_naming_the_field(clients: dict[str, VirClient]) -> None:
    school = clients["education"]
    made = school.pseudonymise([_child()])
    base = {
        "local_ref": f"d-{uuid.uuid4().hex[:8]}",
        "epoch": made.epoch,
        "person": made.pseudonyms[0],
        "professional": {"name": "Els Visser", "email": "e@example.nl"},
    }
    for extra, field in (
        ({"remove_on": "2020-01-01"}, "remove_on"),
        ({"remove_on": "2099-01-01"}, "remove_on"),
        ({"archive_until": "2001-01-01"}, "archive_until"),
    ):
        with pytest.raises(ServiceError) as refused:
            school.register_signal(base | extra)
        assert _problem(refused)[0] == 422 and _problem(refused)[2] == [field]
    assert base["local_ref"] not in [s["local_ref"] for s in school.list_signals()]


def test_only_a_coordinator_sets_the_coordinator(clients: dict[str, VirClient]) -> None:
    """Set by the coordinator's certificate, refused to the back office's; a match
    partner then sees the coordinator on the youth-care organisation's participant."""
    body = {"name": "Carla de Coördinator", "email": "c@jzrijnmond.example"}
    with pytest.raises(ServiceError) as refused:
        clients["youth_care"].request("PUT", "/v1/organisation/coordinator", body)
    assert refused.value.status == 403
    clients["coordinator"].request("PUT", "/v1/organisation/coordinator", body)
    child = _child()
    _signal(clients["youth_care"], f"c-{uuid.uuid4().hex[:8]}", child, "Ruud Jansen")
    answer = _signal(clients["education"], f"c-{uuid.uuid4().hex[:8]}", child, "Els Visser")
    (match,) = answer["matches"]
    (partner,) = match["participants"]
    assert partner["organisation"]["name"] == "Jeugdzorg Rijnmond"
    assert partner["coordinator"] == {"name": body["name"], "email": body["email"], "phone": None}


def test_privacy_officer_reports_over_the_api(clients: dict[str, VirClient]) -> None:
    officer = clients["privacy_officer"]
    period = {"from": "2026-01-01", "to": "2027-01-01"}
    events = officer.request("GET", "/v1/privacy/reports/events", params=period).json()
    assert events["period"] == {"from": "2026-01-01", "to": "2027-01-01"}
    registered = [
        row for row in events["events"] if row["action"] == "signal.registered" and row["count"]
    ]
    assert registered, "the registrations of the earlier tests are counted"
    csv_text = officer.request(
        "GET", "/v1/privacy/reports/events", params=period | {"format": "csv"}
    ).text
    assert csv_text.splitlines()[0] == "section,oin,organisation,key,subkey,value"
    assert any(",signal.registered," in line for line in csv_text.splitlines())
    pdf = officer.request(
        "GET", "/v1/privacy/reports/monitor", params=period | {"format": "pdf"}
    ).content
    assert PdfReader(io.BytesIO(pdf)).pages
    monitor = officer.request("GET", "/v1/privacy/reports/monitor", params=period).text
    assert "00000009000000000001" not in monitor and "Regenboog" not in monitor
    with pytest.raises(ServiceError) as refused:
        clients["education"].request("GET", "/v1/privacy/reports/events", params=period)
    assert refused.value.status == 403
    with pytest.raises(ServiceError) as refused:
        officer.request(
            "GET", "/v1/privacy/reports/events", params={"from": "2027-01-01", "to": "2026-01-01"}
        )
    assert _problem(refused)[0] == 422
