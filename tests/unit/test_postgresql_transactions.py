"""A PostgreSQL writer's round trips (vir/store/db.py): its transaction begins with its
write lock in one message, a pooled connection is tested only after it sat idle, and
every connection goes back to the pool as the readers expect it (no transaction,
autocommit off). Each round trip costs the process and the server CPU: a lone
registration was fourteen of them."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy.exc
from psycopg.pq import TransactionStatus
from sqlalchemy import event, text
from support.instore import T0, UTRECHT_ORGS
from support.world import World, person, world

from vir.domain.matching import GroupKey, Via
from vir.domain.signals import Professional
from vir.services.signals import SignalRequest
from vir.store import db as db_module
from vir.store import epochs, locks, organisations
from vir.store import signals as signals_repo
from vir.store.certificate_probe import certificate_state
from vir.store.db import WRITE_LOCK, Database
from vir.store.locks import Lock

pytestmark = pytest.mark.postgresql_only("the round trips of PostgreSQL's driver")


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What psycopg sends, a message a round trip: statements, and the BEGIN, COMMIT
    and ROLLBACK it sends of its own accord."""
    sent: list[str] = []
    execute_send = psycopg.Cursor._execute_send
    exec_command = psycopg.Connection._exec_command

    def statement(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(" ".join(query.query.decode().split()))
        return execute_send(cursor, query, *args, **kwargs)

    def command(connection: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(command.decode() if isinstance(command, bytes) else str(command))
        return exec_command(connection, command, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "_execute_send", statement)
    monkeypatch.setattr(psycopg.Connection, "_exec_command", command)
    return sent


def test_a_write_begins_with_its_lock_in_one_round_trip(w: World, round_trips: list[str]) -> None:
    db = w.store.db
    with db.write() as session:
        session.execute(text("SELECT 1"))  # warms the pool: the first checkout connects
    round_trips.clear()
    with db.write() as session:
        session.execute(text("SELECT 2"))
    assert round_trips == [
        f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})",
        "SELECT 2",
        "COMMIT",
    ]


