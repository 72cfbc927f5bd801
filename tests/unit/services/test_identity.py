"""Revocation in the registry, and the authenticator's cache giving way to it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.instore import ORGS, T0, fresh_store, template

from vir.crypto import pki
from vir.domain.errors import CertificateRevoked, InputError
from vir.services.identity import (
    Authenticator,
    presented,
    revoke_certificate,
    revoked_certificates,
)
from vir.services.onboarding import register_certificate


def _certificate(oin: str, name: str) -> pki.Issued:
    ca = pki.create_ca("test CA", T0 - dt.timedelta(days=1))
    return pki.issue_client_certificate(
        ca, oin, name, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=1)
    )


def test_revocation_is_recorded_once(tmp_path: Path) -> None:
    issued = _certificate(str(ORGS[0].oin), ORGS[0].name)
    claim = presented(pki.cert_pem(issued.cert).decode("ascii"))
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        register_certificate(store.db, issued.cert, T0)
        authenticator = Authenticator(store.db, lambda: T0)
        assert authenticator.authenticate(claim).oin == str(ORGS[0].oin)

        revoked = revoke_certificate(store.db, T0, fingerprint=claim.fingerprint)
        assert (revoked.oin, revoked.already) == (str(ORGS[0].oin), False)
        assert revoked_certificates(store.db) == [(issued.cert.serial_number, T0)]
        with pytest.raises(CertificateRevoked):
            authenticator.authenticate(claim)

        again = revoke_certificate(
            store.db, T0 + dt.timedelta(hours=1), serial=f"{revoked.serial:X}"
        )
        assert (again.already, again.revoked_at) == (True, T0)
        with pytest.raises(InputError):
            revoke_certificate(store.db, T0, fingerprint="ab" * 32)
