"""Webhook secrets sealed at rest (``vir.crypto.secretbox``): AES-256-GCM bound to the
organisation, a key file made once with mode 0600, failures that say only a code."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vir.crypto.secretbox import (
    SealedSecretError,
    init_secret_key,
    key_path,
    load_secret_box,
)
from vir.crypto.standard_webhooks import new_secret
from vir.domain.errors import ConfigurationError

OIN, OTHER = "00000009000000000001", "00000009000000000002"


def test_a_sealed_secret_opens_for_its_organisation_only(tmp_path: Path) -> None:
    init_secret_key(tmp_path)
    box = load_secret_box(tmp_path)
    secret = new_secret()
    sealed = box.seal(secret, OIN)
    assert box.open(sealed, OIN) == secret
    assert box.seal(secret, OIN) != sealed  # a fresh nonce each time
    with pytest.raises(SealedSecretError) as other:
        box.open(sealed, OTHER)
    assert other.value.code == "secret"
    assert secret not in repr(box) and secret not in str(other.value)


@pytest.mark.parametrize("position", [12, 20, -1])
def test_a_changed_byte_or_a_foreign_value_does_not_open(tmp_path: Path, position: int) -> None:
    init_secret_key(tmp_path)
    box = load_secret_box(tmp_path)
    sealed = box.seal(new_secret(), OIN)
    flipped = "A" if sealed[position] != "A" else "B"
    changed = sealed[:position] + flipped + (sealed[position + 1 :] if position != -1 else "")
    for stored, code in ((changed, "secret"), ("vir-aesgcm1:!!", "secret"),
                         ("garbage", "secret"), (new_secret(), "unsealed")):  # fmt: skip
        with pytest.raises(SealedSecretError) as refused:
            box.open(stored, OIN)
        assert refused.value.code == code


def test_the_key_file_is_made_once_owner_only_and_checked(tmp_path: Path) -> None:
    path, created = init_secret_key(tmp_path / "keys")
    before = path.read_bytes()
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert init_secret_key(tmp_path / "keys") == (path, False)
    assert path.read_bytes() == before  # never overwritten
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_secret_box(tmp_path / "keys")
    path.chmod(0o600)
    path.write_text("not hex\n")
    with pytest.raises(ConfigurationError, match="not 32 bytes in hex") as bad:
        load_secret_box(tmp_path / "keys")
    assert "not hex" not in str(bad.value)
    with pytest.raises(ConfigurationError, match="vir keys init"):
        load_secret_box(tmp_path / "none")
    assert key_path(tmp_path) == tmp_path / "webhook-secrets.key"
