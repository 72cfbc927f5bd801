"""The portal's professional pages against hostile use, by hand (no browser): each
guard on its own, through the real portal, provider, key holder and database.

Another organisation's (or another person's) signal and match ids get the same page as
an unknown id, and an audit entry; forms need the session's CSRF token and the portal's
Origin; identity fields posted by hand are refused whole and never stored or logged;
pseudonyms that are not canonical elements are refused naming the field."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import quote_plus

import httpx
import pytest
from sqlalchemy import text
from support import portal_lists
from support.portal_world import (
    CARER,
    COORDINATOR,
    DOCTOR,
    GP,
    MUNICIPALITY,
    PORTAL_HTTP_MARKS,
    PRIVACY_OFFICER,
    SCHOOL,
    TEACHER,
    YOUTH_CARE,
    PortalWorld,
    csrf_of,
    portal_world,
)

from vir.client.canonical import is_valid_bsn, nl_address, nl_bsn
from vir.store.db import Database

pytestmark = PORTAL_HTTP_MARKS
BSN = "123456782"
OTHER_BSN = "111222333"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _bsn(start: int) -> str:
    """The first valid BSN (11-proof) from ``start``: each test its own child."""
    return next(str(n) for n in range(start, start + 100) if is_valid_bsn(str(n)))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    with portal_world(Path(tmp_path_factory.mktemp("pages"))) as running:
        yield running


def _pseudonyms(world: PortalWorld, *bsns: str) -> tuple[int, list[str]]:
    with world.service.client("gp") as client:
        made = client.pseudonymise([nl_bsn(b) for b in bsns])
    return made.epoch, made.pseudonyms


def _register(
    world: PortalWorld, http: httpx.Client, csrf: str, child: str, **extra: str
) -> httpx.Response:
    epoch, (person,) = _pseudonyms(world, child)
    form = {"csrf": csrf, "epoch": str(epoch), "person": person, "name": "Test Persoon"}
    return http.post("/meldingen/nieuw", data=form | extra)


def _signal_id(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].split("/meldingen/", 1)[1].split("?", 1)[0]


def _refusals(world: PortalWorld) -> list[tuple[str | None, dict[str, object]]]:
    db = Database.connect(world.service.database_url)
    try:
        db.integrate()
        with db.read() as session:
            rows = session.execute(text("SELECT body FROM audit_entries ORDER BY seq")).all()
    finally:
        db.dispose()
    found = []
    for (body,) in rows:
        entry = json.loads(body if isinstance(body, str) else bytes(body).decode())
        if entry["action"] == "portal.request_refused":
            found.append((entry.get("reason"), entry.get("objects") or {}))
    return found


def test_a_registration_by_form_and_the_match_on_both_sides(world: PortalWorld) -> None:
    with world.http() as gp, world.http() as school:
        gp_csrf = world.sign_in(gp, GP, DOCTOR)
        school_csrf = world.sign_in(school, SCHOOL, TEACHER)
        gp_signal = _signal_id(_register(world, gp, gp_csrf, BSN))
        assert gp_signal in gp.get("/meldingen").text
        _signal_id(_register(world, school, school_csrf, BSN))
        for http in (gp, school):
            page = http.get("/matches")
            assert page.status_code == 200 and "Zelfde jeugdige" in page.text
    entries = [
        json.loads(_bytes(b)) for (b,) in world.service.sql("SELECT body FROM audit_entries")
    ]
    registered = [e for e in entries if e["action"] == "signal.registered"]
    # The person, not a certificate, is named: the portal acts for them.
    assert registered and all(e["actor"].startswith("person:") for e in registered)
    assert all(e["certificate"] is None for e in registered)


def test_another_organisations_signal_and_match_are_refused_as_unknown_ones(
    world: PortalWorld,
) -> None:
    with world.http() as gp, world.http() as carer:
        gp_csrf = world.sign_in(gp, GP, DOCTOR)
        carer_csrf = world.sign_in(carer, YOUTH_CARE, CARER)
        signal = _signal_id(_register(world, gp, gp_csrf, OTHER_BSN))
        _signal_id(_register(world, carer, carer_csrf, OTHER_BSN))
        match = re.search(r'href="/matches/([0-9a-f-]{36})"', gp.get("/matches").text)
        assert match is not None
        with world.http() as school:
            school_csrf = world.sign_in(school, SCHOOL, TEACHER)
            unknown = school.get(f"/meldingen/{UNKNOWN}")
            assert unknown.status_code == 403
            for path in (f"/meldingen/{signal}", f"/matches/{match[1]}"):
                answer = school.get(path)
                assert answer.status_code == 403
                assert _main(answer.text) == _main(unknown.text)  # the same page
            for path, data in (
                (f"/meldingen/{signal}/intrekken", {"reason": "unjustified", "confirm": "ja"}),
                (f"/meldingen/{signal}/contact", {"name": "Iemand Anders"}),
                (f"/meldingen/{signal}/verwijderdatum", {"remove_on": "2027-06-01"}),
                (f"/matches/{match[1]}/opvolging", {"event": "plan_agreed"}),
                (f"/matches/{match[1]}/overdragen", {"to": SCHOOL}),
            ):
                refused = school.post(path, data=data | {"csrf": school_csrf})
                assert refused.status_code == 403, path
        assert signal in gp.get("/meldingen").text  # still there
    refusals = _refusals(world)
    assert ("not_found", {"signal": signal}) in refusals
    assert ("not_found", {"match": match[1]}) in refusals


def test_the_coordinator_sees_the_organisations_signals(world: PortalWorld) -> None:
    with world.http() as carer, world.http() as coordinator:
        carer_csrf = world.sign_in(carer, YOUTH_CARE, CARER)
        signal = _signal_id(_register(world, carer, carer_csrf, _bsn(999999900)))
        coordinator_csrf = world.sign_in(coordinator, YOUTH_CARE, COORDINATOR)
        assert signal in coordinator.get("/meldingen").text
        assert coordinator.get(f"/meldingen/{signal}").status_code == 200
        # Another professional's signal of one's own organisation: not found either.
        theirs = _signal_id(_register(world, coordinator, coordinator_csrf, _bsn(555666700)))
        assert theirs not in carer.get("/meldingen").text
        assert carer.get(f"/meldingen/{theirs}").status_code == 403
        withdraw = {"reason": "unjustified", "confirm": "ja", "csrf": carer_csrf}
        assert carer.post(f"/meldingen/{theirs}/intrekken", data=withdraw).status_code == 403
        assert theirs in coordinator.get("/meldingen").text


@pytest.mark.parametrize(
    ("confirm", "child"),
    [(None, 777100000), ("", 777200000), ("nee", 777300000), ("JA", 777400000)],
)
def test_a_withdrawal_must_be_confirmed(
    world: PortalWorld, confirm: str | None, child: int
) -> None:
    """Found by a browser walk in stop 42: one click erased a signal for good (WCAG 2.1
    SC 3.3.4 asks that a deletion be reversible, checked or confirmed). Without the
    confirmation box ticked the withdrawal is refused naming it, and nothing changes."""
    with world.http() as gp:
        csrf = world.sign_in(gp, GP, DOCTOR)
        signal = _signal_id(_register(world, gp, csrf, _bsn(child)))
        form = {"reason": "unjustified", "csrf": csrf}
        if confirm is not None:
            form["confirm"] = confirm
        answer = gp.post(f"/meldingen/{signal}/intrekken", data=form)
        assert answer.status_code == 400, answer.text
        assert 'Controleer het veld "Bevestiging"'.replace('"', "&#34;") in answer.text
        assert gp.get(f"/meldingen/{signal}").status_code == 200
        form["confirm"] = "ja"
        done = gp.post(f"/meldingen/{signal}/intrekken", data=form)
        assert done.status_code == 303


def _main(html: str) -> str:
    return html.split('<main id="inhoud">', 1)[1].split("</main>", 1)[0]


@pytest.mark.parametrize(
    ("case", "status"),
    [("missing", 403), ("wrong", 403), ("origin", 403), ("json", 403), ("huge", 413)],
)
def test_forms_need_the_csrf_token_and_the_portals_origin(
    world: PortalWorld, case: str, status: int
) -> None:
    with world.http() as gp:
        csrf = world.sign_in(gp, GP, DOCTOR)
        epoch, (person,) = _pseudonyms(world, _bsn(222333400))
        form = {"csrf": csrf, "epoch": str(epoch), "person": person, "name": "Test Persoon"}
        if case == "missing":
            del form["csrf"]
            answer = gp.post("/meldingen/nieuw", data=form)
        elif case == "wrong":
            answer = gp.post("/meldingen/nieuw", data=form | {"csrf": "x" * 43})
        elif case == "origin":
            answer = gp.post(
                "/meldingen/nieuw", data=form, headers={"origin": "https://evil.example"}
            )
        elif case == "json":
            answer = gp.post("/meldingen/nieuw", json=form)
        else:
            answer = gp.post("/meldingen/nieuw", data=form | {"name": "x" * 20000})
        assert answer.status_code == status
        assert "/meldingen/" not in answer.headers.get("location", "")
    # A form over VIR_PORTAL_MAX_FORM_BYTES is its own refusal (413), not a stale form.
    reason = "form_too_large" if case == "huge" else "csrf"
    assert any(found == reason for found, _o in _refusals(world))


@pytest.mark.parametrize(
    "fields",
    [
        {"bsn": BSN},
        {"surname": "Pietersma", "birth_date": "2014-05-06", "gender": "v"},
        {"postcode": "3011AB", "house_number": "7"},
        {BSN: "1"},  # the BSN as a field's name
        {"parent1_bsn": BSN},
    ],
)
def test_identity_fields_posted_by_hand_are_refused_and_kept_nowhere(
    world: PortalWorld, fields: dict[str, str]
) -> None:
    with world.http() as gp:
        csrf = world.sign_in(gp, GP, DOCTOR)
        before = gp.get("/meldingen").text.count("/meldingen/")
        answer = _register(world, gp, csrf, _bsn(333444500), **fields)
        assert answer.status_code == 400
        assert "niet verwerkt" in answer.text
        for value in fields.values():
            assert value not in answer.text or len(value) < 2
        assert gp.get("/meldingen").text.count("/meldingen/") == before  # nothing stored
    assert ("unexpected_field", {}) in _refusals(world)
    for value in [*fields.values(), *fields.keys()]:
        if len(value) > 1:
            assert value not in world.logs()
            rows = world.service.sql("SELECT body FROM audit_entries")
            assert all(value.encode() not in _bytes(b) for (b,) in rows)


def _bytes(value: object) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("person", _b64(bytes(32)), "Jeugdige"),  # the identity element
        ("person", _b64((2**255 + 5).to_bytes(32, "little")), "Jeugdige"),  # bit 255
        ("person", _b64(b"\xff" * 32), "Jeugdige"),  # not a field element
        ("person", "too-short", "Jeugdige"),
        ("person", "", "Jeugdige"),  # no JavaScript: no pseudonym
        ("parent_1", _b64(b"\xff" * 32), "Ouder 1"),
        ("address", _b64(bytes(31)) + "AA", "Adres"),
        ("epoch", "0", "Sleutelperiode"),
        ("remove_on", "2020-01-01", "Verwijderdatum"),
        ("archive_until", "2020-01-01", "Geboortedatum"),  # 23 already: out of scope
        ("archive_until", "2026-02-30", "Geboortedatum"),
        ("email", "geen-adres", "E-mailadres"),
        ("function", "verzonnen", "Functie"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    world: PortalWorld, field: str, value: str, label: str
) -> None:
    with world.http() as gp:
        csrf = world.sign_in(gp, GP, DOCTOR)
        answer = _register(world, gp, csrf, _bsn(444555600), **{field: value})
        assert answer.status_code == 400, answer.text
        assert f'Controleer het veld "{label}"'.replace('"', "&#34;") in answer.text
        if field in ("remove_on", "email"):  # what the person typed is shown again
            assert f'value="{value}"' in answer.text
    assert ("invalid", {"field": field}) in _refusals(world)


def test_pages_need_a_reporting_role(world: PortalWorld) -> None:
    with world.http() as officer:
        world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        for path in ("/meldingen", "/meldingen/nieuw", "/matches", "/notificaties"):
            assert officer.get(path).status_code == 403
    assert any(reason == "forbidden" for reason, _o in _refusals(world))
    with world.http() as anonymous:
        for path in ("/meldingen", "/meldingen/nieuw", "/matches", "/notificaties"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/"
        assert anonymous.post("/meldingen/nieuw", data={"csrf": "x"}).status_code == 303


def test_a_page_that_does_not_exist_keeps_the_signed_in_header(world: PortalWorld) -> None:
    """Before: a signed-in person's 404 page had no name, menu or "Uitloggen"."""
    with world.http() as officer:
        world.sign_in(officer, MUNICIPALITY, PRIVACY_OFFICER)
        answer = officer.get("/bestaat-niet")
        assert answer.status_code == 404 and "Pagina niet gevonden" in answer.text
        assert "Uitloggen" in answer.text
    with world.http() as anonymous:
        answer = anonymous.get("/bestaat-niet")
        assert answer.status_code == 404 and "Uitloggen" not in answer.text


