"""The portal's sign-in and session against hostile use, through the real provider and
portal processes (no browser: every request is made by hand, so each guard is tested
on its own): login CSRF, replayed and forged callbacks, the wrong organisation or
assurance level, session cookies, CSRF on forms, idle sessions, security headers."""

from __future__ import annotations

import datetime as dt
import html
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from support.oidc import CLIENT_ID as GP_CLIENT_ID
from support.portal import GP, SCHOOL, RunningPortal, running_portal
from support.portal_world import PORTAL_HTTP_MARKS
from support.world import person

from vir.crypto.secretbox import load_secret_box
from vir.domain.signals import Professional
from vir.portal import config, oidc
from vir.portal.app import LOGIN_COOKIE, SECURITY_HEADERS, SESSION_COOKIE
from vir.server.tls import MAX_HEAD_BYTES, MAX_HEADER_FIELDS
from vir.services.epochs import EpochBook
from vir.services.identity import Caller
from vir.services.signals import SignalRequest, SignalService
from vir.store.tables import Base, OrganisationOidcRow, PortalSessionRow, PortalSignalRow

pytestmark = PORTAL_HTTP_MARKS


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPortal]:
    with running_portal(Path(tmp_path_factory.mktemp("portal"))) as running:
        yield running


def _actions(portal: RunningPortal) -> list[tuple[str, str | None]]:
    """(action, reason) of the audit entries written so far, staged or chained."""
    found = []
    for entry in _audit_bodies(portal):
        reason = entry.get("reason")
        found.append((str(entry["action"]), None if reason is None else str(reason)))
    return found


def _audit_bodies(portal: RunningPortal) -> list[dict[str, object]]:
    """The audit entries written so far, staged or chained, decoded."""
    db = portal.database()
    try:
        db.integrate()
        with db.read() as session:
            rows = session.execute(text("SELECT body FROM audit_entries ORDER BY seq")).all()
    finally:
        db.dispose()
    return [json.loads(b if isinstance(b, str) else bytes(b).decode()) for (b,) in rows]


def test_sign_in_then_out(portal: RunningPortal) -> None:
    with portal.http() as http:
        answer = portal.sign_in(http, str(GP.oin), "huisarts-1")
        assert answer.status_code == 200 and "Ingelogd" in answer.text
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
            assert flag.lower() in cookie.lower()
        home = http.get("/")
        assert "Welkom, Dokter Jansen" in home.text and GP.name in home.text
        csrf = home.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        out = http.post("/uitloggen", data={"csrf": csrf})
        assert out.status_code == 200 and "Uitgelogd" in out.text
        assert SESSION_COOKIE in out.headers["set-cookie"]  # deleted
        assert "Inloggen" in http.get("/").text
        # On to the provider's end_session_endpoint (RP-Initiated Logout), which sends
        # the browser back to the portal's start page.
        onward = httpx.URL(_refresh_target(out.text))
        assert str(onward.copy_with(query=None)) == f"{portal.idp.issuer}/logout"
        assert dict(onward.params) == {
            "client_id": GP_CLIENT_ID,
            "post_logout_redirect_uri": f"{portal.url}/",
        }
        back = http.get(onward)
        assert back.status_code == 303 and back.headers["location"] == f"{portal.url}/"
    actions = [a for a, _ in _actions(portal)]
    assert "portal.signed_in" in actions and "portal.signed_out" in actions


