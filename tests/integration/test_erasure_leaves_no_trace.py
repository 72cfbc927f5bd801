"""After an erasure nothing in the database still holds the erased reporter (issue 12).

Organisations A, B and C register about one child (A and B) and its sibling (C), all
naming the same mother: B and C hold notifications that show A's professional. Then
A's signal is erased, through the HTTP API only, every way it can be: withdrawal as
unjustified, objection, correction or deceased, a privacy officer's erasure, objection
or death notice. Afterwards every table the store declares
(``Base.metadata.sorted_tables``, so a table added later is searched too) is read row
by row, and no text or binary value may contain A's professional's name, e-mail or
phone, old or new (A changed them once, so older notifications show the old ones),
nor A's signal id. The audit log (``audit_entries``, ``audit_refs``) is append-only
and names signal ids by design, so the id is allowed there; contact details are not,
not even there.

The opposite: a withdrawal because the risk ended archives A's signal, and the archive
keeps A's details (by law, five years); no notification does (docs/matching.md,
Retention). And an archived signal offered to a new reporter (``match.historical``)
leaves no trace once a privacy officer erases it or a death notice comes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.inapp import InApp, in_app
from support.instore import ORGS, T0
from support.world import MUNICIPALITY, person

from vir.api.identity import require_caller
from vir.domain.encoding import b64url_encode
from vir.domain.organisations import Role
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.store.tables import Base

A, B, C = 0, 1, 2
OFFICER = Caller(MUNICIPALITY, "f" * 64, Role.PRIVACY_OFFICER)
AUDIT_LOG = {"audit_entries", "audit_refs"}
FIRST = {"name": "Aafke Zwanenburg", "email": "aafke.zwanenburg@school-a.example"}
CHANGED = {
    "name": "Berber IJsselstein",
    "email": "b.ijsselstein@school-a.example",
    "phone": "010-7654321",
}
ARCHIVED = {"name": "Cor Kwakernaak", "email": "cor.kwakernaak@school-a.example"}
OTHERS = [
    {"name": "Dirk Brouwer", "email": "dirk.brouwer@huisarts-b.example"},
    {"name": "Eva Smits", "email": "eva.smits@jeugdzorg-c.example", "phone": "06-12345678"},
]


def traces(app: InApp, needles: list[str]) -> set[tuple[str, str]]:
    """(table, needle) for every needle found in any text or binary value of any row."""
    found = set()
    with app.app.state.services.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                for value in row:
                    if isinstance(value, str):
                        found |= {(table.name, n) for n in needles if n in value}
                    elif isinstance(value, bytes | bytearray | memoryview):
                        raw = bytes(value)
                        found |= {(table.name, n) for n in needles if n.encode() in raw}
    return found


def contact(details: dict[str, str]) -> list[str]:
    return list(details.values())


def act(app: InApp, caller: Caller, method: str, path: str, **kwargs: Any) -> Any:
    app.app.dependency_overrides[require_caller] = lambda: caller
    reply = app.request(method, path, **kwargs)
    assert reply.is_success, (method, path, reply.status_code, reply.text)
    return reply.json() if reply.content else None


def register(
    app: InApp, org: int, ref: str, who: str, professional: dict[str, str], **extra: Any
) -> str:
    body = {
        "local_ref": ref,
        "epoch": app.epoch,
        "person": b64url_encode(person(who)),
        "professional": professional,
        **extra,
    }
    signal_id: str = act(app, reporter(org), "POST", "/v1/signals", json=body)["signal_id"]
    return signal_id


def reporter(org: int) -> Caller:
    return Caller(ORGS[org], f"{org:064x}")


def pseudonym(app: InApp, who: str) -> dict[str, Any]:
    return {
        "epoch": app.epoch,
        "person": b64url_encode(person(who)),
    }


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as made:
        register_organisation(made.app.state.services.db, MUNICIPALITY, T0)
        yield made


def scene(app: InApp) -> str:
    """A, B and C on Kim and her sibling Sem (mother Mum); A's details changed once.
    Returns A's signal id."""
    mum = {"parents": [b64url_encode(person("Mum"))]}
    signal_id = register(app, A, "A-kim", "Kim", FIRST, **mum)
    register(app, B, "B-kim", "Kim", OTHERS[0])
    register(app, C, "C-sem", "Sem", OTHERS[1], **mum)
    act(app, reporter(A), "PATCH", "/v1/signals/A-kim", json={"professional": CHANGED})
    return signal_id