@pytest.mark.parametrize("path", ["/meldingen/", "/rapportages/"])
def test_a_trailing_slash_is_not_redirected_where_the_host_header_says(
    world: PortalWorld, path: str
) -> None:
    """Found by a browser walk in stop 42: Starlette's trailing-slash redirect built its
    Location from the Host header (307 to https://evil.example/meldingen), and a 307
    sends a form's body again. A path with a slash it does not have is a 404."""
    with world.http() as anonymous:
        answer = anonymous.get(path, headers={"Host": "evil.example"})
    assert answer.status_code == 404 and "location" not in answer.headers
    assert "evil.example" not in answer.text


def test_the_registration_page_gives_the_script_what_it_needs(world: PortalWorld) -> None:
    with world.http() as gp:
        world.sign_in(gp, GP, DOCTOR)
        page = gp.get("/meldingen/nieuw")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    holders = json.loads((world.dev / "endpoints.json").read_text())["keyholders"]
    connect = next(p for p in policy.split("; ") if p.startswith("connect-src"))
    assert connect.split()[1:] == ["'self'", *(h.rstrip("/") for h in holders)]
    assert "unsafe-inline" not in policy and "<script>" not in page.text
    for script in ("vir-blind.js", "pseudonym-form.js", "register.js"):
        assert re.search(rf'src="/static/{re.escape(script)}" integrity="sha384-', page.text)
    # The identity fields have no name: a form post cannot carry them.
    for field in ("bsn", "surname", "birth_date", "gender", "parent1_bsn", "postcode"):
        tag = re.search(rf'<(?:input|select) id="{field}"[^>]*>', page.text)
        assert tag is not None and "name=" not in tag[0]
    assert csrf_of(page.text)


