"""``SignalService.register_many`` stores exactly what ``register`` item by item does.

The oracle is the single registration: two stores with the same history (signals of
several organisations, some withdrawn into the archive, an excluded address), then the
same items as one batch on one store and one by one on the other. Every answer
(registered and new or repeated, with which matches; or which refusal) and everything
stored afterwards (signals with their parents, matches with members and coordinator,
notifications, archive offers, the audit log's entries, the registrations in order)
must be equal.

A batch stores the items that meet nobody (``vir.services.signals._alone``) in bulk and
the others one at a time; the items are drawn from a world small enough that both
kinds, and every way of meeting (same child, shared parent, a parent who is a young
person, shared address, a local_ref used twice, an archived signal), occur.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from support import postgres
from support.instore import T0, Store, fresh_store, template

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent
from vir.crypto import oprf
from vir.domain.errors import VirError
from vir.domain.signals import Professional, WithdrawalReason
from vir.services import signals as signals_module
from vir.services.epochs import EpochBook
from vir.services.signals import SignalRequest, SignalService
from vir.store import audit_log
from vir.store.tables import (
    ArchivedSignalRow,
    ArchiveOfferRow,
    ExcludedAddressRow,
    MatchMemberRow,
    MatchRow,
    NotificationRow,
    SignalParentRow,
    SignalRow,
)

N_ORGS = 3
PEOPLE = [oprf.hash_to_group(f"batch-person-{i}".encode()) for i in range(12)]
ADDRESSES = [oprf.hash_to_group(f"batch-address-{i}".encode()) for i in range(4)]
EXCLUDED = ADDRESSES[3]
NAMES = {bytes(p): f"P{i}" for i, p in enumerate(PEOPLE)} | {
    bytes(a): f"A{i}" for i, a in enumerate(ADDRESSES)
}
CONTACTS = [Professional("Anna", "anna@example.nl"), Professional("Bert", "bert@example.nl")]

# (person, parents, address, contact): one signal's content in the small world.
content = st.tuples(
    st.integers(0, len(PEOPLE) - 1),
    st.frozensets(st.integers(0, len(PEOPLE) - 1), max_size=2),
    st.one_of(st.none(), st.integers(0, len(ADDRESSES) - 1)),
    st.integers(0, len(CONTACTS) - 1),
)
# Earlier signals: (organisation, content, withdrawn: None, or archived (True) or erased).
history = st.lists(
    st.tuples(st.integers(0, N_ORGS - 1), content, st.one_of(st.none(), st.booleans())),
    max_size=8,
)
# The batch's items: (local_ref number, content); few numbers, so some repeat.
batch = st.lists(st.tuples(st.integers(0, 9), content), min_size=1, max_size=20)


def _request(ref: str, item: tuple[int, frozenset[int], int | None, int]) -> SignalRequest:
    person, parents, address, contact = item
    return SignalRequest(
        ref,
        1,
        PEOPLE[person],
        tuple(PEOPLE[p] for p in sorted(parents - {person})),
        ADDRESSES[address] if address is not None else None,
        None,
        CONTACTS[contact],
    )


@contextmanager
def _world(folder: Path, past: list[Any]) -> Iterator[tuple[Store, SignalService]]:
    """A store holding ``past``, with its signal service; the clock stands still, so
    the batch and the single registrations carry the same times."""
    database = Path(tempfile.mkdtemp(dir=folder)) / "db.sqlite"
    with fresh_store(template(folder), database) as store:
        with store.db.write() as session:
            session.add(ExcludedAddressRow(address=EXCLUDED, label="shelter", created_at=T0))
        service = SignalService(store.db, lambda: T0, EpochBook(store.db))
        for n, (org, item, withdrawn) in enumerate(past):
            caller = store.caller(org)
            try:
                service.register(caller, _request(f"h{n}", item))
            except VirError:
                continue
            if withdrawn is not None:
                reason = WithdrawalReason.RISK_ENDED if withdrawn else WithdrawalReason.UNJUSTIFIED
                service.withdraw(caller, f"h{n}", reason)
        yield store, service


def _answer(answer: Any) -> object:
    """A registration's answer without its generated ids."""
    if isinstance(answer, VirError):
        return type(answer).__name__, str(answer)
    return (
        answer.created,
        answer.signal.local_ref,
        sorted(
            (m.via.value, m.active, sorted(p.organisation.oin for p in m.participants))
            for m in answer.matches
        ),
    )


