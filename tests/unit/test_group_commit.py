"""Group commit (vir/store/db.py): writers queued behind one another share a commit,
each in its own savepoint. Groups form on SQLite only (on PostgreSQL every writer
has its own transaction); a lone writer and many writers at once run on both.

Each test holds a first writer inside its transaction until the others are queued,
so that they form one group deterministically; a commit counter on the engine shows
how many database commits there were.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.orm import Session
from support.instore import T0, Store, fresh_store, template

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome, verify_chain
from vir.domain.errors import WriteNotCommitted
from vir.store import audit_log
from vir.store import db as db_module
from vir.store.db import GROUP, Database, WriteGroup
from vir.store.tables import ExcludedAddressRow

Body = Callable[[Session], None]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        # Commits are counted: the entries are integrated when the test reads them.
        store.db.integrate_after_commit = False
        yield store


GROUPS = pytest.mark.sqlite_only("write groups form on SQLite; PostgreSQL writers run apart")


def _entry(name: str) -> AuditEvent:
    return audit_log.new_event(Action.REPORT_GENERATED, Outcome.SUCCESS, T0, objects={"name": name})


def _append(name: str) -> Body:
    def body(session: Session) -> None:
        audit_log.append(session, _entry(name))

    return body


def _fail(session: Session) -> None:
    raise RuntimeError("this writer fails")


@contextmanager
def _commits(db: Database) -> Iterator[list[int]]:
    count = [0]

    def counted(_connection: Connection) -> None:
        count[0] += 1

    event.listen(db.engine, "commit", counted)
    try:
        yield count
    finally:
        event.remove(db.engine, "commit", counted)


class _FifoTurn:
    """The writers' turn as a queue: taken in the order asked for.

    Database's turn is a plain lock, which hands itself to its waiters in no fixed
    order; which of a group's writers goes first is not what these tests are about,
    but the expected chain depends on it, so they queue the writers in a known order.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: deque[object] = deque()
        self._held = False
        self._asked = 0  # how many times it was asked for, ever

    def acquire(self) -> bool:
        me = object()
        with self._changed:
            self._waiting.append(me)
            self._asked += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: not self._held and self._waiting[0] is me)
            self._waiting.popleft()
            self._held = True
        return True

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()

    def wait_until_asked(self, times: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self._asked >= times, timeout=10)


def _one_group(
    db: Database, bodies: list[Body], exclusive: tuple[Body, ...] = ()
) -> list[BaseException | None]:
    """Run ``bodies`` as writers on threads of their own, all in one group: the first
    waits inside its transaction until all the others are queued behind it, in the
    order given. Those in ``exclusive`` ask for ``write(exclusive=True)``."""
    outcomes: list[BaseException | None] = [None] * len(bodies)
    entered = threading.Event()
    turn = _FifoTurn()

    def first(session: Session) -> None:
        entered.set()
        turn.wait_until_asked(len(bodies))  # all the others are queued
        bodies[0](session)

    def run(index: int, body: Body) -> None:
        try:
            with db.write(exclusive=body in exclusive) as session:
                body(session)
        except BaseException as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(0, first))]
    threads += [
        threading.Thread(target=run, args=(i, body)) for i, body in enumerate(bodies) if i > 0
    ]
    # The group's time bound (MAX_GROUP_SECONDS, 20 ms) is not what these tests are
    # about: on a loaded machine, queueing a dozen threads can take longer than that,
    # and the group would then commit early, by design.
    bound, db_module.MAX_GROUP_SECONDS = db_module.MAX_GROUP_SECONDS, 60.0
    lock, db._turn = db._turn, turn  # type: ignore[assignment]
    try:
        threads[0].start()
        assert entered.wait(10)
        for asked, thread in enumerate(threads[1:], start=2):
            thread.start()
            turn.wait_until_asked(asked)
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive()
    finally:
        db_module.MAX_GROUP_SECONDS = bound
        db._turn = lock
    return outcomes


def _names(db: Database) -> list[str]:
    db.integrate()
    with db.read() as session:
        entries = list(audit_log.stored_entries(session))
        report = verify_chain(entries)
    assert report.intact, report.problem
    return [
        str(AuditEvent.decode(e.body).objects["name"])
        for e in entries
        if AuditEvent.decode(e.body).action == Action.REPORT_GENERATED
    ]


