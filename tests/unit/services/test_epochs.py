"""Signals made under either epoch of a rotation meet each other, before, during and after
the rekey; the old epoch is converted on arrival for its grace period, then refused."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from support import seed
from support.instore import ORGS, T0, UTRECHT_ORGS
from support.world import World, world

from vir.audit.actions import Action
from vir.crypto.rekey_token import read_token
from vir.domain.errors import Conflict, InputError
from vir.domain.matching import Via
from vir.domain.organisations import Organisation
from vir.domain.signals import Professional, WithdrawalReason
from vir.services import rekey
from vir.services.consultations import Purpose
from vir.services.epochs import EpochBook
from vir.services.signals import SignalRequest, SignalService
from vir.store.records import Signal
from vir.store.tables import AuditEntryRow, MatchMemberRow, MatchRow, SignalRow

GRACE = dt.timedelta(days=30)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        # Epochs are read afresh on every call: these tests switch them under the service.
        w.signals = SignalService(w.store.db, w.clock, EpochBook(w.store.db, ttl=0))
        seed.seed(w.store.db, 120)  # other signals, so that a rekey takes many batches
        yield w


def request(
    who: str,
    epoch: int,
    ref: str,
    *,
    parents: tuple[str, ...] = (),
    address: str | None = None,
) -> SignalRequest:
    """A registration as a client makes it under ``epoch``'s key."""
    return SignalRequest(
        ref,
        epoch,
        seed.pseudonym(who, epoch),
        tuple(seed.pseudonym(p, epoch) for p in parents),
        seed.pseudonym(address, epoch) if address else None,
        None,
        Professional("Anna de Vries", "anna@example.org"),
    )


def register(
    w: World,
    org: int | Organisation,
    who: str,
    epoch: int,
    *,
    parents: tuple[str, ...] = (),
    address: str | None = None,
) -> Signal:
    tag = org if isinstance(org, int) else str(org.oin)[-4:]
    made = request(who, epoch, f"{who}-{tag}", parents=parents, address=address)
    return w.signals.register(w.caller(org), made).signal


def start(w: World, from_epoch: int = 1) -> None:
    delta = seed.DELTA if from_epoch == 1 else seed.DELTA3
    token = read_token(seed.token(from_epoch, delta), seed.VERIFIER_KEY)
    rekey.start(w.store.db, token, w.clock())


def run(w: World, max_batches: int | None = None) -> rekey.RekeyResult:
    return rekey.run(
        w.store.db, clock=w.clock, grace=GRACE, batch=10, workers=0, max_batches=max_batches
    )


def active_matches(w: World, via: Via) -> list[frozenset[str]]:
    """The member signal ids of every active match of ``via``."""
    with w.store.db.read() as session:
        rows = session.execute(
            select(MatchRow.id, MatchMemberRow.signal_id)
            .join(MatchMemberRow, MatchMemberRow.match_id == MatchRow.id)
            .where(MatchRow.via == via.value, MatchRow.ended_at.is_(None))
        )
        found: dict[str, set[str]] = {}
        for match_id, signal_id in rows:
            found.setdefault(match_id, set()).add(signal_id)
    return [frozenset(m) for m in found.values()]


def stored_person(w: World, signal: Signal) -> bytes:
    with w.store.db.read() as session:
        return bytes(
            session.scalars(select(SignalRow.person).where(SignalRow.id == signal.id)).one()
        )


def test_every_epoch_meets_in_one_person_match_before_during_and_after_a_rekey(
    w: World,
) -> None:
    a = register(w, 0, "kim", 1)
    start(w)
    assert run(w, max_batches=5).in_progress  # half done
    b = register(w, 1, "kim", 2)  # the new epoch, converted down while the rekey runs
    c = register(w, 2, "kim", 1)  # the old epoch, as stored
    assert run(w).switched
    d = register(w, 3, "kim", 2)  # the new epoch, as stored
    e = register(w, UTRECHT_ORGS[0], "kim", 1)  # the old epoch within its grace period
    everyone = frozenset(s.id for s in (a, b, c, d, e))
    assert active_matches(w, Via.PERSON) == [everyone]
    for signal in (a, b, c, d, e):
        assert stored_person(w, signal) == seed.pseudonym("kim", 2)
    (view,) = w.signals.matches(w.caller(0), a.local_ref)
    assert len(view.participants) == 4

    w.clock.now = T0 + GRACE
    assert rekey.retire(w.store.db, w.clock()) == [1]
    with pytest.raises(InputError) as refused:
        register(w, UTRECHT_ORGS[1], "kim", 1)
    with pytest.raises(InputError) as converted:
        EpochBook(w.store.db).convert(1, [seed.pseudonym("kim", 1)])
    for error in (refused.value, converted.value):
        assert (error.field, error.detail) == (
            "epoch",
            "epoch 1 was retired: pseudonyms must be made under an accepted key epoch (2)",
        )
    register(w, UTRECHT_ORGS[1], "kim", 2)


def test_a_new_epoch_is_refused_before_its_rekey_starts(w: World) -> None:
    with pytest.raises(InputError) as refused:
        register(w, 0, "kim", 2)
    assert (refused.value.field, refused.value.detail) == (
        "epoch",
        "pseudonyms must be made under an accepted key epoch (1)",
    )
    start(w)
    register(w, 0, "kim", 2)