def _stored(store: Store) -> dict[str, object]:
    """Everything the registrations stored, with generated ids replaced by what they
    name (a signal by its organisation and local_ref, a match by its key)."""
    with store.db.read() as session:
        signals = session.execute(select(SignalRow)).scalars().all()
        name = {s.id: (s.oin, s.local_ref) for s in signals}
        parents: dict[str, list[str]] = {}
        for signal_id, parent in session.execute(
            select(SignalParentRow.signal_id, SignalParentRow.parent)
        ):
            parents.setdefault(signal_id, []).append(NAMES[bytes(parent)])
        matches = session.execute(select(MatchRow)).scalars().all()
        members: dict[str, set[object]] = {}
        for match_id, signal_id in session.execute(
            select(MatchMemberRow.match_id, MatchMemberRow.signal_id)
        ):
            members.setdefault(match_id, set()).add(name[signal_id])
        match_name = {
            m.id: (m.via, NAMES[bytes(m.key)] if m.key is not None else None) for m in matches
        }
        notifications = session.execute(select(NotificationRow)).scalars().all()
        archived = {a.id: (a.oin, a.local_ref) for a in session.scalars(select(ArchivedSignalRow))}
        offers = session.execute(select(ArchiveOfferRow)).scalars().all()
        events = [AuditEvent.decode(e.body) for e in audit_log.stored_entries(session)]
    return {
        "signals": sorted(
            [
                (
                    s.oin,
                    s.local_ref,
                    NAMES[bytes(s.person)],
                    sorted(parents.get(s.id, [])),
                    NAMES[bytes(s.address)] if s.address is not None else None,
                    s.professional_name,
                    s.content_hash,
                    s.remove_on,
                )
                for s in signals
            ],
            key=repr,
        ),
        "matches": sorted(
            [
                (
                    m.via,
                    match_name[m.id],
                    m.ended_at is None,
                    sorted(members.get(m.id, set())),
                    name[m.coordinator][0] if m.coordinator in name else None,
                )
                for m in matches
            ],
            key=repr,
        ),
        "notifications": sorted(
            [
                (
                    n.oin,
                    n.local_ref,
                    n.type,
                    match_name.get(n.match_id, "offer"),
                    _payload(n.payload),
                )
                for n in notifications
            ],
            key=repr,
        ),
        "offers": sorted((archived[o.archived_signal_id], o.oin) for o in offers),
        # Within one registration, events about several signals come in the order of
        # their (random) ids: compared as a whole, and the registrations in order.
        "audit": sorted(((str(event.action), event.organisation) for event in events), key=repr),
        "registered": [
            name.get(str(event.objects["signal"]), "gone")
            for event in events
            if event.action is Action.SIGNAL_REGISTERED
        ],
    }


def _payload(payload: str) -> object:
    """A notification's payload without ids: who it shows, and its coordinator's
    organisation (among signals of one organisation registered at one moment, which
    coordinates is a tie)."""
    shown = json.loads(payload)
    lead = shown.get("coordinator")
    return (
        shown["active"],
        sorted(p["organisation"]["oin"] for p in shown["participants"]),
        lead["organisation"]["oin"] if lead else None,
    )


@contextmanager
def _counting_alone() -> Iterator[list[int]]:
    """How many items the batch stored as meeting nobody."""
    counted = [0]
    original = SignalService._store_alone

    def counting(self: SignalService, *args: Any, **kwargs: Any) -> Any:
        counted[0] += 1
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(signals_module.SignalService, "_store_alone", counting)
        yield counted