def _refresh_target(page: str) -> str:
    """The address a page's ``<meta http-equiv="refresh">`` moves on to."""
    content = page.split('http-equiv="refresh" content="', 1)[1].split('"', 1)[0]
    return html.unescape(content.split("url=", 1)[1])


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "no-such-client", "post_logout_redirect_uri": "PORTAL/"},
        {"client_id": "CLIENT", "post_logout_redirect_uri": "https://evil.example/"},
        {"client_id": "CLIENT", "post_logout_redirect_uri": "PORTAL/auth/callback"},
        {"client_id": "CLIENT", "post_logout_redirect_uri": "PORTAL"},
        {"client_id": "CLIENT", "post_logout_redirect_uri": "PORTAL/", "state": "a b<"},
    ],
    ids=["unknown-client", "other-site", "other-path", "no-slash", "bad-state"],
)
def test_the_provider_never_sends_a_signed_out_browser_elsewhere(
    portal: RunningPortal, params: dict[str, str]
) -> None:
    """The development provider's end-session endpoint redirects only to a registered
    post-logout address of the client asking (an open redirect otherwise): anything
    else is a 400 page, no Location."""
    filled = {
        k: v.replace("PORTAL", portal.url).replace("CLIENT", GP_CLIENT_ID)
        for k, v in params.items()
    }
    with portal.http() as http:
        for method in ("GET", "POST"):
            if method == "GET":
                answer = http.get(f"{portal.idp.issuer}/logout", params=filled)
            else:
                answer = http.post(f"{portal.idp.issuer}/logout", data=filled)
            assert answer.status_code == 400, (method, answer.text)
            assert "location" not in answer.headers
        kept = http.get(
            f"{portal.idp.issuer}/logout",
            params={
                "client_id": GP_CLIENT_ID,
                "post_logout_redirect_uri": f"{portal.url}/",
                "state": "s-1",
            },
        )
        assert kept.status_code == 303 and kept.headers["location"] == f"{portal.url}/?state=s-1"


def test_only_hashes_of_the_cookie_are_stored(portal: RunningPortal) -> None:
    with portal.http() as http:
        portal.sign_in(http, str(GP.oin), "huisarts-1")
        token = http.cookies[SESSION_COOKIE]
    db = portal.database()
    with db.read() as session:
        rows = session.execute(select(PortalSessionRow.id_hash, PortalSessionRow.person)).all()
    db.dispose()
    assert rows and all(token not in (h, p) for h, p in rows)
    assert all("huisarts-1" not in p for _h, p in rows)  # the provider's subject is not kept


def test_the_client_secret_is_sealed_and_a_moved_one_fails_closed(portal: RunningPortal) -> None:
    db = portal.database()
    try:
        with db.read() as session:
            found = session.execute(
                select(OrganisationOidcRow.oin, OrganisationOidcRow.client_secret)
            )
            rows = {oin: stored for oin, stored in found}
        assert all(portal.idp.client_secret not in stored for stored in rows.values())
        # The school's sealed secret copied into the GP practice's row does not open there.
        with db.write() as session:
            gp = session.get(OrganisationOidcRow, str(GP.oin))
            assert gp is not None
            original, gp.client_secret = gp.client_secret, rows[str(SCHOOL.oin)]
        with portal.http() as http:
            refused = http.get("/inloggen", params={"organisatie": str(GP.oin)})
        assert refused.status_code == 400 and "location" not in refused.headers
        assert ("portal.sign_in_refused", "secret") in _actions(portal)
        with db.write() as session:
            row = session.get(OrganisationOidcRow, str(GP.oin))
            assert row is not None
            row.client_secret = original
    finally:
        db.dispose()
    assert portal.idp.client_secret not in portal.log.read_text()


def test_the_callback_needs_the_browser_that_started(portal: RunningPortal) -> None:
    with portal.http() as http:
        start = http.get("/inloggen", params={"organisatie": str(GP.oin)})
        params = dict(httpx.URL(start.headers["location"]).params)
        chosen = http.post(f"{portal.idp.issuer}/authorize", data=params | {"sub": "huisarts-1"})
        callback = chosen.headers["location"]
    with portal.http() as other:  # no sign-in cookie: another browser (login CSRF)
        forged = other.get(callback)
    assert forged.status_code == 400 and SESSION_COOKIE not in forged.headers.get("set-cookie", "")
    with portal.http() as http:
        http.cookies.set(LOGIN_COOKIE, "not-the-binding", domain="127.0.0.1")
        assert http.get(callback).status_code == 400