def test_an_exclusive_write_takes_the_lock_exclusively(w: World, round_trips: list[str]) -> None:
    with w.store.db.write(exclusive=True) as session:
        held = session.execute(
            text("SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        ).scalars()
        assert list(held) == ["ExclusiveLock"]
    assert round_trips[0].endswith(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")


def test_a_writer_runs_in_a_read_committed_transaction_holding_the_shared_lock(
    w: World,
) -> None:
    with w.store.db.write() as session:
        assert session.execute(text("SHOW transaction_isolation")).scalar_one() == (
            "read committed"
        )
        held = session.execute(
            text("SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        ).scalars()
        assert list(held) == ["ShareLock"]
        # A transaction: what it wrote is not visible outside until it commits.
        session.execute(text("CREATE TEMPORARY TABLE probe (n int) ON COMMIT DROP"))
        assert session.execute(text("SELECT txid_current_if_assigned()")).scalar() is not None


def test_every_connection_goes_back_to_the_pool_idle_with_autocommit_off(w: World) -> None:
    engine = w.store.db.engine
    handed_back: list[tuple[bool, Any]] = []

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            handed_back.append(
                (dbapi_connection.autocommit, dbapi_connection.info.transaction_status)
            )

    class Refused(Exception):
        pass

    with w.store.db.write() as session:
        session.execute(text("SELECT 1"))
    with pytest.raises(Refused), w.store.db.write() as session:
        session.execute(text("SELECT 1"))
        raise Refused
    with pytest.raises(Refused), w.store.db.write() as session:
        try:
            session.execute(text("SELECT 1/0"))  # the transaction is aborted
        except Exception:
            raise Refused from None
    assert handed_back == [(False, TransactionStatus.IDLE)] * 3
    # A reader on a pooled connection runs in a transaction of its own again.
    with w.store.db.read() as session:
        session.execute(text("SELECT 1"))
        raw = session.connection().connection.driver_connection
        assert raw.info.transaction_status == TransactionStatus.INTRANS


def _server_drops_every_other_connection(w: World) -> None:
    with psycopg.connect(_dsn(w), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _dsn(w: World) -> str:
    url = w.store.db.engine.url.set(drivername="postgresql", query={})
    return url.render_as_string(hide_password=False)


def test_a_connection_idle_too_long_is_tested_and_replaced_when_the_server_dropped_it(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with w.store.db.write() as session:
        session.execute(text("SELECT 1"))
    with w.store.db.read() as session:
        session.execute(text("SELECT 1"))
    _server_drops_every_other_connection(w)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    with w.store.db.write() as session:
        assert session.execute(text("SELECT 41 + 1")).scalar_one() == 42
    with w.store.db.read() as session:
        assert session.execute(text("SELECT 42")).scalar_one() == 42


def test_a_connection_handed_back_a_moment_ago_is_not_tested(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[Any] = []
    dialect: Any = w.store.db.engine.dialect
    monkeypatch.setattr(dialect, "do_ping", lambda connection: pings.append(connection))
    for _ in range(5):
        with w.store.db.write() as session:
            session.execute(text("SELECT 1"))
        with w.store.db.read() as session:
            session.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    with w.store.db.read() as session:
        session.execute(text("SELECT 1"))
    assert len(pings) == 1


def test_reads_sent_with_begin_answer_as_the_same_reads_sent_alone(
    w: World, round_trips: list[str]
) -> None:
    db = w.store.db
    oin = UTRECHT_ORGS[0].oin.value
    with db.write() as session:  # an epoch with a delta, moments set and unset
        epochs.add_incoming(session, 2, bytes(range(32)), T0)
        epochs.switch(session, 1, 2, T0, T0.replace(year=T0.year + 1))
    first = (organisations.participation(oin), epochs.READ)
    round_trips.clear()
    with db.write(first=first) as session:
        ahead = (epochs.load(session), organisations.participates(session, oin))
    assert len(round_trips) == 2  # BEGIN with the lock and both reads; COMMIT
    with db.write() as session:
        alone = (epochs.load(session), organisations.participates(session, oin))
    assert ahead == alone
    assert [r.state for r in ahead[0]] == [epochs.EpochState.PREVIOUS, epochs.EpochState.CURRENT]
    assert ahead[0][1].delta == bytes(range(32))
    assert all(r.created_at.tzinfo is not None for r in ahead[0])
    assert ahead[1] is True


def test_a_value_read_with_begin_is_quoted_as_a_literal(w: World) -> None:
    """An organisation number is checked long before; the read quotes it anyway."""
    hostile = f"{UTRECHT_ORGS[0].oin.value}' OR 'x' = 'x"
    with w.store.db.write(first=(organisations.participation(hostile),)) as session:
        assert organisations.participates(session, hostile) is False
        assert session.execute(text("SELECT count(*) FROM organisations")).scalar_one() > 0


def test_the_participation_read_with_begin_holds_the_row_for_share(w: World) -> None:
    oin = UTRECHT_ORGS[0].oin.value
    with w.store.db.write(first=(organisations.participation(oin),)) as session:
        assert organisations.participates(session, oin)
        with psycopg.connect(_dsn(w), autocommit=True) as other:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(
                    "SELECT 1 FROM organisations WHERE oin = %s FOR NO KEY UPDATE NOWAIT",
                    (oin,),
                )
            # Shared: another writer of the organisation reads it all the same.
            other.execute("SELECT 1 FROM organisations WHERE oin = %s FOR SHARE NOWAIT", (oin,))


def test_a_lock_wait_that_times_out_is_a_database_error_and_leaves_the_pool_clean(
    w: World,
) -> None:
    """What the API answers 503 to (vir.api.errors.DATABASE_DOWN), as when SQLAlchemy sent
    the statement itself; the statement named, no value in it."""
    url = w.store.db.engine.url.update_query_dict({"options": "-c lock_timeout=200ms"})
    impatient = Database.connect(url.render_as_string(hide_password=False))
    handed_back: list[tuple[bool, Any]] = []
    event.listen(
        impatient.engine,
        "checkin",
        lambda raw, _record: handed_back.append((raw.autocommit, raw.info.transaction_status)),
    )
    oin = UTRECHT_ORGS[0].oin.value
    try:
        with psycopg.connect(_dsn(w)) as migration:
            migration.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            with (
                pytest.raises(sqlalchemy.exc.OperationalError) as refused,
                impatient.write(first=(organisations.participation(oin),)),
            ):
                pytest.fail("the write lock was held elsewhere")
            assert isinstance(refused.value.orig, psycopg.errors.LockNotAvailable)
            assert "pg_advisory_xact_lock_shared" in str(refused.value)
            assert oin not in str(refused.value)
        with impatient.write() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        impatient.dispose()
    assert handed_back == [(False, TransactionStatus.IDLE)] * 2


def test_a_certificates_state_is_one_round_trip(w: World, round_trips: list[str]) -> None:
    """Read on every request (vir.services.identity): no BEGIN before it, no ROLLBACK
    after, and the connection back in the pool as readers expect it."""
    engine = w.store.db.engine
    certificate_state(engine, "0" * 64)  # warms the pool
    round_trips.clear()
    assert certificate_state(engine, "0" * 64) is None
    assert round_trips == ["SELECT oin, role, revoked_at FROM certificates WHERE fingerprint = $1"]
    with w.store.db.read() as session:
        session.execute(text("SELECT 1"))
        raw = session.connection().connection.driver_connection
        assert raw.autocommit is False
        assert raw.info.transaction_status == TransactionStatus.INTRANS


def test_a_read_sent_with_locks_sees_what_the_locks_last_holder_committed(w: World) -> None:
    """The read after a round of locks (``locks.take(then=...)``, one round trip) is a
    statement of its own: its snapshot is taken once the locks are held, so it sees
    what the writer holding them before committed (READ COMMITTED; one statement with
    the locks inside would read a snapshot from before the wait)."""
    lock = Lock.person(b"\x01" * 32)
    address = b"\x02" * 32
    holding, release = threading.Event(), threading.Event()

    def first_writer() -> None:
        with w.store.db.write() as session:
            locks.take(session, [lock])
            session.execute(
                text(
                    "INSERT INTO excluded_addresses (address, label, created_at) "
                    "VALUES (:a, 'shelter', now())"
                ),
                {"a": address},
            )
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=first_writer)
    thread.start()
    assert holding.wait(10)
    threading.Timer(0.3, release.set).start()
    with w.store.db.write() as session:
        rows = locks.take(
            session,
            [lock],
            then=locks.Then(
                "SELECT label FROM excluded_addresses WHERE address = %(a)s", {"a": address}
            ),
        )
    thread.join()
    assert rows == [("shelter",)]


def test_the_reads_sent_with_locks_answer_as_the_portable_ones(w: World) -> None:
    """``known`` and ``linked_parents_of`` read through psycopg with their locks on
    PostgreSQL, and through SQLAlchemy otherwise: the same answers, on a store with
    signals, parents, addresses, an archived signal and matches."""
    callers = [w.caller(UTRECHT_ORGS[0]), w.caller(UTRECHT_ORGS[1])]
    for n in range(6):
        w.signals.register(
            callers[n % 2],
            _request(f"PARITY-{n}", f"child-{n}", f"parent-{n % 2}", person(f"address-{n % 3}")),
        )
    with w.store.db.read() as session:
        stored = session.execute(text("SELECT person, address FROM signals")).all()
        keys = [
            GroupKey(Via(via), key)
            for via, key in session.execute(text("SELECT via, key FROM matches")).all()
        ]
    persons = {p for p, _a in stored} | {person("nobody")}
    pseudonyms = persons | {person(f"parent-{n}") for n in range(3)}
    addresses = {a for _p, a in stored if a is not None} | {b"\x09" * 32}
    refs = {"PARITY-1", "PARITY-5", "NOT-THERE"}
    unmatched = [*keys, GroupKey(Via.PARENT, b"\x07" * 32)]
    oin = UTRECHT_ORGS[1].oin.value  # PARITY-1 and PARITY-5 are its own
    with w.store.db.write() as session:
        portable = (
            signals_repo.known(session, oin, refs, pseudonyms, addresses, unmatched),
            signals_repo.linked_parents_of(session, persons),
        )
    with w.store.db.write() as session:
        lock = [Lock.person(b"\x03" * 32)]
        pipelined = (
            signals_repo.known(session, oin, refs, pseudonyms, addresses, unmatched, after=lock),
            signals_repo.linked_parents_of(
                session, persons, after=[Lock.group(GroupKey(Via.ADDRESS, b"\x04" * 32))]
            ),
        )
        assert locks.holds(session, lock[0])
    assert pipelined == portable
    known, linked = portable
    assert known.refs == {"PARITY-1", "PARITY-5"} and known.matched and linked
    assert known.persons and known.parents and known.addresses


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time a process waits for the server's answer: a statement sent alone, a
    pipeline's statements (at its end), BEGIN or COMMIT. psycopg waits in
    ``Connection.wait`` for every step; the steps that send nothing (setting autocommit,
    a statement queued in a pipeline, rolling back a connection without a transaction)
    are left out."""
    seen: list[str] = []
    wait = psycopg.Connection.wait
    quiet = {"_set_autocommit_gen", "_enter_gen"}

    def waiting(connection: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(gen, "__qualname__", "").rpartition(".")[2]
        idle = connection.info.transaction_status == TransactionStatus.IDLE
        queued = connection._pipeline is not None and name == "_execute_gen"
        if name not in quiet and not queued and not (name == "_rollback_gen" and idle):
            seen.append(name)
        return wait(connection, gen, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "wait", waiting)
    return seen


def _registration(n: int, address: bytes | None = None) -> SignalRequest:
    return _request(f"TRIPS-{n}", f"trips-child-{n}", f"trips-parent-{n}", address)


def test_a_registration_waits_for_the_server_five_times(w: World, waits: list[str]) -> None:
    """BEGIN with the write lock, the organisation and the epochs; the first locks with
    the parents linked; the group locks with who is known there; the audit event, the
    signal and its parents; COMMIT. Fourteen before session 48."""
    caller = w.caller(UTRECHT_ORGS[0])
    w.store.db.integrate_after_commit = False  # a service's integrator does it apart
    w.signals.register(caller, _registration(0))  # warms the pool
    waits.clear()
    w.signals.register(caller, _registration(1))
    assert waits == [
        "_execute_gen",  # BEGIN ...; the write lock; participation; epochs
        "_exit_gen",  # local_ref and person locks; the parents linked
        "_exit_gen",  # group locks; who is known
        "_exit_gen",  # the staged audit event, the signal, its parents
        "_commit_gen",
    ]
    with w.store.db.read() as session:
        stored = session.execute(
            text(
                "SELECT s.local_ref, count(p.parent) FROM signals s "
                "JOIN signal_parents p ON p.signal_id = s.id GROUP BY s.local_ref"
            )
        ).all()
    assert sorted(stored) == [("TRIPS-0", 1), ("TRIPS-1", 1)]


def test_a_batch_stores_what_its_items_meet_and_what_they_store_last(w: World) -> None:
    """Items that meet nobody are written out at the commit (through psycopg, in one
    round trip); one that meets another is stored at once, with what came before it
    in the batch: both end up stored as the portable path stores them."""
    shared_address = person("trips-address")
    batch = [_registration(10), _registration(11, shared_address), _registration(12)]
    batch.append(_registration(13, shared_address))  # meets item 11 in the same batch
    results = w.signals.register_many(w.caller(UTRECHT_ORGS[0]), batch)
    assert [type(r).__name__ for r in results] == ["Registration"] * 4
    with w.store.db.read() as session:
        stored = session.execute(
            text(
                "SELECT local_ref, address, professional_name, created_at FROM signals "
                "WHERE local_ref LIKE 'TRIPS-%' ORDER BY local_ref"
            )
        ).all()
        parents = session.execute(text("SELECT count(*) FROM signal_parents")).scalar_one()
    assert [r[0] for r in stored] == ["TRIPS-10", "TRIPS-11", "TRIPS-12", "TRIPS-13"]
    assert [r[1] for r in stored] == [None, shared_address, None, shared_address]
    assert {r[2] for r in stored} == {"Anna de Wit"}
    assert all(r[3].utcoffset() == dt.timedelta(0) for r in stored)
    assert parents == 4


def _request(ref: str, child: str, parent: str, address: bytes | None = None) -> SignalRequest:
    return SignalRequest(
        ref,
        1,
        person(child),
        (person(parent),),
        address,
        None,
        Professional("Anna de Wit", "anna@example.nl", "010-1234567"),
        None,
    )
