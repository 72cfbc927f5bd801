"""A revoked certificate is refused from the very next request on, by every process that
shares the registry, with no CRL configured (README "refused from the next request on").

Before, an accepted certificate was remembered for 5 s per process and only a CRL on the
same host cut that short: under ``make run`` a revoked certificate kept working for
seconds at the index and at the key holder.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.instore import ORGS, T0, fresh_store, template

from vir.crypto import pki
from vir.domain.errors import CertificateRevoked, UnknownCertificate
from vir.domain.organisations import Role
from vir.services.identity import Authenticator, Presented, presented, revoke_certificate
from vir.services.onboarding import register_certificate
from vir.store.certificate_probe import (
    UNKNOWN,
    CertificateProbe,
    CertificateState,
    certificate_state,
)
from vir.store.db import Database
from vir.store.tables import CertificateRow


def _claim(index: int) -> tuple[pki.Issued, Presented]:
    ca = pki.create_ca("test CA", T0 - dt.timedelta(days=1))
    issued = pki.issue_client_certificate(
        ca,
        str(ORGS[index].oin),
        ORGS[index].name,
        T0 - dt.timedelta(hours=1),
        T0 + dt.timedelta(days=1),
    )
    return issued, presented(pki.cert_pem(issued.cert).decode("ascii"))


@contextmanager
def _identified(
    tmp_path: Path,
) -> Iterator[tuple[Any, pki.Issued, Presented, Authenticator]]:
    """A store with ``ORGS[0]``'s certificate registered, and an authenticator that has
    identified it once (time standing still at T0)."""
    issued, claim = _claim(0)
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        register_certificate(store.db, issued.cert, T0)
        authenticator = Authenticator(store.db, lambda: T0)
        authenticator.authenticate(claim)
        yield store, issued, claim, authenticator


def test_every_instance_refuses_a_revocation_at_once(tmp_path: Path) -> None:
    issued, claim = _claim(0)
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        register_certificate(store.db, issued.cert, T0)
        # Two instances (or workers) on one database; time stands still, so any
        # memory of the acceptance would still be fresh.
        instances = [Authenticator(store.db, lambda: T0) for _ in range(2)]
        for authenticator in instances:
            for _ in range(2):
                assert authenticator.authenticate(claim).oin == str(ORGS[0].oin)

        revoke_certificate(store.db, T0, fingerprint=pki.fingerprint(issued.cert))
        for authenticator in instances:
            with pytest.raises(CertificateRevoked):
                authenticator.authenticate(claim)


def test_a_deregistered_or_changed_certificate_is_not_answered_from_memory(
    tmp_path: Path,
) -> None:
    issued, claim = _claim(0)
    fingerprint = pki.fingerprint(issued.cert)
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        register_certificate(store.db, issued.cert, T0)
        authenticator = Authenticator(store.db, lambda: T0)
        assert authenticator.authenticate(claim).role == Role.SYSTEM

        with store.db.write() as session:
            row = session.get(CertificateRow, fingerprint)
            assert row is not None
            row.role = Role.PRIVACY_OFFICER.value
        assert authenticator.authenticate(claim).role == Role.PRIVACY_OFFICER

        with store.db.write() as session:
            row = session.get(CertificateRow, fingerprint)
            assert row is not None
            session.delete(row)
        with pytest.raises(UnknownCertificate):
            authenticator.authenticate(claim)


@pytest.mark.sqlite_only("the probe reads a SQLite file; PostgreSQL has none")
def test_recall_reads_the_row_of_every_request_on_sqlite(tmp_path: Path) -> None:
    """The event loop's path (``recall``): a local SQLite read of the row, each time."""
    issued, claim = _claim(0)
    fingerprint = pki.fingerprint(issued.cert)
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        register_certificate(store.db, issued.cert, T0)
        now = [T0]
        authenticator = Authenticator(store.db, lambda: now[0])
        assert authenticator.recall(claim) is None  # never identified: authenticate
        caller = authenticator.authenticate(claim)
        assert authenticator.recall(claim) == caller

        with store.db.write() as session:
            row = session.get(CertificateRow, fingerprint)
            assert row is not None
            row.role = Role.PRIVACY_OFFICER.value
        assert authenticator.recall(claim) is None
        assert authenticator.authenticate(claim).role == Role.PRIVACY_OFFICER
        assert authenticator.recall(claim) is not None

        # Revoked as of an hour from now: accepted until then (the probe's time equals
        # the session's), refused after.
        with store.db.write() as session:
            row = session.get(CertificateRow, fingerprint)
            assert row is not None
            row.revoked_at = T0 + dt.timedelta(hours=1)
        assert authenticator.recall(claim) is not None
        now[0] = T0 + dt.timedelta(hours=1, seconds=1)
        assert authenticator.recall(claim) is None
        with pytest.raises(CertificateRevoked):
            authenticator.authenticate(claim)