ERASURES = {
    "withdrawn-unjustified": lambda app, _id: act(
        app, reporter(A), "DELETE", "/v1/signals/A-kim", params={"reason": "unjustified"}
    ),
    "withdrawn-objection": lambda app, _id: act(
        app, reporter(A), "DELETE", "/v1/signals/A-kim", params={"reason": "objection"}
    ),
    "withdrawn-correction": lambda app, _id: act(
        app, reporter(A), "DELETE", "/v1/signals/A-kim", params={"reason": "correction"}
    ),
    "withdrawn-deceased": lambda app, _id: act(
        app, reporter(A), "DELETE", "/v1/signals/A-kim", params={"reason": "deceased"}
    ),
    "officer-erasure": lambda app, signal_id: act(
        app,
        OFFICER,
        "POST",
        "/v1/privacy/erasure",
        json=pseudonym(app, "Kim") | {"kind": "erasure", "signals": [signal_id]},
    ),
    "officer-objection": lambda app, signal_id: act(
        app,
        OFFICER,
        "POST",
        "/v1/privacy/erasure",
        json=pseudonym(app, "Kim") | {"kind": "objection", "signals": [signal_id]},
    ),
    "officer-correction-all": lambda app, _id: act(
        app,
        OFFICER,
        "POST",
        "/v1/privacy/erasure",
        json=pseudonym(app, "Kim") | {"kind": "correction"},
    ),
    "death-notice": lambda app, _id: act(
        app, OFFICER, "POST", "/v1/privacy/deaths", json=pseudonym(app, "Kim")
    ),
}


# These erase every signal on Kim, B's too.
ALL_ON_KIM = {"officer-correction-all", "death-notice"}


@pytest.mark.parametrize("how", list(ERASURES))
def test_an_erased_reporter_leaves_no_trace(app: InApp, how: str) -> None:
    signal_id = scene(app)
    details = contact(FIRST) + contact(CHANGED)
    before = traces(app, [*details, signal_id])
    # Not vacuous: B's and C's notifications show A, old details and new.
    assert {("notifications", d) for d in details} <= before
    assert {("signals", d) for d in contact(CHANGED)} <= before
    assert ("notification_signals", signal_id) in before

    ERASURES[how](app, signal_id)

    after = traces(app, [*details, signal_id])
    assert {t for t in after if t[1] in details} == set()
    assert {t for t in after if t[1] == signal_id} <= {(t, signal_id) for t in AUDIT_LOG}
    # Not a blanket delete: C still holds the notice that shows B, while B's signal stays.
    kept = ("notifications", OTHERS[0]["email"]) in traces(app, [OTHERS[0]["email"]])
    assert kept is (how not in ALL_ON_KIM)


def test_risk_ended_keeps_the_archive_but_no_notification(app: InApp) -> None:
    signal_id = scene(app)
    details = contact(CHANGED)
    act(app, reporter(A), "DELETE", "/v1/signals/A-kim", params={"reason": "risk_ended"})
    after = traces(app, [*contact(FIRST), *details, signal_id])
    # The archive keeps the reporter as the signal last stood, by law; nothing else does.
    assert {t for t in after if t[1] != signal_id} == {("archived_signals", d) for d in details}
    assert {t for t in after if t[1] == signal_id} == {
        ("archived_signals", signal_id),
        *((t, signal_id) for t in AUDIT_LOG),
    }
    # B and C keep only what the departure sent them: the match without A.
    for org in (B, C):
        items = act(app, reporter(org), "GET", "/v1/notifications")["items"]
        assert items, org
        shown = {p["organisation"]["oin"] for i in items for p in i["match"]["participants"]}
        assert str(ORGS[A].oin) not in shown


ARCHIVE_ERASURES = {
    "officer-erasure": lambda app, archived_id: act(
        app,
        OFFICER,
        "POST",
        "/v1/privacy/erasure",
        json=pseudonym(app, "Lou") | {"kind": "erasure", "signals": [archived_id]},
    ),
    "death-notice": lambda app, _id: act(
        app, OFFICER, "POST", "/v1/privacy/deaths", json=pseudonym(app, "Lou")
    ),
}


@pytest.mark.parametrize("erase", list(ARCHIVE_ERASURES.values()), ids=list(ARCHIVE_ERASURES))
def test_an_erased_archived_signal_leaves_no_offer_behind(app: InApp, erase: Any) -> None:
    archived_id = register(app, A, "A-lou", "Lou", ARCHIVED)
    act(app, reporter(A), "DELETE", "/v1/signals/A-lou", params={"reason": "risk_ended"})
    register(app, B, "B-lou", "Lou", OTHERS[0])  # B is offered A's archived signal
    (offer,) = act(app, reporter(B), "GET", "/v1/notifications")["items"]
    assert offer["type"] == "match.historical"
    needles = [*contact(ARCHIVED), archived_id]
    before = traces(app, needles)
    assert {("notifications", d) for d in contact(ARCHIVED)} <= before
    assert {("archive_offers", archived_id), ("notification_signals", archived_id)} <= before

    erase(app, archived_id)

    after = traces(app, needles)
    assert {t for t in after if t[1] != archived_id} == set()
    assert {t for t in after if t[1] == archived_id} <= {(t, archived_id) for t in AUDIT_LOG}
    assert act(app, reporter(B), "GET", "/v1/notifications")["items"] == []