def test_a_callback_is_used_once(portal: RunningPortal) -> None:
    with portal.http() as http:
        start = http.get("/inloggen", params={"organisatie": str(GP.oin)})
        params = dict(httpx.URL(start.headers["location"]).params)
        chosen = http.post(f"{portal.idp.issuer}/authorize", data=params | {"sub": "huisarts-1"})
        binding = http.cookies[LOGIN_COOKIE]
        assert http.get(chosen.headers["location"]).status_code == 200
        http.cookies.set(LOGIN_COOKIE, binding, domain="127.0.0.1")
        again = http.get(chosen.headers["location"])
    assert again.status_code == 400


def _row_counts(portal: RunningPortal) -> dict[str, int]:
    db = portal.database()
    try:
        db.integrate()
        with db.read() as session:
            return {
                t.name: int(session.scalar(select(func.count()).select_from(t)) or 0)
                for t in Base.metadata.sorted_tables
            }
    finally:
        db.dispose()


def test_a_flood_of_sign_in_starts_fills_nothing(portal: RunningPortal) -> None:
    """Found by a browser walk in stop 42: every ``GET /inloggen`` stored a sign-in under
    way for ten minutes, so anyone could fill the table. Nothing is written now: the
    sign-in travels in the browser's sealed cookie."""
    before = _row_counts(portal)
    with portal.http() as http:
        for _ in range(200):
            start = http.get("/inloggen", params={"organisatie": str(GP.oin)})
            assert start.status_code == 303
    assert _row_counts(portal) == before


def test_a_link_to_the_sign_in_ends_no_session(portal: RunningPortal) -> None:
    """Found by a browser walk in stop 42: starting a sign-in ended the browser's session,
    so any same-site link or image pointing at ``/inloggen`` signed people out. The old
    session ends when a new sign-in finishes, not before."""
    with portal.http() as browser:
        portal.sign_in(browser, str(GP.oin), "huisarts-1")
        started = browser.get("/inloggen", params={"organisatie": str(SCHOOL.oin)})
        assert started.status_code == 303
        assert "Welkom, Dokter Jansen" in browser.get("/").text
        # Abandoned at the provider; a sign-in that fails ends nothing either.
        assert portal.sign_in(browser, str(GP.oin), "nobody").status_code == 403
        assert "Welkom, Dokter Jansen" in browser.get("/").text


def test_a_sign_in_started_before_the_provider_changed_is_refused(
    portal: RunningPortal,
) -> None:
    with portal.http() as http:
        start = http.get("/inloggen", params={"organisatie": str(SCHOOL.oin)})
        params = dict(httpx.URL(start.headers["location"]).params)
        chosen = http.post(f"{portal.idp.issuer}/authorize", data=params | {"sub": "school-1"})
        db = portal.database()
        try:
            with db.write() as session:
                row = session.get(OrganisationOidcRow, str(SCHOOL.oin))
                assert row is not None
                original, row.client_id = row.client_id, "another-client"
            answer = http.get(chosen.headers["location"])
        finally:
            with db.write() as session:
                row = session.get(OrganisationOidcRow, str(SCHOOL.oin))
                assert row is not None
                row.client_id = original
            db.dispose()
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert ("portal.sign_in_refused", "not_configured") in _actions(portal)


def test_failed_callbacks_of_one_address_are_held_off(tmp_path: Path) -> None:
    """A sign-in cookie costs nothing to get, and each failing callback with one would
    call the provider and write an audit entry: after 30 failures in 5 minutes the
    address gets 429 before either is touched."""
    with running_portal(tmp_path) as own, own.http() as http:
        for _ in range(30):
            assert http.get("/auth/callback", params={"state": "x", "code": "y"}).status_code == 400
        written = len(_actions(own))
        start = http.get("/inloggen", params={"organisatie": str(GP.oin)})
        params = dict(httpx.URL(start.headers["location"]).params)
        chosen = http.post(f"{own.idp.issuer}/authorize", data=params | {"sub": "huisarts-1"})
        held = http.get(chosen.headers["location"])
        assert held.status_code == 429 and held.headers["retry-after"] == "300"
        assert SESSION_COOKIE not in held.headers.get("set-cookie", "")
        assert len(_actions(own)) == written