def _addresses(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(ExcludedAddressRow)) or 0)


def _add_address(fail: bool = False) -> Body:
    def body(session: Session) -> None:
        session.add(ExcludedAddressRow(address=os.urandom(32), label="Opvang", created_at=T0))
        session.flush()
        audit_log.append(session, _entry("address"))
        if fail:
            raise RuntimeError("fails after writing")

    return body


@GROUPS
def test_queued_writers_share_one_commit(store: Store) -> None:
    db = store.db
    with _commits(db) as commits:
        outcomes = _one_group(db, [_append(f"w{i}") for i in range(12)])
    assert outcomes == [None] * 12
    assert commits == [1]
    assert sorted(_names(db)) == sorted(f"w{i}" for i in range(12))


@GROUPS
def test_an_exclusive_writer_has_a_transaction_of_its_own(store: Store) -> None:
    """A rekey's switch changes nearly every page of the file: in a savepoint, SQLite
    first copied each of them to a sub-journal (its switch took 12 s instead of 7 at a
    million signals). An exclusive writer commits the group before it and runs in a
    transaction of its own, without a savepoint; one that fails stores nothing, and the
    writers before and after it are stored."""
    db = store.db
    nested: list[bool] = []

    def switch(session: Session) -> None:
        nested.append(session.connection().in_nested_transaction())
        _add_address()(session)

    def failing_switch(session: Session) -> None:
        nested.append(session.connection().in_nested_transaction())
        _add_address(fail=True)(session)

    def shared(session: Session) -> None:
        nested.append(session.connection().in_nested_transaction())
        _append("c")(session)

    bodies = [_append("a"), _append("b"), switch, shared, failing_switch, _append("d")]
    with _commits(db) as commits:
        outcomes = _one_group(db, bodies, exclusive=(switch, failing_switch))
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None,
        None,
        None,
        None,
        "RuntimeError",
        None,
    ]
    assert nested == [False, True, False]
    # a and b together; the switch alone; c, committed when the failing switch took
    # its turn; d alone. The failing switch committed nothing.
    assert commits == [4]
    assert _names(db) == ["a", "b", "address", "c", "d"]
    assert _addresses(db) == 1


def test_a_writer_alone_has_no_savepoint(store: Store) -> None:
    """A rekey's batch changes a few hundred pages: ``write(alone=True)`` runs it in a
    transaction of its own without a savepoint (on PostgreSQL every writer is alone)."""
    for alone in (True, False):
        with store.db.write(alone=alone) as session:
            nested = session.connection().in_nested_transaction()
            _add_address()(session)
        assert nested is (not alone and store.db.engine.dialect.name != "postgresql")
    assert _addresses(store.db) == 2


def test_a_lone_writer_commits_at_once(store: Store) -> None:
    with _commits(store.db) as commits:
        for i in range(3):
            with store.db.write() as session:
                audit_log.append(session, _entry(f"alone{i}"))
            assert commits == [i + 1]  # durable before the with-block returns
    assert _names(store.db) == ["alone0", "alone1", "alone2"]


@GROUPS
def test_a_failing_writer_rolls_back_only_itself(store: Store) -> None:
    db = store.db
    bodies = [_append("a"), _add_address(), _add_address(fail=True), _fail, _append("b")]
    with _commits(db) as commits:
        outcomes = _one_group(db, bodies)
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None,
        None,
        "RuntimeError",
        "RuntimeError",
        None,
    ]
    assert commits == [1]
    assert _names(db) == ["a", "address", "b"]  # the chain has no gap where the failure was
    assert _addresses(db) == 1


@GROUPS
def test_a_writer_that_read_the_log_and_failed_gives_back_the_entries_it_wrote(
    store: Store,
) -> None:
    """Reading the log writes out the group's buffered entries inside the reader's
    savepoint; when that rolls back, they must still be committed for their writers."""
    db = store.db

    def reads_then_fails(session: Session) -> None:
        audit_log.append(session, _entry("reader"))
        assert [AuditEvent.decode(e.body).action for e in audit_log.stored_entries(session)]
        raise RuntimeError("fails after reading")

    def reads(session: Session) -> None:
        names = [
            AuditEvent.decode(e.body).objects.get("name") for e in audit_log.stored_entries(session)
        ]
        assert names[-2:] == ["a", "b"], names  # earlier writers of the group, not the failed one
        audit_log.append(session, _entry("c"))

    outcomes = _one_group(db, [_append("a"), _append("b"), reads_then_fails, reads, _append("d")])
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None,
        None,
        "RuntimeError",
        None,
        None,
    ]
    assert _names(db) == ["a", "b", "c", "d"]


