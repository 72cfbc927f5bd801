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
    crl_marker,
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


def test_a_changed_revocation_marker_drops_the_cache(tmp_path: Path) -> None:
    issued = _certificate(str(ORGS[0].oin), ORGS[0].name)
    claim = presented(pki.cert_pem(issued.cert).decode("ascii"))
    marker = [0]
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        register_certificate(store.db, issued.cert, T0)
        plain = Authenticator(store.db, lambda: T0)
        watched = Authenticator(store.db, lambda: T0, revocation_marker=lambda: marker[0])
        for authenticator in (plain, watched):
            assert authenticator.authenticate(claim).oin == str(ORGS[0].oin)

        revoked = revoke_certificate(store.db, T0, fingerprint=claim.fingerprint)
        assert (revoked.oin, revoked.already) == (str(ORGS[0].oin), False)
        assert revoked_certificates(store.db) == [(issued.cert.serial_number, T0)]
        # Without a marker the cache answers until it expires; with one, until it changes.
        assert plain.cached(claim) is not None
        assert watched.cached(claim) is not None
        marker[0] += 1
        assert watched.cached(claim) is None
        with pytest.raises(CertificateRevoked):
            watched.authenticate(claim)

        again = revoke_certificate(
            store.db, T0 + dt.timedelta(hours=1), serial=f"{revoked.serial:X}"
        )
        assert (again.already, again.revoked_at) == (True, T0)
        with pytest.raises(InputError):
            revoke_certificate(store.db, T0, fingerprint="ab" * 32)


def test_crl_marker_changes_when_the_crl_is_replaced(tmp_path: Path) -> None:
    ca = pki.create_ca("test CA", T0)
    path = tmp_path / "crl.pem"
    marker = crl_marker(path)
    assert marker() is None
    pki.write_crl(pki.build_crl(ca, [], T0), path)
    first = marker()
    assert first is not None and marker() == first
    pki.write_crl(pki.build_crl(ca, [(7, T0)], T0, pki.load_crl(path)), path)
    assert marker() != first