def test_a_person_of_another_organisation_is_refused(portal: RunningPortal) -> None:
    with portal.http() as http:
        # The school's teacher signs in at the provider for the GP practice.
        answer = portal.sign_in(http, str(GP.oin), "school-1")
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert ("portal.sign_in_refused", "organisation") in _actions(portal)


def test_a_lower_assurance_level_is_refused(portal: RunningPortal) -> None:
    # The GP practice requires its provider's level 3; its locum signed in at level 2.
    with portal.http() as http:
        answer = portal.sign_in(http, str(GP.oin), "huisarts-2")
        assert answer.status_code == 403
        # The school requires no level: its teacher at level 2 gets in.
        assert portal.sign_in(http, str(SCHOOL.oin), "school-1").status_code == 200
    assert ("portal.sign_in_refused", "assurance_level") in _actions(portal)


def test_a_denied_sign_in_makes_no_session(portal: RunningPortal) -> None:
    with portal.http() as http:
        answer = portal.sign_in(http, str(GP.oin), "nobody")
    assert answer.status_code == 403
    assert ("portal.sign_in_refused", "provider_denied") in _actions(portal)


@pytest.mark.parametrize(
    "organisation", ["", "123", "00000009000000000099", "x" * 5000, "0000000900000000000'"]
)
def test_unknown_organisations_get_no_redirect(portal: RunningPortal, organisation: str) -> None:
    with portal.http() as http:
        answer = http.get("/inloggen", params={"organisatie": organisation})
    assert answer.status_code == 400 and "location" not in answer.headers