def _match_of(http: httpx.Client) -> str:
    found = re.search(r'href="/matches/([0-9a-f-]{36})"', http.get("/matches").text)
    assert found is not None
    return found[1]


def test_the_coordinators_steps_and_a_handover(world: PortalWorld) -> None:
    with world.http() as gp, world.http() as carer:
        csrf = {
            "gp": world.sign_in(gp, GP, DOCTOR),
            "carer": world.sign_in(carer, YOUTH_CARE, CARER),
        }
        child = _bsn(666777800)
        _signal_id(_register(world, gp, csrf["gp"], child))
        _signal_id(_register(world, carer, csrf["carer"], child))
        match = _match_of(gp)
        people = {"gp": (gp, YOUTH_CARE), "carer": (carer, GP)}
        leads = [
            k
            for k, (h, _o) in people.items()
            if "Regie aanbieden" in h.get(f"/matches/{match}").text
        ]
        assert len(leads) == 1  # exactly one coordinator
        lead, other = leads[0], next(k for k in people if k != leads[0])
        lead_http, other_oin = people[lead]
        other_http, _lead_oin = people[other]
        path = f"/matches/{match}"
        # Only the coordinator records the plan; only the one offered the role answers.
        step = {"event": "plan_agreed", "csrf": csrf[other]}
        refused = other_http.post(f"{path}/opvolging", data=step)
        assert refused.status_code == 403 and "regisseur" in refused.text
        offer = {"to": other_oin, "csrf": csrf[lead]}
        assert lead_http.post(f"{path}/overdragen", data=offer).status_code == 303
        assert "Regie overnemen" in other_http.get(path).text
        answer = {"answer": "accept", "csrf": csrf[lead]}
        assert lead_http.post(f"{path}/overname", data=answer).status_code == 403
        decline = {"answer": "decline", "csrf": csrf[other]}
        assert other_http.post(f"{path}/overname", data=decline).status_code == 303
        assert "Regie aanbieden" in lead_http.get(path).text  # still the coordinator
        assert lead_http.post(f"{path}/overdragen", data=offer).status_code == 303
        accept = {"answer": "accept", "csrf": csrf[other]}
        assert other_http.post(f"{path}/overname", data=accept).status_code == 303
        assert "Uw organisatie is de regisseur" in other_http.get(path).text
        step = {"event": "plan_agreed", "csrf": csrf[other]}
        assert other_http.post(f"{path}/opvolging", data=step).status_code == 303
        care = {"event": "care_started", "csrf": csrf[other]}
        assert other_http.post(f"{path}/opvolging", data=care).status_code == 303
        again = other_http.post(f"{path}/opvolging", data=care)
        assert again.status_code == 409 and "al vastgelegd" in again.text
        page = lead_http.get(path).text
        assert "Plan afgesproken" in page and "Zorg gestart" in page
        notices = lead_http.get("/notificaties").text
        assert "Regie niet overgenomen" in notices and "Nieuwe regisseur" in notices
    assert any(reason == "forbidden" for reason, _o in _refusals(world))
    assert any(reason == "conflict" for reason, _o in _refusals(world))


