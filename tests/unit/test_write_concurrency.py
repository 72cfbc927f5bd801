"""Writers wait only for writers that touch the same thing (vir/store/locks.py,
docs/concurrency.md). On PostgreSQL two registrations on unrelated children commit
while the other is still open; two on the same child, or on one household, take
turns. On SQLite every writer is alone (one write lock): there only the lock order
is checked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import postgres
from support.world import World, person, world

from vir.domain.matching import GroupKey, Via
from vir.domain.signals import Professional, WithdrawalReason
from vir.services import signals as signal_service
from vir.services.signals import SignalChange
from vir.store import locks
from vir.store import signals as repo
from vir.store.locks import Kind, Lock, LockOrderViolation

PARALLEL = pytest.mark.skipif(
    postgres.backend() != "postgresql", reason="SQLite admits one writer at a time"
)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def _holding(
    w: World, held: list[Lock]
) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """A writer that takes ``held`` and stays in its transaction until released."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with w.store.db.write() as session:
            locks.take(session, held)
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    return taken, release, thread


def _finishes_within(seconds: float, work: Callable[[], object]) -> bool:
    """Run ``work`` on a thread; whether it finished within ``seconds`` (it is then
    left to finish, and joined by the caller's cleanup through the release)."""
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


@PARALLEL
def test_registrations_on_unrelated_children_commit_while_another_is_open(w: World) -> None:
    _taken, release, holder = _holding(w, [Lock.person(person("anna"))])
    try:
        assert _finishes_within(10, lambda: w.register(0, "bram"))
        assert _finishes_within(10, lambda: w.register(1, "bram"))  # a match, made meanwhile
    finally:
        release.set()
        holder.join(10)
    assert {n["type"] for n in w.notifications()} == {"match.created"}


@PARALLEL
def test_registrations_on_the_same_child_or_household_wait_for_each_other(w: World) -> None:
    for held, register in (
        (Lock.person(person("anna")), lambda: w.register(0, "anna")),
        (
            Lock.group(GroupKey(Via.PARENT, person("moeder"))),
            lambda: w.register(1, "kees", parents=("moeder",)),
        ),
    ):
        _taken, release, holder = _holding(w, [held])
        finished = threading.Event()
        thread = threading.Thread(target=lambda r=register, f=finished: (r(), f.set()))
        thread.start()
        try:
            assert not finished.wait(0.5), "it did not wait for the writer holding the group"
        finally:
            release.set()
            holder.join(10)
        assert finished.wait(10), "it went on once the other committed"
        thread.join(10)


def test_a_lock_before_one_held_is_refused(w: World) -> None:
    """Taking locks out of order could deadlock two writers: refused, on every database."""
    with pytest.raises(LockOrderViolation), w.store.db.write() as session:
        locks.take(session, [Lock.of(Kind.ADDRESS, b"a")])
        locks.take(session, [Lock.person(person("anna"))])
    with w.store.db.write() as session:  # later kinds, and what it holds again, are fine
        locks.take(session, [Lock.named("ref", "x")])
        locks.take(session, [Lock.person(person("anna")), Lock.named("ref", "x")])
        locks.take(session, [Lock.of(Kind.ADDRESS, b"a")])
        assert locks.holds(session, Lock.named("ref", "x"))


def test_a_lock_names_no_pseudonym(w: World) -> None:
    lock = Lock.person(person("anna"))
    assert person("anna").hex() not in repr(lock) and str(lock.id) not in repr(lock)
    assert Lock.person(person("anna")) == lock != Lock.group(GroupKey(Via.PARENT, person("anna")))


def test_every_writer_of_a_busy_household_sees_the_others(w: World) -> None:
    """Sixteen threads register children of one parent at once (every registration
    joins the same household match): the stored match holds them all, and every member
    was told; on PostgreSQL with the writers really running side by side."""
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def register(i: int) -> None:
        try:
            start.wait(10)
            w.register(i % 4, f"kind{i}", ref=f"r{i}", parents=("moeder",))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with w.store.db.read() as session:
        match = repo.active_match(session, GroupKey(Via.PARENT, person("moeder")))
        assert match is not None
        assert len(repo.members(session, match.id)) == 16
    told = {n["local_ref"] for n in w.notifications()}
    assert told == {f"r{i}" for i in range(16)}


