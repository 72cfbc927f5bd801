"""A key generation dealer's polynomial file (``vir.crypto.polynomial_file``): round
trip plain and wrapped by a SoftHSM2 token, never overwritten, refused (naming the
file, never its content) when missing, exposed, malformed or of the other kind, and
destroyed in both forms."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from support.key_forms import written_forms
from support.softhsm import session_softhsm

from vir.crypto import oprf
from vir.crypto.polynomial_file import (
    destroy_polynomial,
    read_polynomial,
    wrapped_path,
    write_polynomial,
)
from vir.domain.errors import ConfigurationError


def _polynomial(t: int = 3) -> list[bytes]:
    return [oprf.random_scalar() for _ in range(t)]


def _refused(path: Path, t: int, match: str, coefficients: list[bytes]) -> None:
    with pytest.raises(ConfigurationError, match=match) as refused:
        read_polynomial(path, t, None)
    for coefficient in coefficients:
        for form in written_forms(coefficient):
            assert form.decode("latin-1") not in refused.value.detail


def test_a_plain_polynomial_round_trips_0600_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "dkg-run.polynomial"
    coefficients = _polynomial()
    assert write_polynomial(path, coefficients, None) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_polynomial(path, 3, None) == coefficients
    with pytest.raises(ConfigurationError, match="never overwrites"):
        write_polynomial(path, _polynomial(), None)
    assert read_polynomial(path, 3, None) == coefficients
    assert destroy_polynomial(path)
    assert not path.exists()
    assert not destroy_polynomial(path)


def test_a_missing_exposed_or_malformed_polynomial_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dkg-run.polynomial"
    coefficients = _polynomial()
    _refused(path, 3, "no polynomial at", [])
    write_polynomial(path, coefficients, None)
    _refused(path, 2, "is malformed", coefficients)  # another t
    path.chmod(0o640)
    _refused(path, 3, "accessible by group or others", coefficients)
    path.chmod(0o600)
    path.write_text(f"{coefficients[0].hex()}\n{'00' * 32}\n{coefficients[2].hex()}\n")
    _refused(path, 3, "is malformed", coefficients)  # a zero coefficient


def test_with_a_token_the_polynomial_is_wrapped(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path / "dkg-run.polynomial"
    coefficients = _polynomial()
    with session_softhsm(tmp_path_factory).new_token().open() as token:
        written = write_polynomial(path, coefficients, token)
        assert written == wrapped_path(path) and not path.exists()
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        content = written.read_bytes()
        assert not any(form in content for c in coefficients for form in written_forms(c))
        assert read_polynomial(path, 3, token) == coefficients
        # Copied to another run's name, it does not unwrap.
        other = tmp_path / "dkg-other.polynomial"
        wrapped_path(other).write_bytes(content)
        wrapped_path(other).chmod(0o600)
        with pytest.raises(ConfigurationError, match="does not unwrap"):
            read_polynomial(other, 3, token)
    with pytest.raises(ConfigurationError, match="wrapped by an HSM"):
        read_polynomial(path, 3, None)
    assert destroy_polynomial(path)
    assert not written.exists()