def _walk(http: httpx.Client, path: str, found: re.Pattern[str]) -> list[list[str]]:
    """The ids ``found`` on each page of a list, following "Volgende pagina" from the
    first; every page's "Vorige pagina" leads to the page before it, exactly."""
    pages: list[list[str]] = []
    htmls: list[str] = []
    url: str | None = path
    while url is not None:
        answer = http.get(url)
        assert answer.status_code == 200, answer.text
        pages.append(found.findall(answer.text))
        htmls.append(answer.text)
        assert len(pages) < 100
        url = portal_lists.next_link(answer.text, path)
    assert portal_lists.previous_link(htmls[0], path) is None
    for before, html in zip(pages, htmls[1:], strict=False):
        back = portal_lists.previous_link(html, path)
        assert back is not None
        assert found.findall(http.get(back).text) == before
    return pages


def test_the_coordinators_list_is_every_signal_newest_first_a_page_at_a_time(
    world: PortalWorld,
) -> None:
    """Before: the coordinator saw 1000 of the organisation's signals, taken in id order
    (random), with no word that there were more, and the matches of those only."""
    url = world.service.database_url
    epoch, _ = _pseudonyms(world, _bsn(777888900))
    newest = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    portal_lists.seed(
        url, YOUTH_CARE, 1030, epoch=epoch, newest=newest, partner=SCHOOL, matched=130
    )
    with world.http() as coordinator:
        world.sign_in(coordinator, YOUTH_CARE, COORDINATOR)
        expected = portal_lists.newest_first(url, YOUTH_CARE)
        first = coordinator.get("/meldingen").text
        assert f"{len(expected)} actieve meldingen; 1–100 getoond" in first
        pages = _walk(coordinator, "/meldingen", portal_lists.SIGNAL_LINK)
        assert [len(p) for p in pages[:-1]] == [100] * (len(pages) - 1)
        assert [i for page in pages for i in page] == expected  # every one, in order
        second = coordinator.get(cast(str, portal_lists.next_link(first, "/meldingen"))).text
        assert f"{len(expected)} actieve meldingen; 101–200 getoond" in second

        matches = portal_lists.matches_of(url, YOUTH_CARE)
        page = coordinator.get("/matches").text
        assert re.search(rf"{len(matches)} matches bij \d+ meldingen; de matches van", page)
        found = _walk(coordinator, "/matches", portal_lists.MATCH_LINK)
        assert len(found) >= 2
        assert sorted(i for p in found for i in p) == sorted(matches)


