"""Writers wait only for writers that touch the same thing (vir/store/locks.py,
docs/concurrency.md). On PostgreSQL two registrations on unrelated children commit
while the other is still open; two on the same child, or on one household, take
turns. On SQLite every writer is alone (one write lock): there only the lock order
is checked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import postgres
from support.world import World, person, world

from vir.domain.matching import GroupKey, Via
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