@PARALLEL
def test_a_withdrawal_settles_a_household_match_made_while_it_locked(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the four-instance stress test found: a withdrawal holds its young
    person's lock, reads the signal's matches, then locks its household groups. A
    registration about *another* child of the same parent needs none of the locks held
    by then, and makes a household match with the signal being withdrawn. That match
    must end with the withdrawal (one organisation is left), not stay with one member."""
    w.register(0, "kees", parents=("moeder",))
    real = repo.match_keys_of
    calls = 0

    def first_read_then_a_registration(session: Any, ids: Any) -> Any:
        nonlocal calls
        calls += 1
        found = real(session, ids)
        if calls == 1:  # the withdrawal's read before its group locks
            other = threading.Thread(target=lambda: w.register(1, "lisa", parents=("moeder",)))
            other.start()
            other.join(10)
            assert not other.is_alive(), "the registration waited for the withdrawal"
            with w.store.db.read() as fresh:
                assert repo.active_match(fresh, GroupKey(Via.PARENT, person("moeder")))
        return found

    monkeypatch.setattr(repo, "match_keys_of", first_read_then_a_registration)
    w.signals.withdraw(w.caller(0), "kees-0", WithdrawalReason.UNJUSTIFIED)
    assert calls >= 1
    with w.store.db.read() as session:
        assert repo.active_match(session, GroupKey(Via.PARENT, person("moeder"))) is None
    # Lisa's reporter is told what it is told when the same happens one after the other.
    w.register(0, "piet", parents=("vader",))
    w.register(1, "mila", parents=("vader",))
    w.signals.withdraw(w.caller(0), "piet-0", WithdrawalReason.UNJUSTIFIED)
    told = {n["local_ref"]: n["type"] for n in w.notifications()}
    assert told["lisa-1"] == told["mila-1"]


@PARALLEL
def test_a_household_registration_waits_for_a_contact_change(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A contact change locks every group of its signal, not only the matches it has:
    a registration about another child of the same parent, which makes a household
    match with the changed signal, waits for it, and shows the new contact details.
    With the young person's lock alone the registration read the old details while the
    change was open, and the change's notice went to the matches it had read."""
    w.register(0, "kees", parents=("moeder",))
    real = signal_service.notify_contact_changed
    early: list[bool] = []
    other = threading.Thread(target=lambda: w.register(1, "lisa", parents=("moeder",)))

    def meanwhile_a_registration(session: Any, ids: Any, now: Any) -> Any:
        other.start()
        other.join(0.5)
        early.append(not other.is_alive())
        return real(session, ids, now)

    monkeypatch.setattr(signal_service, "notify_contact_changed", meanwhile_a_registration)
    moved = Professional("Anna de Vries", "anna@verhuisd.example")
    w.signals.update(w.caller(0), "kees-0", SignalChange(professional=moved))
    other.join(10)
    assert early == [False], "the registration did not wait for the change"
    told = [n for n in w.notifications() if n["local_ref"] == "lisa-1"]
    assert told and "anna@verhuisd.example" in json.dumps(told[-1])


@PARALLEL
def test_connections_stay_open_for_as_many_requests_as_a_process_serves(w: World) -> None:
    """Each request thread of a busy process holds a connection: the pool keeps as
    many open as were in use at once, up to its size, instead of closing all but ten
    after each use. Every new connection is a new PostgreSQL backend that reads the
    system catalogues again: at concurrency 16 in one process that doubled
    PostgreSQL's CPU a registration (bench/scaleout.py, 2026-12-04)."""

    def backends(count: int) -> set[int]:
        held = [w.store.db.engine.connect() for _ in range(count)]
        try:
            return {c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in held}
        finally:
            for connection in held:
                connection.close()

    first = backends(24)
    assert len(first) == 24
    assert backends(24) == first
