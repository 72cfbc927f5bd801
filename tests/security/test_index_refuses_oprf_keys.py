"""The index refuses to start beside an OPRF key, whatever the key file is called.

Before, the check looked at file names only: a share copied into VIR_KEYS_DIR as
``oprf-epoch-7.key`` was refused, but renamed to ``share.key`` ``vir serve`` started.
Now the content counts too, in every form the key holder writes (a whole key, a share,
an HSM-wrapped file), made here by the key holder's own code; the index's own keys and
the key holder's verifier key are allowed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.softhsm import HsmToken, session_softhsm

from vir.api.app import create_app
from vir.crypto import keys, oprf
from vir.crypto.custody import require_no_oprf_key
from vir.crypto.hsm import Token
from vir.crypto.secretbox import init_secret_key
from vir.crypto.signing import CheckpointSigner, init_signing_key
from vir.domain.errors import ConfigurationError
from vir.settings import Settings


@pytest.fixture
def index_keys(tmp_path: Path) -> Path:
    """An index's keys folder as `vir keys init` and `vir dev init` leave it."""
    folder = tmp_path / "keys"
    init_signing_key(folder)
    init_secret_key(folder)
    verifier = CheckpointSigner.from_seed(bytes(range(32)), "kh/log").verifier_key()
    (folder / "keyholder.pub").write_text(verifier + "\n", encoding="ascii")
    (folder / "README.md").write_text("# keys/\n", encoding="utf-8")
    return folder


@pytest.fixture
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    hsm_token: HsmToken = session_softhsm(tmp_path_factory).new_token()
    with hsm_token.open() as opened:
        yield opened


def _key_holders_file(tmp_path: Path, share_index: int | None, token: Token | None = None) -> Path:
    """An OPRF key file as the key holder writes it (its content, never shown)."""
    return keys.write_oprf_key(
        tmp_path / "keyholder", 1, oprf.random_scalar(), share_index, token=token
    )


def _refusal(folder: Path) -> str:
    with pytest.raises(ConfigurationError) as refused:
        require_no_oprf_key(folder)
    return str(refused.value)


def test_the_index_s_own_keys_are_allowed(index_keys: Path) -> None:
    require_no_oprf_key(index_keys)


@pytest.mark.parametrize("name", ["share.key", "oprf.bak", "keyholder.pub", "notes.txt"])
def test_a_share_under_another_name_is_refused_naming_the_file(
    index_keys: Path, tmp_path: Path, name: str
) -> None:
    share = _key_holders_file(tmp_path, share_index=1)
    (index_keys / name).unlink(missing_ok=True)
    shutil.copy(share, index_keys / name)
    said = _refusal(index_keys)
    assert said.startswith(
        f"the index's keys directory {index_keys} holds {name}, which has the content of an "
        "OPRF key share; an OPRF key belongs to the key holder alone"
    )
    assert share.read_text(encoding="ascii").split()[0] not in said


def test_a_share_over_the_checkpoint_key_is_refused(index_keys: Path, tmp_path: Path) -> None:
    shutil.copy(_key_holders_file(tmp_path, share_index=2), index_keys / "checkpoint-ed25519.key")
    assert "holds checkpoint-ed25519.key, which has the content of an OPRF key share" in (
        _refusal(index_keys)
    )


def test_a_whole_key_under_another_name_is_refused(index_keys: Path, tmp_path: Path) -> None:
    shutil.copy(_key_holders_file(tmp_path, share_index=None), index_keys / "k")
    assert "holds k, which has the content of a whole OPRF key, 32 bytes in hex" in (
        _refusal(index_keys)
    )


def test_a_wrapped_key_under_another_name_is_refused(
    index_keys: Path, tmp_path: Path, token: Token
) -> None:
    for share_index, name in ((None, "a"), (3, "b")):
        wrapped = _key_holders_file(tmp_path / name, share_index, token=token)
        shutil.copy(wrapped, index_keys / f"{name}.bin")
        assert f"holds {name}.bin, which has the content of an HSM-wrapped OPRF key" in (
            _refusal(index_keys)
        )
        (index_keys / f"{name}.bin").unlink()


def test_the_name_alone_is_still_refused(index_keys: Path) -> None:
    (index_keys / "oprf-epoch-7.key").write_text("anything\n", encoding="ascii")
    assert "holds oprf-epoch-7.key, which has an OPRF key file's name" in _refusal(index_keys)


def test_vir_serve_refuses_to_start_beside_a_renamed_share(
    index_keys: Path, tmp_path: Path
) -> None:
    shutil.copy(_key_holders_file(tmp_path, share_index=1), index_keys / "share.key")
    with pytest.raises(ConfigurationError, match=r"holds share\.key, which has the content"):
        create_app(Settings(keys_dir=index_keys))
