"""The privacy officer's pages in a real browser (Chromium), against the real development
OpenID provider, key holder, index database and portal (support.portal_world).

A GP's doctor registers a child (by form, with pseudonyms from the Python client). The
municipality's privacy officer signs in, views the privacy report and the participation
monitor, downloads them as CSV and PDF, makes an access request for the child with the
keyboard only (the BSN blinded in the browser), downloads its PDF, and sees the audit
log's checkpoint verified. Every request the browser makes is recorded: the BSN, in any
encoding, is in none of them, nor in any log or table. axe-core checks every page and
state reached."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pypdf import PdfReader
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool
from support import postgres
from support.browser import axe_violations, chromium, follow, new_context, tab_to
from support.portal_world import DOCTOR, GP, PortalWorld, portal_world
from support.service import keyholder_listing

from vir.client.canonical import nl_bsn
from vir.services.devsetup import DEMO_ORGANISATIONS
from vir.services.devsetup import MUNICIPALITY as _MUNICIPALITY

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(postgres.on_postgresql(), reason="browser tests run on SQLite"),
]
BSN = "123456782"
UNKNOWN_BSN = "111222333"
GP_NAME = DEMO_ORGANISATIONS[1].name
MUNICIPALITY_NAME = _MUNICIPALITY.name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    with portal_world(Path(tmp_path_factory.mktemp("officer"))) as running:
        yield running


@pytest.fixture(scope="module")
def browser(world: PortalWorld) -> Iterator[Any]:
    with chromium(world.certificates) as found:
        yield found


class Recorder:
    """Every request of a browser context: method, URL, headers and body."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    def __call__(self, request: Any) -> None:
        body = request.post_data_buffer or b""
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        self.requests.append(f"{request.method} {request.url}\n{headers}\n".encode() + body)


def encodings(bsn: str) -> list[bytes]:
    """The BSN as a page, a log or a table could hold it."""
    spaced = [f"{bsn[:3]}{s}{bsn[3:6]}{s}{bsn[6:]}" for s in (" ", ".", "-", "%20", "+")]
    texts = [bsn, f"{bsn[:4]} {bsn[4:6]} {bsn[6:]}", *spaced, nl_bsn(bsn), quote(nl_bsn(bsn))]
    found = [t.encode() for t in texts]
    found += [base64.b64encode(bsn.encode()), base64.urlsafe_b64encode(bsn.encode()).rstrip(b"=")]
    found += [bsn.encode().hex().encode(), bsn.encode("utf-16-le"), int(bsn).to_bytes(4, "big")]
    return found


