"""A revoked certificate is refused from the very next request on, by every process that
shares the registry, with no CRL configured (README "refused from the next request on").

Before, an accepted certificate was remembered for 5 s per process and only a CRL on the
same host cut that short: under ``make run`` a revoked certificate kept working for
seconds at the index and at the key holder.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.instore import ORGS, T0, fresh_store, template

from vir.crypto import pki
from vir.domain.errors import CertificateRevoked, UnknownCertificate
from vir.domain.organisations import Role
from vir.services.identity import Authenticator, Presented, presented, revoke_certificate
from vir.services.onboarding import register_certificate
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