def test_a_professionals_own_list_is_paged_too(world: PortalWorld) -> None:
    url = world.service.database_url
    with world.http() as carer, world.http() as coordinator:
        csrf = world.sign_in(carer, YOUTH_CARE, CARER)
        world.sign_in(coordinator, YOUTH_CARE, COORDINATOR)
        signal = _signal_id(_register(world, carer, csrf, _bsn(888999000)))
        person = portal_lists.person_of(url, signal)
        epoch, _ = _pseudonyms(world, _bsn(888999000))
        newest = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        portal_lists.seed(
            url,
            YOUTH_CARE,
            150,
            epoch=epoch,
            newest=newest,
            person=person,
            partner=GP,
            matched=3,
        )
        # Not the carer's: the organisation's, through the coordinator only.
        others = portal_lists.seed(
            url, YOUTH_CARE, 5, epoch=epoch, newest=newest, partner=GP, matched=1
        )
        expected = portal_lists.newest_first(url, YOUTH_CARE, person)
        assert expected[0] == signal and others[0] not in expected
        assert f"{len(expected)} actieve meldingen; 1–100 getoond" in carer.get("/meldingen").text
        pages = _walk(carer, "/meldingen", portal_lists.SIGNAL_LINK)
        assert [i for page in pages for i in page] == expected
        mine = portal_lists.matches_of(url, YOUTH_CARE, person)
        assert sorted(i for p in _walk(carer, "/matches", portal_lists.MATCH_LINK) for i in p) == (
            sorted(mine)
        )
        # A match of the organisation the carer has no signal in: as an unknown one.
        theirs = set(portal_lists.matches_of(url, YOUTH_CARE)) - set(mine)
        assert theirs
        for match in theirs:
            assert carer.get(f"/matches/{match}").status_code == 403
            assert coordinator.get(f"/matches/{match}").status_code == 200
        assert carer.get(f"/matches/{mine[0]}").status_code == 200


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "query",
    [
        "na=",
        "na=x",
        "na=%25%00",
        "voor=" + "A" * 200,
        "na=" + _cursor(f"1.{UNKNOWN}") + "&na=" + _cursor(f"2.{UNKNOWN}"),
        "na=" + _cursor(f"1.{UNKNOWN}") + "&voor=" + _cursor(f"2.{UNKNOWN}"),
        "na=" + _cursor(f"01.{UNKNOWN}"),  # not as the portal writes it
        "na=" + _cursor(f"1.{UNKNOWN}") + "==",
        "na=" + _cursor(f"-1.{UNKNOWN}"),
        "na=" + _cursor(f"999999999999999999.{UNKNOWN}"),  # past the year 9999
        "na=" + _cursor("1.ABCDEF00-0000-4000-8000-00000000000A"),  # not as written
        "na=" + _cursor("1.x' OR 1=1 --"),
        "voor=" + _cursor(f"1.{UNKNOWN}.1"),
    ],
)
def test_a_bad_page_cursor_is_a_refusal_page(world: PortalWorld, query: str) -> None:
    with world.http() as coordinator:
        world.sign_in(coordinator, YOUTH_CARE, COORDINATOR)
        for path in ("/meldingen", "/matches"):
            answer = coordinator.get(f"{path}?{query}")
            assert answer.status_code == 400, (path, query)
            assert "Pagina niet gevonden" in answer.text and "Uitloggen" in answer.text
        # A well-made cursor of no signal at all is a place in the list: a page.
        assert coordinator.get(f"/meldingen?na={_cursor(f'1.{UNKNOWN}')}").status_code == 200
    assert any(reason == "bad_cursor" for reason, _o in _refusals(world))