def _every_table(url: str) -> bytes:
    """Every row of every table of the database at ``url``, as bytes."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            found = []
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    found.append(repr(tuple(row)).encode())
                    found.extend(v for v in row if isinstance(v, bytes))
            return b"\n".join(found)
    finally:
        engine.dispose()


def _register_by_form(world: PortalWorld, bsn: str) -> None:
    """The doctor registers the child through the portal's form (pseudonyms made by the
    Python client: the registration page itself is tested in test_portal_pages)."""
    with world.service.client("gp") as client:
        made = client.pseudonymise([nl_bsn(bsn)])
    with world.http() as http:
        csrf = world.sign_in(http, GP, DOCTOR)
        form = {"csrf": csrf, "epoch": str(made.epoch), "person": made.pseudonyms[0]}
        answer = http.post("/meldingen/nieuw", data=form | {"name": "Dokter Jansen"})
        assert answer.status_code == 303, answer.text


def _pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def test_the_privacy_officer_in_the_browser(
    world: PortalWorld, browser: Any, record_property: Any
) -> None:
    _register_by_form(world, BSN)
    recorder = Recorder()
    checked: dict[str, Any] = {}
    context = new_context(browser)
    context.on("request", recorder)
    page = context.new_page()

    # Sign in with the keyboard only.
    page.goto(world.url)
    tab_to(page, f"Inloggen bij {MUNICIPALITY_NAME}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.idp_url}/authorize**")
    tab_to(page, "Mila Smit")
    with page.expect_navigation(url=f"{world.url}/"):
        page.keyboard.press("Enter")
    assert "Als privacyfunctionaris" in page.inner_text("main")
    checked["start page"] = axe_violations(page)

    # The reports: the form, a refused date, the privacy report and the participation
    # monitor as pages.
    follow(page, page.get_by_role("link", name="Rapportages").first)
    page.wait_for_url(f"{world.url}/rapportages")
    checked["reports form"] = axe_violations(page)
    page.get_by_label("Van", exact=False).fill("2026-13-01")
    follow(page, page.get_by_role("button", name="Bekijken"))
    assert 'Controleer het veld "Van"' in page.locator("#probleem").inner_text()
    assert page.get_by_label("Van", exact=False).get_attribute("aria-invalid") == "true"
    checked["reports form, a refused date"] = axe_violations(page)
    today = dt.datetime.now(dt.UTC).date()
    period = {"from": (today - dt.timedelta(days=30)).isoformat()}
    period["to"] = (today + dt.timedelta(days=1)).isoformat()
    page.get_by_label("Van", exact=False).fill(period["from"])
    page.get_by_label("Tot", exact=False).fill(period["to"])
    page.get_by_label("Rapportage").select_option("privacy")
    follow(page, page.get_by_role("button", name="Bekijken"))
    main = page.inner_text("main")
    assert "Privacyrapportage" in main and "Gebeurtenissen" in main and GP_NAME in main
    checked["privacy report"] = axe_violations(page)
    page.get_by_label("Rapportage").select_option("monitor")
    follow(page, page.get_by_role("button", name="Bekijken"))
    assert "Geregistreerde signalen" in page.inner_text("main")
    checked["municipal monitor"] = axe_violations(page)
    page.get_by_label("Rapportage").select_option("participation")
    page.get_by_label("Termijn voor contact", exact=False).fill("14")
    follow(page, page.get_by_role("button", name="Bekijken"))
    main = page.inner_text("main")
    assert "Deelnamemonitor" in main and "Deelname" in main and "14 dagen" in main
    checked["participation monitor"] = axe_violations(page)

    # The downloads: as the browser gets them, and their headers.
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Downloaden als CSV").click()
    assert csv_download.value.suggested_filename == "deelname.csv"
    csv_text = Path(csv_download.value.path()).read_text(encoding="utf-8")
    assert csv_text.startswith("\ufeffOnderdeel;") and GP_NAME in csv_text
    with page.expect_download() as pdf_download:
        page.get_by_role("button", name="Downloaden als PDF").click()
    assert "Monitor deelname" in _pdf_text(Path(pdf_download.value.path()).read_bytes())
    session = next(c["value"] for c in context.cookies() if c["name"] == "__Host-vir-portal")
    with world.http() as http:
        for report, name in (("privacy", "privacy-rapport"), ("participation", "deelname")):
            for form, media in (("csv", "text/csv; charset=utf-8"), ("pdf", "application/pdf")):
                answer = http.get(
                    "/rapportages",
                    params={"report": report, **period, "format": form},
                    headers={"cookie": f"__Host-vir-portal={session}"},
                )
                assert answer.status_code == 200
                assert answer.headers["content-type"] == media
                assert answer.headers["cache-control"] == "no-store"
                disposition = answer.headers["content-disposition"]
                assert disposition == f'attachment; filename="{name}.{form}"'
                if form == "pdf":
                    assert _pdf_text(answer.content)

    # The access request, with the keyboard only: the BSN blinded in the browser.
    tab_to(page, "Inzageverzoek")
    with page.expect_navigation(url=f"{world.url}/inzage"):
        page.keyboard.press("Enter")
    checked["access request form"] = axe_violations(page)
    tab_to(page, "BSN")
    page.keyboard.type(BSN)
    tab_to(page, "Opvragen")
    with page.expect_navigation(url=f"{world.url}/inzage"):
        page.keyboard.press("Enter")
    main = page.inner_text("main")
    assert "Dit bewaart de verwijsindex in uw regio" in main and GP_NAME in main
    checked["access request answered"] = axe_violations(page)
    tab_to(page, "PDF downloaden")
    with page.expect_download() as access_download:
        page.keyboard.press("Enter")
    assert access_download.value.suggested_filename == "inzage.pdf"
    assert GP_NAME in _pdf_text(Path(access_download.value.path()).read_bytes())

    # A person of whom nothing is held.
    page.goto(f"{world.url}/inzage")
    page.get_by_label("BSN", exact=True).fill(UNKNOWN_BSN)
    with page.expect_navigation(url=f"{world.url}/inzage"):
        page.get_by_role("button", name="Opvragen").click()
    assert "bewaart in uw regio niets over deze persoon" in page.inner_text("main")
    checked["access request, nothing held"] = axe_violations(page)

    # The audit log: the newest checkpoint, verified against the stored log.
    follow(page, page.get_by_role("link", name="Auditlog").first)
    page.wait_for_url(f"{world.url}/auditlog")
    main = page.inner_text("main")
    assert "Gecontroleerd: het auditlog klopt" in main and "Heel:" in main
    assert "Geldig (sleutel van de verwijsindex)" in main
    checked["audit log"] = axe_violations(page)
    context.close()

    assert all(not found for found in checked.values()), checked
    forbidden = [*encodings(BSN), *encodings(UNKNOWN_BSN)]
    evaluations = [
        r
        for r in recorder.requests
        if r.startswith(b"POST https://")
        and b"/v1/oprf/evaluate" in r
        and b"\nauthorization: Bearer " in r
    ]
    assert len(evaluations) == 2  # one per access request, straight to the key holder
    leaks = [r[:80] for r in recorder.requests if any(f in r for f in forbidden)]
    assert leaks == []
    logs = world.logs().encode()
    assert [f for f in forbidden if f in logs] == []
    tables = _every_table(world.service.database_url) + _every_table(
        keyholder_listing(world.service.root)[0]["env"]["VIR_KEYHOLDER_DATABASE_URL"]
    )
    assert [f for f in forbidden if f in tables] == []
    entries = [
        json.loads(body if isinstance(body, str) else bytes(body).decode())
        for (body,) in world.service.sql("SELECT body FROM audit_entries")
    ]
    assert sum(e["action"] == "access.requested" for e in entries) == 2
    made = [e for e in entries if e["action"] == "report.generated"]
    assert any(e["objects"]["report"] == "access" for e in made)  # the PDF's making
    assert all(e["actor"].startswith("person:") for e in made)
    record_property(
        "terminal_summary",
        f"officer pages: axe-core WCAG 2.1 AA, {len(checked)} pages and states, 0 violations; "
        f"{len(recorder.requests)} browser requests without the BSN",
    )