@pytest.mark.sqlite_only("the probe reads a SQLite file; PostgreSQL has none")
def test_recall_sees_a_revocation_by_another_process_at_once(tmp_path: Path) -> None:
    with _identified(tmp_path) as (store, issued, claim, authenticator):
        assert authenticator.recall(claim) is not None
        other = Database.connect(str(store.db.engine.url))
        try:
            revoke_certificate(other, T0, fingerprint=pki.fingerprint(issued.cert))
        finally:
            other.engine.dispose()
        assert authenticator.recall(claim) is None
        with pytest.raises(CertificateRevoked):
            authenticator.authenticate(claim)


@pytest.mark.sqlite_only("the probe reads a SQLite file; PostgreSQL has none")
def test_recall_gives_way_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    """A database the probe cannot read without waiting (here: locked against readers)
    is read the usual way; nothing is answered from memory."""
    with _identified(tmp_path) as (store, issued, claim, authenticator):
        store.db.engine.dispose()  # the store's own connections let go of the file
        # A connection in exclusive locking mode shuts out even WAL readers.
        blocker = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
        blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            probe = CertificateProbe.of(store.db.engine)
            assert probe is not None
            assert probe.state(pki.fingerprint(issued.cert)) is UNKNOWN
            assert authenticator.recall(claim) is None
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert authenticator.recall(claim) is not None
        assert probe.state("00" * 32) is None


@pytest.mark.sqlite_only("the probe reads a SQLite file; PostgreSQL has none")
def test_a_forked_process_reads_with_its_own_connection(tmp_path: Path) -> None:
    with _identified(tmp_path) as (store, issued, claim, authenticator):
        assert authenticator.recall(claim) is not None  # the parent's connection is open
        revoke_certificate(store.db, T0, fingerprint=pki.fingerprint(issued.cert))
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child's exit code is the assertion)
            os._exit(0 if authenticator.recall(claim) is None else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert authenticator.recall(claim) is None


@pytest.mark.postgresql_only("PostgreSQL has no probe")
def test_on_postgresql_every_request_is_looked_up(tmp_path: Path) -> None:
    with _identified(tmp_path) as (store, issued, claim, authenticator):
        assert authenticator.recall(claim) is None  # the worker thread's authenticate
        revoke_certificate(store.db, T0, fingerprint=pki.fingerprint(issued.cert))
        with pytest.raises(CertificateRevoked):
            authenticator.authenticate(claim)


def test_the_read_every_request_makes_says_what_the_row_says(tmp_path: Path) -> None:
    """``certificate_state`` (on PostgreSQL straight through psycopg) against the ORM."""
    with _identified(tmp_path) as (store, issued, _claim, _authenticator):
        fingerprint = pki.fingerprint(issued.cert)
        revoke_certificate(store.db, T0, fingerprint=fingerprint)
        state = certificate_state(store.db.engine, fingerprint)
        with store.db.read() as session:
            row = session.get(CertificateRow, fingerprint)
        assert row is not None
        assert state == CertificateState(row.oin, row.role, row.revoked_at)
        assert state.revoked_at == T0 and state.revoked_at.utcoffset() == dt.timedelta(0)
        assert certificate_state(store.db.engine, "00" * 32) is None
        assert certificate_state(store.db.engine, "'; DROP TABLE certificates; --") is None
        assert certificate_state(store.db.engine, fingerprint) == state