# Fresh children beside ones who meet: the GP's earlier signal on P0 (parent P1, address
# A0) and the school's archived signal on P2. Items: P3 alone; P0 again (a match); P4
# with parent P1 (P0's household); P5 at A0; P2 (the archive offer); P6 whose parent is
# P7, and P7 as a young person (one household, within the batch); P8 at the excluded
# address; P9 twice under one local_ref (a repeat), then other content under it.
EXAMPLE_PAST = [(1, (0, frozenset({1}), 0, 0), None), (0, (2, frozenset(), None, 0), True)]
EXAMPLE_ORG = 2
EXAMPLE_ITEMS = [
    (0, (3, frozenset(), None, 0)),
    (1, (0, frozenset(), None, 0)),
    (2, (4, frozenset({1}), None, 0)),
    (3, (5, frozenset(), 0, 0)),
    (4, (2, frozenset(), None, 1)),
    (5, (6, frozenset({7}), None, 0)),
    (6, (7, frozenset(), 1, 0)),
    (7, (8, frozenset(), 3, 0)),
    (8, (9, frozenset(), 2, 0)),
    (8, (9, frozenset(), 2, 0)),
    (8, (9, frozenset(), 2, 1)),
    (9, (10, frozenset({11}), None, 1)),
]
# Of those, P3, P8 and the last item meet nobody; the others meet someone (or each other).
EXAMPLE_ALONE = 3


EXAMPLES = settings().max_examples // (2 if postgres.on_postgresql() else 1)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(past=history, org=st.integers(0, N_ORGS - 1), items=batch)
@example(past=EXAMPLE_PAST, org=EXAMPLE_ORG, items=EXAMPLE_ITEMS)
def test_a_batch_stores_what_the_items_one_by_one_store(
    past: list[Any], org: int, items: list[Any], tmp_path: Path
) -> None:
    requests = [_request(f"b{ref}", item) for ref, item in items]
    with ExitStack() as stack:
        batch_store, batch_service = stack.enter_context(_world(tmp_path, past))
        single_store, single_service = stack.enter_context(_world(tmp_path, past))
        in_batch = batch_service.register_many(batch_store.caller(org), requests)
        one_by_one: list[Any] = []
        for request in requests:
            try:
                one_by_one.append(single_service.register(single_store.caller(org), request))
            except VirError as error:
                one_by_one.append(error)
        assert [_answer(a) for a in in_batch] == [_answer(a) for a in one_by_one]
        batch_store.db.integrate()
        single_store.db.integrate()
        assert _stored(batch_store) == _stored(single_store)


def test_the_example_stores_some_items_alone_and_others_not(tmp_path: Path) -> None:
    """The pinned example takes both paths: what the property compares is not one path
    against itself."""
    requests = [_request(f"b{ref}", item) for ref, item in EXAMPLE_ITEMS]
    with _world(tmp_path, EXAMPLE_PAST) as (store, service), _counting_alone() as alone:
        service.register_many(store.caller(EXAMPLE_ORG), requests)
    assert alone[0] == EXAMPLE_ALONE


def test_items_that_meet_nobody_are_stored_in_bulk(tmp_path: Path) -> None:
    """A migration's batch of fresh children costs a few statements, not a
    registration's dozen per item."""
    requests = [_request(f"m{i}", (i, frozenset(), None, 0)) for i in range(len(PEOPLE))]
    with _world(tmp_path, []) as (store, service), _counting_alone() as alone:
        statements = [0]

        def count(*_args: Any) -> None:
            statements[0] += 1

        event.listen(store.db.engine, "before_cursor_execute", count)
        try:
            answers = service.register_many(store.caller(0), requests)
        finally:
            event.remove(store.db.engine, "before_cursor_execute", count)
    assert [a.created for a in answers if not isinstance(a, VirError)] == [True] * len(PEOPLE)
    assert alone[0] == len(PEOPLE)
    assert statements[0] < 20, statements[0]


def test_an_item_that_meets_a_stored_signal_is_not_alone(tmp_path: Path) -> None:
    past = [(1, (0, frozenset(), None, 0), None)]
    with _world(tmp_path, past) as (store, service), _counting_alone() as alone:
        (answer,) = service.register_many(store.caller(0), [_request("x", (0, frozenset(), 0, 0))])
    assert alone[0] == 0
    assert not isinstance(answer, VirError) and len(answer.matches) == 1
