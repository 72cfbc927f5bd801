"""CRLs of the development CA: content, signature, and always moving forward."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from vir.crypto import pki

T0 = dt.datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=dt.UTC)


def test_crl_lists_the_revoked_serials_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    ca = pki.create_ca("test CA", T0)
    crl = pki.build_crl(ca, [(17, T0), (5, T0 - dt.timedelta(days=1))], T0)
    path = tmp_path / "sub" / "crl.pem"
    pki.write_crl(crl, path)
    loaded = pki.load_crl(path)
    assert loaded is not None
    assert pki.crl_serials(loaded) == {5, 17}
    assert loaded.get_revoked_certificate_by_serial_number(17).revocation_date_utc == T0.replace(
        microsecond=0
    )
    assert pki.crl_is_signed_by(loaded, ca.cert)
    assert not pki.crl_is_signed_by(loaded, pki.create_ca("other", T0).cert)
    assert loaded.issuer == ca.cert.subject
    assert loaded.next_update_utc == loaded.last_update_utc + dt.timedelta(days=pki.CRL_DAYS)
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["crl.pem"]


def test_each_new_crl_is_numbered_higher_and_never_dated_in_the_future() -> None:
    ca = pki.create_ca("test CA", T0)
    first = pki.build_crl(ca, [], T0)
    second = pki.build_crl(ca, [(1, T0)], T0, first)
    third = pki.build_crl(ca, [(1, T0)], T0 + dt.timedelta(milliseconds=10), second)

    def number(crl: x509.CertificateRevocationList) -> int:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    assert [number(c) for c in (first, second, third)] == [1, 2, 3]
    assert [c.last_update_utc for c in (first, second, third)] == [T0.replace(microsecond=0)] * 3


def test_no_crl_yet(tmp_path: Path) -> None:
    assert pki.load_crl(tmp_path / "crl.pem") is None
