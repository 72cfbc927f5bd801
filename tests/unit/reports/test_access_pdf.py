"""The data-subject access report: a readable Dutch PDF of everything the index holds."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from vir.audit.actions import Action
from vir.domain.coordination import FollowUp
from vir.domain.lifecycle import InformedWho
from vir.domain.matching import NotificationType, Via
from vir.reports.access_pdf import ACTION_LABELS, TITLE, render_access_report

pytestmark = pytest.mark.sqlite_only("rendering a PDF from given data: no database")

SCHOOL = {"oin": "00000001003214345000", "name": "Erasmus College", "category": "education"}
GP = {"oin": "00000001003214345001", "name": "Huisartsenpraktijk De Linde", "category": "gp"}
YOUTH_CARE = {
    "oin": "00000001003214345002",
    "name": "Jeugdhulp Rijnmond",
    "category": "youth_care",
}
VEILIG_THUIS = {
    "oin": "00000001003214345003",
    "name": "Veilig Thuis Rotterdam Rijnmond",
    "category": "veilig_thuis",
}

S1 = "0f8a3c1e-6d1b-4d8e-9a55-1c2b3d4e5f60"
S2 = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
S3 = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
S_PARENT = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
M_PERSON = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
M_ADDRESS = "8d7c6b5a-4938-4271-8069-5e4d3c2b1a09"
M_PARENT = "7c6b5a49-3827-4160-9f58-4d3c2b1a0998"

# Actions the logbook uses, each with the Dutch label the report must print.
ACTIONS = [
    "signal.registered",
    "signal.informed",
    "match.created",
    "notification.created",
    "notification.read",
    "match.member_added",
    "signal.contact_changed",
    "consultation.made",
    "match.member_removed",
    "match.ended",
    "signal.withdrawn",
    "signal.archived",
    "signal.expired",
    "access.requested",
]


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _org(org: dict[str, str]) -> dict[str, str]:
    return {"oin": org["oin"], "name": org["name"]}


def _participant(org: dict[str, str], since: str) -> dict[str, Any]:
    return {"organisation": _org(org), "since": since}


def _audit(count: int) -> list[dict[str, Any]]:
    start = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
    orgs = [SCHOOL["oin"], GP["oin"], YOUTH_CARE["oin"], VEILIG_THUIS["oin"], None]
    entries = []
    for seq in range(1, count + 1):
        action = ACTIONS[seq % len(ACTIONS)]
        objects: dict[str, Any] = {"signal": [S1, S2, S3, S_PARENT][seq % 4]}
        if action.startswith("match."):
            objects["match"] = [M_PERSON, M_ADDRESS, M_PARENT][seq % 3]
        entries.append(
            {
                "seq": seq,
                "occurred_at": _ts(start + timedelta(days=3 * seq, minutes=7 * seq)),
                "action": action,
                "outcome": "refused" if seq % 17 == 0 else "success",
                "organisation": orgs[seq % len(orgs)],
                "objects": objects,
            }
        )
    return entries


def realistic_report() -> dict[str, Any]:
    """Three reporting organisations, Veilig Thuis, matches of every kind, 60 log entries."""
    return {
        "request_id": "5d0c7a2e-8f3b-4e1a-9c6d-2b7e4f1a0c93",
        "generated_at": "2026-11-22T09:00:00.000000Z",
        "region": "Rotterdam",
        "signals": [
            {
                "signal_id": S1,
                "status": "active",
                "organisation": SCHOOL,
                "professional": {
                    "name": "Şükrü Yılmaz",
                    "email": "s.yilmaz@erasmuscollege.example.nl",
                    "phone": "010-555 12 34",
                    "function": "zorgcoordinator",
                    "function_label": "Zorgcoördinator",
                },
                "registered_at": "2026-03-05T10:30:00.000000Z",
                "remove_on": "2028-03-05",
                "archived_on": None,
                "destroy_on": None,
                "informed": {"on": "2026-03-12", "who": "both"},
                "matches": [
                    {
                        "id": M_PERSON,
                        "kind": "person",
                        "via": "person",
                        "active": True,
                        "created_at": "2026-04-01T07:45:00.000000Z",
                        "participants": [
                            _participant(SCHOOL, "2026-04-01T07:45:00.000000Z"),
                            _participant(GP, "2026-04-01T07:45:00.000000Z"),
                            _participant(YOUTH_CARE, "2026-05-20T12:00:00.000000Z"),
                        ],
                    },
                    {
                        "id": M_ADDRESS,
                        "kind": "household",
                        "via": "address",
                        "active": False,
                        "created_at": "2026-06-15T14:00:00.000000Z",
                        "participants": [
                            _participant(SCHOOL, "2026-06-15T14:00:00.000000Z"),
                            _participant(YOUTH_CARE, "2026-06-15T14:00:00.000000Z"),
                        ],
                    },
                ],
            },
            {
                "signal_id": S2,
                "status": "active",
                "organisation": GP,
                "professional": {
                    "name": "Łukasz Wróbel",
                    "email": "l.wrobel@delinde.example.nl",
                    "phone": None,
                    "function": None,
                },
                "registered_at": "2026-04-01T07:45:00.000000Z",
                "remove_on": "2028-04-01",
                "archived_on": None,
                "destroy_on": None,
                "informed": None,
                "matches": [
                    {
                        "id": M_PERSON,
                        "kind": "person",
                        "via": "person",
                        "active": True,
                        "created_at": "2026-04-01T07:45:00.000000Z",
                        "participants": [
                            _participant(SCHOOL, "2026-04-01T07:45:00.000000Z"),
                            _participant(GP, "2026-04-01T07:45:00.000000Z"),
                            _participant(YOUTH_CARE, "2026-05-20T12:00:00.000000Z"),
                        ],
                    },
                    {
                        "id": M_PARENT,
                        "kind": "household",
                        "via": "parent",
                        "active": True,
                        "created_at": "2026-07-01T09:00:00.000000Z",
                        "participants": [
                            _participant(GP, "2026-07-01T09:00:00.000000Z"),
                            _participant(YOUTH_CARE, "2026-07-01T09:00:00.000000Z"),
                        ],
                    },
                ],
            },
            {
                "signal_id": S3,
                "status": "archived",
                "organisation": YOUTH_CARE,
                "professional": {
                    "name": "Anneke de Vries-Bakker",
                    "email": "a.devries@jeugdhulp-rijnmond.example.nl",
                    "phone": "+31 10 555 98 76",
                    "function": "jeugdhulpverlener",
                    "function_label": "Jeugdhulpverlener",
                },
                "registered_at": "2026-05-20T12:00:00.000000Z",
                "remove_on": "2028-05-20",
                "archived_on": "2026-10-01",
                "destroy_on": "2031-10-01",
                "informed": {"on": "2026-05-27", "who": "representative"},
                "matches": [],
            },
        ],
        "as_parent": [
            {
                "signal_id": S_PARENT,
                "status": "active",
                "organisation": YOUTH_CARE,
                "registered_at": "2026-07-01T09:00:00.000000Z",
            }
        ],
        "consultations": [
            {
                "occurred_at": "2026-08-03T13:20:00.000000Z",
                "organisation": _org(VEILIG_THUIS),
                "purpose": "safety_assessment",
            }
        ],
        "audit": _audit(60),
    }


def empty_report() -> dict[str, Any]:
    return {
        "request_id": "5d0c7a2e-8f3b-4e1a-9c6d-2b7e4f1a0c93",
        "generated_at": "2026-11-22T09:00:00.000000Z",
        "region": "Rotterdam",
        "signals": [],
        "as_parent": [],
        "consultations": [],
        "audit": [],
    }


def _pages(data: bytes) -> list[str]:
    """The text of each page, whitespace collapsed (extraction spacing is not layout)."""
    reader = PdfReader(io.BytesIO(data))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render_access_report(realistic_report())


@pytest.fixture(scope="module")
def text(rendered: bytes) -> str:
    return "\n".join(_pages(rendered))


def test_dutch_headings_and_title(text: str) -> None:
    for heading in [
        "Overzicht van gegevens in de verwijsindex (inzageverzoek, AVG art. 15)",
        "Wat is de verwijsindex?",
        "Wat staat er niet in de verwijsindex?",
        "Meldingen over u",
        "Matches bij deze melding",
        "Meldingen waarin u als ouder staat",
        "Raadplegingen door Veilig Thuis",
        "Logboek",
        "Uw rechten",
    ]:
        assert heading in text, heading


def test_metadata(rendered: bytes) -> None:
    reader = PdfReader(io.BytesIO(rendered))
    assert reader.metadata is not None
    assert reader.metadata.title == TITLE
    assert reader.metadata.creation_date == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_explains_what_the_index_does_not_hold(text: str) -> None:
    for phrase in ["geen reden", "risico's", "dossier", "burgerservicenummer (BSN)", "pseudoniem"]:
        assert phrase in text, phrase


def test_every_organisation_is_named(text: str) -> None:
    for org in (SCHOOL, GP, YOUTH_CARE, VEILIG_THUIS):
        assert org["name"] in text, org["name"]
    for category in ("onderwijs", "huisarts", "jeugdhulp"):
        assert f"({category})" in text


def test_every_professionals_contact_details(text: str) -> None:
    report = realistic_report()
    for signal in report["signals"]:
        professional = signal["professional"]
        # The function as its Dutch label (the code is for systems, not for the reader).
        for field in ("name", "email", "phone", "function_label"):
            if professional.get(field) is not None:
                assert professional[field] in text, professional[field]
    assert "niet opgegeven" in text  # the GP gave no phone number and no function


def test_names_outside_latin_1_are_readable(text: str) -> None:
    assert "Şükrü Yılmaz" in text
    assert "Łukasz Wróbel" in text


def test_signal_status_dates_and_information_duty(text: str) -> None:
    assert "Status actief" in text
    assert "Status gearchiveerd" in text
    assert "Uiterlijk verwijderd op 5 maart 2028" in text
    assert "Gearchiveerd op 1 oktober 2026" in text
    assert "Uiterlijk vernietigd op 1 oktober 2031" in text
    # Registered 10:30 UTC in March: 11:30 in the Netherlands (winter time).
    assert "Gemeld op 5 maart 2026 11:30" in text
    assert "Geïnformeerd beiden (jongere en wettelijk vertegenwoordiger), op 12 maart 2026" in text
    assert "Geïnformeerd nog niet bevestigd" in text
    assert "Geïnformeerd wettelijk vertegenwoordiger, op 27 mei 2026" in text


def test_matches_in_dutch_with_the_other_organisations(text: str) -> None:
    # Person match seen from the school: the GP and youth care, not the school itself.
    assert (
        "1 persoon persoon actief 1 april 2026 09:45 "
        "Huisartsenpraktijk De Linde (sinds 1 april 2026) "
        "Jeugdhulp Rijnmond (sinds 20 mei 2026)"
    ) in text
    assert "2 huishouden adres beëindigd 15 juni 2026 16:00" in text
    # Summer time: 09:00 UTC on 1 July is 11:00 in the Netherlands.
    assert "3 huishouden ouder actief 1 juli 2026 11:00" in text


def test_as_parent_and_consultations(text: str) -> None:
    assert "O1 Jeugdhulp Rijnmond (jeugdhulp) 1 juli 2026 11:00 actief" in text
    assert "3 augustus 2026 15:20 Veilig Thuis Rotterdam Rijnmond veiligheidsbeoordeling" in text


def test_logbook_in_dutch_local_time(text: str) -> None:
    for action in ACTIONS:
        assert ACTION_LABELS[action] in text, action
    assert "verwijsindex (automatisch)" in text  # entries without an organisation
    assert "geweigerd" in text
    first = _audit(1)[0]
    assert first["occurred_at"] == "2026-03-05T08:22:00.000000Z"
    assert "1 5 maart 2026 09:22:00" in text
    # Objects are named as the reader knows them from the sections above.
    assert "melding 2" in text
    assert "melding O1 (als ouder)" in text
    assert "match 3" in text


def test_spans_pages_numbered_and_repeats_the_logbook_header(rendered: bytes) -> None:
    pages = _pages(rendered)
    assert len(pages) >= 3
    for number, page in enumerate(pages, 1):
        assert f"Pagina {number} van {len(pages)}" in page
    header = "Nr. Datum en tijd Handeling Organisatie Resultaat Betreft"
    logbook_pages = [page for page in pages if "Matchbericht gelezen" in page]
    assert len(logbook_pages) >= 2
    for page in logbook_pages:
        assert header in page


def test_rights_and_contact(text: str) -> None:
    for right in (
        "Inzage (AVG artikel 15)",
        "Correctie (AVG artikel 16)",
        "Verwijdering (AVG artikel 17)",
        "Bezwaar (AVG artikel 21)",
    ):
        assert right in text
    assert "privacyfunctionaris" in text
    assert "5d0c7a2e-8f3b-4e1a-9c6d-2b7e4f1a0c93" in text


def test_a_regional_answer_says_it_is_the_regions_part(text: str) -> None:
    """A person may have signals in other regions: the document handed to them says that
    it covers one region, without saying whether others hold anything."""
    assert "Omvang regio Rotterdam: meldingen van organisaties in deze regio" in text
    assert "Organisaties in andere regio's kunnen ook meldingen hebben gedaan" in text
    assert "ook niet als er geen zijn" in text


def test_the_national_officers_answer_covers_every_region() -> None:
    report = realistic_report()
    report["region"] = None
    text = " ".join(_pages(render_access_report(report)))
    assert "Omvang de hele verwijsindex: alle regio's" in text
    assert "andere regio's kunnen" not in text


def test_empty_sections_say_geen() -> None:
    text = "\n".join(_pages(render_access_report(empty_report())))
    assert text.count("Geen.") == 4
    assert "Meldingen over u" in text
    assert "Logboek" in text
    assert "Uw rechten" in text


def test_a_signal_without_matches_says_geen(text: str) -> None:
    archived = text.index("Melding 3: Jeugdhulp Rijnmond")
    assert text.index("Matches bij deze melding Geen.", archived) > archived


def test_unknown_codes_print_as_themselves() -> None:
    report = realistic_report()
    report["signals"][0]["organisation"] = {**SCHOOL, "category": "ministry_of_magic"}
    report["consultations"][0]["purpose"] = "curiosity"
    report["audit"][0]["action"] = "signal.offered_from_archive"
    text = "\n".join(_pages(render_access_report(report)))
    assert "Erasmus College (ministry_of_magic)" in text
    assert "curiosity" in text
    # Too long for its column: it wraps inside the word, and all of it is there.
    assert "signal.offered_from_archive" in "".join(text.split())


def test_fields_outside_the_shape_are_never_printed() -> None:
    report = realistic_report()
    report["pseudonym"] = "PSEUDONYM-TOP-LEVEL"
    report["signals"][0]["pseudonym"] = "PSEUDONYM-IN-SIGNAL"
    report["signals"][0]["organisation"] = {**SCHOOL, "note": "NOTE-IN-ORGANISATION"}
    text = "\n".join(_pages(render_access_report(report)))
    assert "PSEUDONYM" not in text
    assert "NOTE-IN-ORGANISATION" not in text


def test_accepts_what_the_access_service_leaves_out_or_adds() -> None:
    report = realistic_report()
    signal = report["signals"][0]
    del signal["archived_on"], signal["destroy_on"]  # active signals carry neither
    signal["local_ref"] = "DOSSIER-4711"  # the organisation's own reference: not shown
    signal["matches"][1]["participants"] = []  # household: others reported on another child
    report["consultations"][0]["purpose"] = None
    report["audit"].append(
        {
            "seq": 61,
            "occurred_at": "2026-11-22T09:00:00.000000Z",
            "action": "access.requested",
            "outcome": "success",
            "organisation": None,
            "objects": {"request": report["request_id"], "signals": 3},
        }
    )
    text = "\n".join(_pages(render_access_report(report)))
    assert "niet vermeld (melding over een andere jongere)" in text
    assert "aantal meldingen: 3" in text
    assert "DOSSIER-4711" not in text


def test_rendering_is_deterministic(rendered: bytes) -> None:
    assert render_access_report(realistic_report()) == rendered
    later = realistic_report()
    later["generated_at"] = "2026-11-23T09:00:00.000000Z"
    assert render_access_report(later) != rendered


def test_same_bytes_in_another_process_hash_seed_and_time_zone(rendered: bytes) -> None:
    code = (
        "import hashlib, json, sys\n"
        "from vir.reports.access_pdf import render_access_report\n"
        "data = render_access_report(json.load(sys.stdin))\n"
        "print(hashlib.sha256(data).hexdigest())\n"
    )
    env = os.environ | {"PYTHONHASHSEED": "4711", "TZ": "Asia/Tokyo"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(realistic_report()),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    assert out == hashlib.sha256(rendered).hexdigest()


def test_input_is_not_modified() -> None:
    report = realistic_report()
    before = copy.deepcopy(report)
    render_access_report(report)
    assert report == before


def test_a_report_without_its_region_is_refused() -> None:
    report = realistic_report()
    del report["region"]
    with pytest.raises(ValueError, match="region"):
        render_access_report(report)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("generated_at",), "22-11-2026", "generated_at"),
        (("generated_at",), "2026-11-22T09:00:00", "generated_at"),
        (("signals", 0, "remove_on"), None, "remove_on"),
        (("signals", 0, "matches", 0, "active"), "yes", "active"),
        (("audit", 0, "seq"), "12", "seq"),
        (("as_parent",), {}, "as_parent"),
        (("region",), 7, "region"),
    ],
)
def test_a_malformed_report_names_the_field(
    path: tuple[str | int, ...], value: Any, field: str
) -> None:
    report = realistic_report()
    target: Any = report
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=field):
        render_access_report(report)


# Every action with its objects as its emitters write them; None: its objects never name
# a signal or a match, so the access service never puts it in a person's logbook
# (vir.store.audit_log.entries_mentioning). A new action fails here until it is decided.
_NOTIFICATION = "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a0f9"
_CONSULTATION = "5d4c3b2a-1908-4f7e-a5d4-c3b2a1f0e9d8"
OBJECTS_OF: dict[Action, dict[str, str | int] | None] = {
    Action.SIGNAL_REGISTERED: {"signal": S1, "remove_on": "2028-12-04"},
    Action.SIGNAL_WITHDRAWN: {"signal": S1},
    Action.SIGNAL_INFORMED: {"signal": S1, "informed": "young_person"},
    Action.SIGNAL_CONTACT_CHANGED: {"signal": S1},
    Action.SIGNAL_REMOVAL_CHANGED: {"signal": S1, "remove_on": "2027-06-30"},
    Action.SIGNAL_EXPIRED: {"signal": S1, "remove_on": "2026-11-01"},
    Action.SIGNAL_ARCHIVED: {"signal": S1, "destroy_on": "2031-11-01"},
    Action.SIGNAL_ERASED: {"signal": S1},
    Action.SIGNAL_DESTROYED: {"signal": S1},
    Action.MATCH_CREATED: {"match": M_PERSON, "via": "person"},
    Action.MATCH_MEMBER_ADDED: {"match": M_ADDRESS, "signal": S2},
    Action.MATCH_MEMBER_REMOVED: {"match": M_ADDRESS, "signal": S2},
    Action.MATCH_ENDED: {"match": M_PERSON},
    Action.MATCH_COORDINATOR_SET: {"match": M_PERSON, "signal": S1},
    Action.MATCH_HANDOVER_OFFERED: {"match": M_PERSON, "signal": S1, "to": S2},
    Action.MATCH_HANDOVER_ACCEPTED: {"match": M_PERSON, "signal": S2},
    Action.MATCH_HANDOVER_DECLINED: {"match": M_PERSON, "signal": S2},
    Action.MATCH_FOLLOW_UP_RECORDED: {
        "match": M_PERSON,
        "event": "contact_made",
        "with": GP["oin"],
    },
    Action.MATCH_REMINDED: {"match": M_PERSON, "region": "Rotterdam", "organisations": 2},
    Action.FOLLOW_UP_OVERDUE_LISTED: None,
    Action.NOTIFICATION_CREATED: {
        "notification": _NOTIFICATION,
        "match": M_PERSON,
        "signal": S1,
        "type": "match.created",
    },
    Action.NOTIFICATIONS_READ: None,
    Action.DELIVERY_DELIVERED: None,
    Action.DELIVERY_DEAD: None,
    Action.ARCHIVE_OFFERED: {"signal": S2, "archived_signal": S3, "notification": _NOTIFICATION},
    Action.CONSULTATION_MADE: None,
    Action.CONSULTATION_DISCLOSED: {"consultation": _CONSULTATION, "signal": S1},
    Action.CONSULTATION_FEEDBACK: None,
    Action.ORGANISATIONS_LISTED: None,
    Action.ACCESS_REQUESTED: None,
    Action.ERASURE_EXECUTED: None,
    Action.PERSON_DECEASED: None,
    Action.LIFECYCLE_RUN: None,
    Action.REPORT_GENERATED: None,
    Action.OPRF_EVALUATE: None,
    Action.REQUEST_REFUSED: None,
    Action.ORGANISATION_COORDINATOR_CHANGED: None,
    Action.ADMIN_ORGANISATION_ADDED: None,
    Action.ADMIN_ORGANISATION_REMOVED: None,
    Action.ORGANISATION_DELETED: None,
    Action.ADMIN_CERTIFICATE_REGISTERED: None,
    Action.ADMIN_CERTIFICATE_REVOKED: None,
    Action.ADMIN_ADDRESS_EXCLUDED: None,
    Action.ADMIN_ADDRESS_INCLUDED: None,
    Action.ADMIN_WEBHOOK_CHANGED: None,
    Action.ADMIN_EMAIL_CHANGED: None,
    Action.ADMIN_DELIVERY_RETRIED: None,
    Action.ADMIN_COORDINATION_CHANGED: None,
    Action.ADMIN_OIDC_CHANGED: None,
    Action.ADMIN_FOLLOW_UP_CHANGED: None,
    Action.PORTAL_SIGNED_IN: None,
    Action.PORTAL_SIGNED_OUT: None,
    Action.PORTAL_SIGN_IN_REFUSED: None,
    Action.PORTAL_REQUEST_REFUSED: {"signal": S1},
    Action.KEY_REKEY_STARTED: None,
    Action.KEY_REKEY_SWITCHED: None,
    Action.KEY_EPOCH_RETIRED: None,
    Action.KEY_EPOCH_CREATED: None,
    Action.KEY_EPOCH_ACTIVATED: None,
    Action.KEY_SHARE_REPAIR_JOINED: None,
    Action.KEY_SHARE_REPAIR_DEALT: None,
    Action.KEY_SHARE_REPAIR_SUMMED: None,
    Action.KEY_SHARE_REPAIR_RESTORED: None,
    Action.KEY_GENERATION_STARTED: None,
    Action.KEY_GENERATION_DEALT: None,
    Action.KEY_GENERATION_FINISHED: None,
}


# The other values of a code the emitters may write, each in a logbook line of its own.
def _line(action: Action, objects: dict[str, str | int]) -> tuple[Action, dict[str, str | int]]:
    return action, objects


MORE_CODES = [
    *[
        _line(Action.NOTIFICATION_CREATED, {"signal": S1, "match": M_PERSON, "type": kind.value})
        for kind in NotificationType
    ],
    *[_line(Action.MATCH_CREATED, {"match": M_PERSON, "via": via.value}) for via in Via],
    *[_line(Action.SIGNAL_INFORMED, {"signal": S1, "informed": who.value}) for who in InformedWho],
    *[
        _line(Action.MATCH_FOLLOW_UP_RECORDED, {"match": M_PERSON, "event": e.value, "with": "-"})
        for e in FollowUp
    ],
]


def test_every_action_is_decided_for_the_logbook() -> None:
    assert set(OBJECTS_OF) == set(Action)


def _logbook_of(entries: list[tuple[Action, dict[str, str | int]]]) -> str:
    report = realistic_report()
    report["audit"] = [
        {
            "seq": seq,
            "occurred_at": "2026-12-04T10:00:00.000000Z",
            "action": action.value,
            "outcome": "success",
            "organisation": SCHOOL["oin"],
            "objects": objects,
        }
        for seq, (action, objects) in enumerate(entries, 1)
    ]
    text = "\n".join(_pages(render_access_report(report)))
    return text[text.index("Logboek Elke handeling") : text.index("Uw rechten")]


def test_the_logbook_shows_no_key_and_no_code_of_any_actions_objects() -> None:
    entries = [(a, o) for a, o in OBJECTS_OF.items() if o is not None] + MORE_CODES
    logbook = _logbook_of(entries)
    words = set(logbook.split())
    joined = "".join(logbook.split())  # a long word may wrap inside its cell
    for _action, objects in entries:
        for key, value in objects.items():
            if key not in ("match", "via"):  # Dutch words too
                assert key not in words and f"{key}:" not in words, key
            if isinstance(value, str) and value[:1].islower():  # a code, not an id or name
                assert value not in joined, value
    assert not re.search(r"\d{4}-\d{2}-\d{2}", logbook), "a date as the log keeps it"
    for dutch in (
        "uiterlijk verwijderd op 4 december 2028",
        "uiterlijk vernietigd op 1 november 2031",
        "soort bericht: nieuwe match",
        "geïnformeerd: jongere",
        "vervolgstap: contact gelegd",
        "met Huisartsenpraktijk De Linde",
        "regierol aangeboden aan melding 2",
        "uit het archief getoond: melding 3",
    ):
        assert "".join(dutch.split()) in joined, dutch
