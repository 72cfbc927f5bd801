"""The privacy officer's pages against hostile use, by hand (no browser): each guard on
its own, through the real portal, provider, key holder and database.

Only a privacy officer opens them; a regional officer asking for another region is
refused; forms need the session's CSRF token and the portal's Origin; identity fields
posted by hand and oversized forms are refused whole; the access request's PDF handle
works once, for its own session only. Every refusal is audited."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from support.portal_world import (
    DOCTOR,
    GP,
    MUNICIPALITY,
    PORTAL_HTTP_MARKS,
    PRIVACY_OFFICER,
    PortalWorld,
    portal_world,
)

from vir.client.canonical import nl_bsn
from vir.store.db import Database

pytestmark = PORTAL_HTTP_MARKS
BSN = "123456782"
PERIOD = {"from": "2026-01-01", "to": "2026-02-01"}
PAGES = ("/rapportages", "/inzage", "/auditlog")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    with portal_world(Path(tmp_path_factory.mktemp("officer"))) as running:
        yield running


def _pseudonym(world: PortalWorld, bsn: str) -> dict[str, str]:
    with world.service.client("gp") as client:
        made = client.pseudonymise([nl_bsn(bsn)])
    return {"epoch": str(made.epoch), "person": made.pseudonyms[0]}


@pytest.fixture(scope="module")
def registered(world: PortalWorld) -> dict[str, str]:
    """The child's pseudonym, with a signal of the GP's on it (registered by form)."""
    person = _pseudonym(world, BSN)
    with world.http() as gp:
        csrf = world.sign_in(gp, GP, DOCTOR)
        answer = gp.post("/meldingen/nieuw", data={"csrf": csrf, "name": "Dokter Jansen"} | person)
        assert answer.status_code == 303, answer.text
    return person


def _entries(world: PortalWorld) -> list[dict[str, Any]]:
    """Every audit entry (those staged by their transactions chained first)."""
    db = Database.connect(world.service.database_url)
    try:
        db.integrate()
        with db.read() as session:
            rows = session.execute(text("SELECT body FROM audit_entries ORDER BY seq")).all()
    finally:
        db.dispose()
    return [json.loads(b if isinstance(b, str) else bytes(b).decode()) for (b,) in rows]


def _refusals(world: PortalWorld) -> list[tuple[str | None, dict[str, object]]]:
    return [
        (e.get("reason"), e.get("objects") or {})
        for e in _entries(world)
        if e["action"] == "portal.request_refused"
    ]


def _lookups(world: PortalWorld) -> int:
    return sum(e["action"] == "access.requested" for e in _entries(world))


def _handle(page: httpx.Response) -> str:
    found = re.search(r'name="handle" value="([A-Za-z0-9_-]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def test_only_a_privacy_officer_opens_the_pages(world: PortalWorld) -> None:
    with world.http() as gp:
        csrf = world.sign_in(gp, GP, DOCTOR)
        for path in PAGES:
            assert gp.get(path).status_code == 403
        for path in ("/inzage", "/inzage/pdf"):
            assert gp.post(path, data={"csrf": csrf}).status_code == 403
        assert "/rapportages" not in gp.get("/").text  # no officer's links
    assert sum(reason == "forbidden" for reason, _o in _refusals(world)) >= 5
    with world.http() as anonymous:
        for path in PAGES:
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/"
        assert anonymous.post("/inzage", data={"csrf": "x"}).status_code == 303


@pytest.mark.parametrize("report", ["privacy", "monitor", "participation"])
def test_another_region_is_refused(world: PortalWorld, report: str) -> None:
    with world.http() as officer:
        world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        own = officer.get("/rapportages", params={"report": report, **PERIOD, "region": ""})
        assert own.status_code == 200 and "<caption>" in own.text
        answer = officer.get(
            "/rapportages", params={"report": report, **PERIOD, "region": "Utrecht"}
        )
    assert answer.status_code == 403
    assert 'Controleer het veld "Regio"' in unescape(answer.text) and "<caption>" not in answer.text
    assert ("outside_region", {}) in _refusals(world)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("report", "alles"),
        ("from", "2026-13-01"),
        ("from", "2026-03-01"),  # after "to"
        ("to", "2030-01-01"),
        ("days", "0"),
        ("days", "9999"),
        ("format", "xlsx"),
    ],
)
def test_bad_report_values_are_refused_naming_the_field(
    world: PortalWorld, field: str, value: str
) -> None:
    asked = {"report": "participation", **PERIOD, "format": "csv"} | {field: value}
    with world.http() as officer:
        world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        answer = officer.get("/rapportages", params=asked)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")  # no download
    label = {"report": "Rapportage", "from": "Van", "to": "Tot", "format": "Vorm"}
    named = label.get(field, "Termijn voor contact")
    assert f'Controleer het veld "{named}"' in unescape(answer.text)
    assert ("invalid", {"field": field}) in _refusals(world)


def test_forms_need_the_csrf_token_and_the_portals_origin(
    world: PortalWorld, registered: dict[str, str]
) -> None:
    before = _lookups(world)
    with world.http() as officer:
        csrf = world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        assert officer.post("/inzage", data=registered).status_code == 403
        wrong = officer.post("/inzage", data={"csrf": "x" * len(csrf)} | registered)
        assert wrong.status_code == 403
        foreign = officer.post(
            "/inzage",
            data={"csrf": csrf} | registered,
            headers={"origin": "https://elders.example"},
        )
        assert foreign.status_code == 403
        assert officer.post("/inzage/pdf", data={"handle": "x"}).status_code == 403
        with world.http() as other:
            other_csrf = world.sign_in(other, MUNICIPALITY, PRIVACY_OFFICER)
            # another session's token does not do
            assert (
                officer.post("/inzage", data={"csrf": other_csrf} | registered).status_code == 403
            )
    assert sum(reason == "csrf" for reason, _o in _refusals(world)) >= 5
    assert _lookups(world) == before  # nothing was looked up


def test_identity_fields_and_oversized_forms_are_refused(
    world: PortalWorld, registered: dict[str, str]
) -> None:
    with world.http() as officer:
        csrf = world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        for extra in ({"bsn": BSN}, {"surname": "Bakkerova", "birth_date": "2015-03-01"}):
            answer = officer.post("/inzage", data={"csrf": csrf} | registered | extra)
            assert answer.status_code == 400 and "niet verwerkt" in answer.text
        by_query = officer.get("/rapportages", params={"report": "privacy", **PERIOD, "bsn": BSN})
        assert by_query.status_code == 400
        repeated = officer.get("/rapportages?report=privacy&report=monitor")
        assert repeated.status_code == 400
        long = officer.get("/rapportages", params={"report": "privacy", "region": "x" * 101})
        assert long.status_code == 400
        big = officer.post("/inzage", data={"csrf": csrf, "person": "A" * 20000})
        assert big.status_code == 413 and "Formulier te groot" in big.text
    assert sum(reason == "unexpected_field" for reason, _o in _refusals(world)) >= 5
    logs = world.logs()
    assert BSN not in logs and "Bakkerova" not in logs
    assert not any(BSN in json.dumps(e) or "Bakkerova" in json.dumps(e) for e in _entries(world))


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"epoch": "1", "person": "not-a-pseudonym"}, "person"),
        ({"epoch": "1", "person": "A" * 43}, "person"),  # not a group element
        ({"epoch": "x"}, "epoch"),
        ({"epoch": "999"}, "epoch"),  # not an accepted key epoch
    ],
)
def test_bad_pseudonyms_are_refused_naming_the_field(
    world: PortalWorld, registered: dict[str, str], form: dict[str, str], field: str
) -> None:
    with world.http() as officer:
        csrf = world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        answer = officer.post("/inzage", data={"csrf": csrf} | registered | form)
    assert answer.status_code == 400
    assert 'Controleer het veld "BSN"' in unescape(answer.text)
    assert 'name="handle"' not in answer.text
    assert ("invalid", {"field": field}) in _refusals(world)


def test_the_pdf_handle_works_once_for_its_own_session(
    world: PortalWorld, registered: dict[str, str]
) -> None:
    with world.http() as officer, world.http() as other:
        csrf = world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        other_csrf = world.sign_in(other, MUNICIPALITY, PRIVACY_OFFICER)
        page = officer.post("/inzage", data={"csrf": csrf} | registered)
        assert page.status_code == 200 and "Dit bewaart de verwijsindex" in page.text
        handle = _handle(page)
        assert handle not in str(page.url) and registered["person"] not in page.text
        pdf = officer.post("/inzage/pdf", data={"csrf": csrf, "handle": handle})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["cache-control"] == "no-store"
        assert pdf.headers["content-disposition"] == 'attachment; filename="inzage.pdf"'
        again = officer.post("/inzage/pdf", data={"csrf": csrf, "handle": handle})
        assert again.status_code == 404 and not again.content.startswith(b"%PDF-")

        # A handle shown in another session is refused, and is gone for its own as well.
        second = _handle(officer.post("/inzage", data={"csrf": csrf} | registered))
        stolen = other.post("/inzage/pdf", data={"csrf": other_csrf, "handle": second})
        assert stolen.status_code == 404
        assert officer.post("/inzage/pdf", data={"csrf": csrf, "handle": second}).status_code == 404

        # A newer request replaces the session's earlier handle.
        third = _handle(officer.post("/inzage", data={"csrf": csrf} | registered))
        fourth = _handle(officer.post("/inzage", data={"csrf": csrf} | registered))
        assert officer.post("/inzage/pdf", data={"csrf": csrf, "handle": third}).status_code == 404
        assert officer.post("/inzage/pdf", data={"csrf": csrf, "handle": fourth}).status_code == 200
    assert sum(reason == "download_handle" for reason, _o in _refusals(world)) == 4


def test_the_audit_page_names_the_first_broken_entry(world: PortalWorld) -> None:
    """An entry altered in the database: the page says the log does not match its
    checkpoint and names the entry (restored afterwards: the log is the module's)."""
    with world.http() as officer:
        world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        officer.get("/rapportages", params={"report": "privacy", **PERIOD})  # signs one
        assert "Gecontroleerd: het auditlog klopt" in officer.get("/auditlog").text
        ((body,),) = world.service.sql("SELECT body FROM audit_entries WHERE seq = 2")
        original = bytes(body)
        altered = original.replace(b"}", b" }", 1)
        world.service.sql("UPDATE audit_entries SET body = :b WHERE seq = 2", b=altered)
        try:
            page = officer.get("/auditlog")
        finally:
            world.service.sql("UPDATE audit_entries SET body = :b WHERE seq = 2", b=original)
        assert page.status_code == 200
        assert "klopt niet met het laatste ondertekende controlepunt" in page.text
        assert "Gebroken bij vastlegging 2" in page.text
        assert "Gecontroleerd: het auditlog klopt" in officer.get("/auditlog").text