def _signed_in(portal: RunningPortal, http: httpx.Client) -> str:
    portal.sign_in(http, str(GP.oin), "huisarts-1")
    home = http.get("/")
    return home.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        ({}, {}),
        ({"csrf": "wrong"}, {}),
        ("csrf-in-json", {"content-type": "application/json"}),
        ("same", {"origin": "https://evil.example"}),
        ("twice", {}),
    ],
)
def test_forms_need_the_sessions_csrf_token(
    portal: RunningPortal, data: object, headers: dict[str, str]
) -> None:
    with portal.http() as http:
        csrf = _signed_in(portal, http)
        if data == "csrf-in-json":
            answer = http.post("/uitloggen", content=f'{{"csrf": "{csrf}"}}', headers=headers)
        elif data == "same":
            answer = http.post("/uitloggen", data={"csrf": csrf}, headers=headers)
        elif data == "twice":
            answer = http.post(
                "/uitloggen",
                content=f"csrf={csrf}&csrf={csrf}",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        else:
            answer = http.post("/uitloggen", data=data, headers=headers)
        assert answer.status_code == 403
        assert "Welkom" in http.get("/").text  # still signed in: nothing was done
    assert ("portal.request_refused", "csrf") in _actions(portal)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_form_over_the_limit_is_413_in_dutch_and_audited(
    portal: RunningPortal, chunked: bool
) -> None:
    """Before: a form over VIR_PORTAL_MAX_FORM_BYTES got 403 "Niet uitgevoerd", the page
    of a stale or cross-site form. Now 413, its own page, audited as form_too_large;
    with a valid CSRF token inside, so only the size can be the reason."""
    with portal.http() as http:
        csrf = _signed_in(portal, http)
        body = f"csrf={csrf}&x={'y' * 9000}".encode()
        headers = {"content-type": "application/x-www-form-urlencoded"}
        for path in ("/uitloggen", "/meldingen/nieuw"):
            content = iter([body[:4000], body[4000:]]) if chunked else body
            answer = http.post(path, content=content, headers=headers)
            assert answer.status_code == 413, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert "Formulier te groot" in answer.text
        assert "Welkom" in http.get("/").text  # still signed in: nothing was done
    assert ("portal.request_refused", "form_too_large") in _actions(portal)


def _raw(portal: RunningPortal, head: bytes) -> bytes:
    """``head`` sent on a fresh TLS connection as it is; the answer's status line."""
    context = ssl.create_default_context(cafile=portal.ca)
    url = httpx.URL(portal.url)
    assert url.port is not None
    plain = socket.create_connection((url.host, url.port), timeout=15)
    with context.wrap_socket(plain, server_hostname=url.host) as sock:
        try:
            for start in range(0, len(head), 16 * 1024):
                sock.sendall(head[start : start + 16 * 1024])
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # refused and closed before the head was all sent
        answer = b""
        while b"\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    return answer.split(b"\r\n", 1)[0]


def _head(fields: list[bytes]) -> bytes:
    lines = [b"GET /health HTTP/1.1", b"Host: 127.0.0.1", *fields, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize(
    "fields",
    [
        [b"X-Big: " + b"a" * (8 * 1024 * 1024)],
        [b"X-Pad: " + b"a" * (MAX_HEAD_BYTES + 1)],
        [b"X-H%d: v" % i for i in range(4000)],
        [b"X-H%d: v" % i for i in range(MAX_HEADER_FIELDS - 1)],  # with Host, Connection
    ],
    ids=["8-mb-field", "just-over-32-kib", "4000-fields", "101-fields"],
)
def test_a_request_head_over_the_limits_is_431(portal: RunningPortal, fields: list[bytes]) -> None:
    """Before: the portal's server had no bound on a request head (32 MB in 4,000 fields
    was served). Now the index's limits hold on its port too."""
    assert _raw(portal, _head(fields)).startswith(b"HTTP/1.1 431 ")
    # Just under the limits: served.
    under = [b"X-H%d: v" % i for i in range(MAX_HEADER_FIELDS - 3)]
    assert _raw(portal, _head(under)) == b"HTTP/1.1 200 OK"
    assert _raw(portal, _head([b"X-Pad: " + b"a" * (MAX_HEAD_BYTES - 200)])) == b"HTTP/1.1 200 OK"


def test_an_idle_session_ends(portal: RunningPortal) -> None:
    with portal.http() as http:
        _signed_in(portal, http)
        db = portal.database()
        with db.write() as session:
            for row in session.scalars(select(PortalSessionRow)):
                row.last_seen_at -= dt.timedelta(minutes=16)
        db.dispose()
        page = http.get("/")
    assert "Welkom" not in page.text and "Inloggen" in page.text
    assert f'{SESSION_COOKIE}=""' in page.headers.get("set-cookie", "")


def test_a_forged_session_cookie_opens_nothing(portal: RunningPortal) -> None:
    with portal.http() as http:
        http.cookies.set(SESSION_COOKIE, "x" * 43, domain="127.0.0.1")
        assert "Welkom" not in http.get("/").text
        http.cookies.set(SESSION_COOKIE, "x" * 5000, domain="127.0.0.1")
        assert http.get("/").status_code in (200, 400, 431)


@pytest.mark.parametrize("path", ["/", "/inloggen", "/static/portal.css", "/nergens"])
def test_every_answer_has_the_security_headers(portal: RunningPortal, path: str) -> None:
    with portal.http() as http:
        answer = http.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, name
    assert "unsafe-inline" not in answer.headers["content-security-policy"]


def test_removing_or_changing_a_sign_in_ends_its_organisations_sessions(
    portal: RunningPortal,
) -> None:
    """Found by a browser walk in stop 42: ``vir org oidc --remove`` (or a changed
    provider or role mapping) deleted the configuration only; the organisation's people
    stayed signed in by it, and registered signals after it was gone. Their sessions end
    with it; another organisation's stay."""
    db = portal.database()
    box = load_secret_box(Path(portal.env["VIR_KEYS_DIR"]))
    with db.read() as session:
        kept = config.load(session, str(GP.oin), box)
    assert kept is not None
    try:
        with portal.http() as gp, portal.http() as school:
            portal.sign_in(gp, str(GP.oin), "huisarts-1")
            portal.sign_in(school, str(SCHOOL.oin), "school-1")
            assert "Welkom" in gp.get("/").text
            with db.write() as session:
                config.save(session, kept, dt.datetime.now(dt.UTC), box)  # changed
            assert "Welkom" not in gp.get("/").text and "Welkom" in school.get("/").text
            portal.sign_in(gp, str(GP.oin), "huisarts-1")
            assert "Welkom" in gp.get("/").text
            with db.write() as session:
                assert config.remove(session, str(GP.oin))
            assert "Welkom" not in gp.get("/").text and "Welkom" in school.get("/").text
        with db.read() as session:
            left = session.scalar(
                select(func.count())
                .select_from(PortalSessionRow)
                .where(PortalSessionRow.oin == str(GP.oin))
            )
        assert left == 0
    finally:
        with db.write() as session:
            config.save(session, kept, dt.datetime.now(dt.UTC), box)
        db.dispose()


def test_signing_in_again_ends_the_session_the_browser_had(portal: RunningPortal) -> None:
    """Found by a browser walk in stop 42: a second sign-in in the same browser (someone
    else's, on a shared workstation) left the first session valid until its idle time,
    for whoever kept its cookie. It is ended (and audited as signed out) when the sign-in
    starts; a link from another site cannot do that (the cookie is SameSite=Strict)."""
    with portal.http() as browser, portal.http() as copied:
        portal.sign_in(browser, str(GP.oin), "huisarts-1")
        first = browser.cookies[SESSION_COOKIE]
        copied.cookies.set(SESSION_COOKIE, first)
        assert "Welkom" in copied.get("/").text
        again = portal.sign_in(browser, str(GP.oin), "huisarts-1")
        assert again.status_code == 200 and browser.cookies[SESSION_COOKIE] != first
        assert "Welkom" in browser.get("/").text
        assert "Welkom" not in copied.get("/").text
    assert ("portal.signed_out", None) in _actions(portal)


def test_a_persons_id_is_keyed_and_their_earlier_signals_follow_them(
    portal: RunningPortal,
) -> None:
    """Found by a browser walk in stop 42: the person's id in sessions, the audit log and
    "Mijn meldingen" was SHA-256 of the provider and subject, so anyone with an audit
    export could find whose entries they were by hashing guessed subjects (employee
    numbers, e-mail addresses). It is now an HMAC under a key derived from the index's
    secret-box key. A portal signal stored under the old digest is the person's again at
    their next sign-in."""
    digest = oidc.person_id(portal.idp.issuer, "huisarts-1")
    db = portal.database()
    try:
        clock = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        request = SignalRequest(
            "portal-before-keyed-ids",
            1,
            person("Kim"),
            (),
            None,
            None,
            Professional("Dokter Jansen", "jansen@huisarts.example"),
            None,
        )
        caller = Caller(GP, "00" * 32)
        signal = SignalService(db, clock, EpochBook(db)).register(caller, request).signal
        with db.write() as session:  # registered through the portal before ids were keyed
            session.add(PortalSignalRow(signal_id=signal.id, person=digest, created_at=clock()))
        with portal.http() as gp:
            portal.sign_in(gp, str(GP.oin), "huisarts-1")
        with db.read() as session:
            people = set(session.scalars(select(PortalSessionRow.person)))
            claimed = session.scalars(select(PortalSignalRow.person)).all()
    finally:
        db.dispose()
    assert digest not in people and len(people) >= 1
    assert all(len(p) == 64 and p != digest for p in people)
    assert claimed and digest not in claimed and set(claimed) <= people
    signed_in = [a for a in _audit_bodies(portal) if a["action"] == "portal.signed_in"]
    assert signed_in and all(digest not in json.dumps(a) for a in signed_in)