def test_households_match_on_a_parent_and_an_address_across_a_rekey(w: World) -> None:
    lot = register(w, 0, "lot", 1, parents=("vader",), address="plein 2")
    start(w)
    run(w, max_batches=3)
    bas = register(w, 1, "bas", 2, parents=("vader",))  # the same father, new epoch
    run(w)
    mila = register(w, 2, "mila", 1, address="plein 2")  # the same address, old epoch
    assert active_matches(w, Via.PARENT) == [frozenset({lot.id, bas.id})]
    assert active_matches(w, Via.ADDRESS) == [frozenset({lot.id, mila.id})]
    sam = register(w, 3, "sam", 2, parents=("vader",), address="plein 2")
    assert active_matches(w, Via.PARENT) == [frozenset({lot.id, bas.id, sam.id})]
    assert active_matches(w, Via.ADDRESS) == [frozenset({lot.id, mila.id, sam.id})]


def test_a_repeat_is_recognised_whatever_epoch_it_was_made_under(w: World) -> None:
    first = w.signals.register(
        w.caller(0), request("noor", 1, "noor-0", parents=("ma", "pa"), address="laan 3")
    )
    assert first.created
    start(w)
    run(w, max_batches=2)
    during = request("noor", 2, "noor-0", parents=("pa", "ma"), address="laan 3")
    assert not w.signals.register(w.caller(0), during).created
    run(w)
    for epoch in (2, 1):
        again = request("noor", epoch, "noor-0", parents=("ma", "pa"), address="laan 3")
        repeat = w.signals.register(w.caller(0), again)
        assert not repeat.created and repeat.signal.id == first.signal.id
    other_parent = request("noor", 2, "noor-0", parents=("ma", "oma"), address="laan 3")
    with pytest.raises(Conflict):
        w.signals.register(w.caller(0), other_parent)
    no_address = request("noor", 2, "noor-0", parents=("ma", "pa"))
    with pytest.raises(Conflict):
        w.signals.register(w.caller(0), no_address)


def test_withdrawal_access_and_consultation_find_signals_across_a_rekey(w: World) -> None:
    kept = register(w, 0, "fenna", 1)
    gone = register(w, 1, "fenna", 1)
    start(w)
    run(w)
    w.signals.withdraw(w.caller(1), gone.local_ref, WithdrawalReason.RISK_ENDED)
    book = EpochBook(w.store.db)
    for epoch in (1, 2):
        (person,) = book.convert(epoch, [seed.pseudonym("fenna", epoch)])
        report = w.privacy.access(w.officer, person)
        statuses = {s["signal_id"]: s["status"] for s in report["signals"]}
        assert statuses == {kept.id: "active", gone.id: "archived"}
        consulted = w.consultations.consult(w.veilig_thuis, person, Purpose.TRIAGE)
        assert [i.status for i in consulted.involvement] == ["active", "archived"]


def test_the_epoch_is_decided_inside_the_write_transaction(w: World) -> None:
    """A service whose cached epochs are stale (read before the switch) still stores and
    matches in the epoch the database is in when it writes."""
    stale = SignalService(w.store.db, w.clock, EpochBook(w.store.db, ttl=3600))
    assert stale.register(w.caller(0), request("jip", 1, "jip-0")).created  # cache: epoch 1
    start(w)
    run(w)
    late = stale.register(w.caller(1), request("jip", 1, "jip-1")).signal
    new = stale.register(w.caller(2), request("jip", 2, "jip-2")).signal
    for signal in (late, new):
        assert stored_person(w, signal) == seed.pseudonym("jip", 2)
        assert signal.epoch == 2
    assert len(active_matches(w, Via.PERSON)) == 1


def test_registrations_while_the_rekey_runs_in_another_thread_land_in_the_right_epoch(
    w: World,
) -> None:
    start(w)
    done = threading.Event()
    outcome: list[rekey.RekeyResult] = []

    def rekeying() -> None:
        try:
            outcome.append(rekey.run(w.store.db, clock=w.clock, grace=GRACE, batch=3, workers=0))
        finally:
            done.set()

    thread = threading.Thread(target=rekeying)
    thread.start()
    registered: list[tuple[str, Signal]] = []
    round_ = 0
    while not done.is_set() or round_ < 2:
        for i in range(6):
            who = f"kind-{i}"
            org = (round_ + i) % len(ORGS)
            if any(n == who and s.oin == str(ORGS[org].oin) for n, s in registered):
                continue
            signal = register(w, org, who, 1 + (round_ + i) % 2, parents=(f"ouder-{i % 3}",))
            registered.append((who, signal))
        round_ += 1
        if round_ >= len(ORGS):
            done.wait(0.05)  # every organisation has registered every child
    thread.join()
    assert outcome and outcome[0].switched
    for who, signal in registered:
        assert stored_person(w, signal) == seed.pseudonym(who, 2)
    with w.store.db.read() as session:
        actions = list(session.scalars(select(AuditEntryRow.action).order_by(AuditEntryRow.seq)))
    begun = actions.index(Action.KEY_REKEY_STARTED)
    switched = actions.index(Action.KEY_REKEY_SWITCHED)
    assert Action.SIGNAL_REGISTERED in actions[begun:switched], "none arrived during the run"
    persons = {frozenset(s.id for n, s in registered if n == who) for who, _ in registered}
    assert set(active_matches(w, Via.PERSON)) == {p for p in persons if len(p) > 1}