@GROUPS
def test_when_the_shared_commit_fails_no_writer_of_the_group_is_stored(store: Store) -> None:
    db = store.db
    observed: list[Any] = []
    db.observe_commits(observed.extend)

    def breaks_the_commit(session: Session) -> None:
        audit_log.append(session, _entry("last"))

        def refuse(_connection: Connection) -> None:
            raise OSError("disk gone")

        group: WriteGroup = session.info[GROUP]
        group.before_commit.append(refuse)

    outcomes = _one_group(db, [_append("a"), _add_address(), breaks_the_commit])
    assert all(isinstance(o, WriteNotCommitted) for o in outcomes)
    assert all(isinstance(o.__cause__, OSError) for o in outcomes if o)
    assert "disk gone" not in str(outcomes[0])
    assert _names(db) == []
    assert _addresses(db) == 0
    assert observed == []  # metrics never count what did not commit
    with db.write() as session:  # and the next writer starts afresh
        audit_log.append(session, _entry("after"))
    assert _names(db) == ["after"]
    assert [e.objects["name"] for e in observed] == ["after"]


@GROUPS
def test_a_writer_that_ends_the_transaction_fails_the_group(store: Store) -> None:
    """A failure can end the whole database transaction, not just a savepoint
    (SQLite does so on a full disk or an I/O error): the group then fails as a whole."""
    db = store.db

    def ends_it(session: Session) -> None:
        session.connection().execute(text("ROLLBACK"))
        raise RuntimeError("the transaction is gone")

    outcomes = _one_group(db, [_append("a"), ends_it, _append("b")])
    assert isinstance(outcomes[0], WriteNotCommitted)
    assert outcomes[1] is not None  # its own error, or the failed rollback to its savepoint
    # "b", queued after the failure, starts a new group of its own and is stored.
    assert outcomes[2] is None
    assert _names(db) == ["b"]


def test_many_writers_at_once_keep_one_chain(store: Store) -> None:
    db = store.db
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(25):
                with db.write() as session:
                    audit_log.append(session, _entry(f"{w}.{i}"))
                    if i % 5 == 0:
                        _add_address()(session)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    names = _names(db)
    assert len(names) == 16 * 25 + 16 * 5
    for w in range(16):  # each writer's own entries in its own order
        mine = [n for n in names if n.startswith(f"{w}.")]
        assert mine == [f"{w}.{i}" for i in range(25)]
    assert _addresses(db) == 16 * 5


def test_many_writers_from_one_thread_share_one_commit(store: Store) -> None:
    """``write_each``: each item a writer of its own (what it raises is its answer, and
    nothing of it is stored), all of them in one transaction and one commit."""
    db = store.db

    def work(session: Session, name: str) -> str:
        if name == "address":
            _add_address()(session)
        elif name == "fails after writing":
            _add_address(fail=True)(session)
        else:
            audit_log.append(session, _entry(name))
        return name.upper()

    names = ["a", "address", "fails after writing", "b"]
    with _commits(db) as commits:
        answers = db.write_each(names, work)
    assert answers[:2] == ["A", "ADDRESS"] and answers[3] == "B"
    assert isinstance(answers[2], RuntimeError)
    assert commits == [1]
    assert _names(db) == ["a", "address", "b"]
    assert _addresses(db) == 1


def test_many_writers_from_one_thread_are_refused_together_when_the_commit_fails(
    store: Store,
) -> None:
    db = store.db

    def work(session: Session, name: str) -> None:
        audit_log.append(session, _entry(name))
        if name == "last":

            def refuse(_connection: Connection) -> None:
                raise OSError("disk gone")

            group: WriteGroup = session.info[GROUP]
            group.before_commit.append(refuse)

    with pytest.raises(WriteNotCommitted) as refused:
        db.write_each(["a", "last"], work)
    assert "disk gone" not in str(refused.value)
    assert _names(db) == []
    db.write_each(["after"], work)  # the next writers start afresh
    assert _names(db) == ["after"]