def test_household_matches_say_how_the_household_is_shared(world: PortalWorld) -> None:
    """Before: two household matches with the same organisation, one through a shared
    parent and one through the shared address, read the same on the list."""
    parent, address_text = _bsn(123123100), nl_address("3011AB", 9)
    with world.http() as gp, world.http() as school:
        csrf = {
            "gp": world.sign_in(gp, GP, DOCTOR),
            "school": world.sign_in(school, SCHOOL, TEACHER),
        }
        with world.service.client("gp") as client:
            made = client.pseudonymise([nl_bsn(parent), address_text])
        household = {"parent_1": made.pseudonyms[0], "address": made.pseudonyms[1]}
        _signal_id(_register(world, gp, csrf["gp"], _bsn(321321300), **household))
        ours = _signal_id(_register(world, school, csrf["school"], _bsn(321321400), **household))
        page = school.get("/matches").text
        assert page.count("Zelfde gezin (ouder)") == 1
        assert page.count("Zelfde gezin (adres)") == 1
        links = dict(re.findall(r'href="/matches/([0-9a-f-]{36})">Zelfde gezin \((\w+)\)', page))
        assert sorted(links.values()) == ["adres", "ouder"]
        for match, how in links.items():
            shown = school.get(f"/matches/{match}").text
            assert f"Match: zelfde gezin ({how})" in shown
        signal_page = school.get(f"/meldingen/{ours}").text
        assert "(zelfde gezin, ouder)" in signal_page and "(zelfde gezin, adres)" in signal_page


@pytest.mark.parametrize("field", ["name", "csrf"])
def test_a_field_given_twice_is_an_unexpected_form_not_a_stale_one(
    world: PortalWorld, field: str
) -> None:
    """A form of the portal's own pages gives each field once. A field of the form given
    twice, with the session's token: 400 ``unexpected_field`` (it was refused and audited
    as a stale or forged form, 403 ``csrf``, which it is not). The token given twice
    stays a ``csrf`` refusal: which of the two to believe is not for the portal to pick."""
    with world.http() as gp:
        csrf = world.sign_in(gp, GP, DOCTOR)
        before = gp.get("/meldingen").text.count("/meldingen/")
        epoch, (person,) = _pseudonyms(world, _bsn(333444501))
        form = [
            ("csrf", csrf),
            ("epoch", str(epoch)),
            ("person", person),
            ("name", "Test Persoon"),
            (field, "Ander Persoon" if field == "name" else csrf),
        ]
        answer = gp.post(
            "/meldingen/nieuw",
            content="&".join(f"{k}={quote_plus(v)}" for k, v in form),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert gp.get("/meldingen").text.count("/meldingen/") == before  # nothing stored
    if field == "name":
        assert answer.status_code == 400
        assert "niet verwerkt" in answer.text
        assert ("unexpected_field", {}) in _refusals(world)
    else:
        assert answer.status_code == 403
        assert _refusals(world)[-1][0] == "csrf"


@pytest.mark.parametrize(
    "body",
    [b"csrf=\xff\xfe&name=x", b"&".join(b"f%d=1" % i for i in range(65))],
    ids=["not-utf-8", "65-fields"],
)
def test_an_unreadable_form_is_refused_as_one_not_as_a_forged_one(
    world: PortalWorld, body: bytes
) -> None:
    """Found by a browser walk in stop 42: a form that is not UTF-8, or has more fields
    than the portal reads, was refused and audited as a CSRF failure (403), swelling the
    privacy report's CSRF counts. It is 400 ``malformed_form``. (And the portal reads up
    to 64 fields: the contact form has 50 checkboxes and the token; 50 were read.)"""
    with world.http() as gp:
        world.sign_in(gp, GP, DOCTOR)
        answer = gp.post(
            "/meldingen/nieuw",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 400, answer.text
    assert "kon niet worden gelezen" in answer.text
    assert _refusals(world)[-1][0] == "malformed_form"
