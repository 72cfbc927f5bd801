from __future__ import annotations

import os
from pathlib import Path

import pytest

from vir.crypto import keys
from vir.crypto.evaluator import LocalEvaluator
from vir.domain.errors import ConfigurationError, InvalidElement


def test_init_creates_a_private_key_once(tmp_path: Path) -> None:
    path, created = keys.init_oprf_key(tmp_path / "k")
    assert created and path.name == "oprf-epoch-1.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o700
    before = path.read_text()
    again, created_again = keys.init_oprf_key(tmp_path / "k")
    assert (again, created_again) == (path, False)
    assert path.read_text() == before
    assert keys.load_oprf_keyring(tmp_path / "k").current.epoch == 1


def test_missing_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="vir keys init"):
        keys.load_oprf_keyring(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="vir keys init"):
        keys.load_oprf_keyring(tmp_path / "empty")


def _write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "oprf-epoch-1.key"
    path.write_text(text)
    os.chmod(path, mode)
    return tmp_path


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zz",
        "00" * 32,
        "ab" * 16,
        "ff" * 32,
        # RFC 9497's published test key
        "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e",
    ],
)
def test_bad_key_material_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        keys.load_oprf_keyring(_write(tmp_path, text))
    # The message names the file and the remedy, never the content.
    assert text not in str(info.value) or text == ""


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="chmod 600"):
        keys.load_oprf_keyring(_write(tmp_path, "01" + "00" * 31, 0o640))


def test_newest_epoch_is_current_and_repr_hides_the_secret(tmp_path: Path) -> None:
    keys.init_oprf_key(tmp_path)
    second = tmp_path / "oprf-epoch-2.key"
    second.write_text("02" + "00" * 31)
    os.chmod(second, 0o600)
    ring = keys.load_oprf_keyring(tmp_path)
    assert ring.current.epoch == 2
    assert "02" + "00" * 31 not in repr(ring)
    evaluator = LocalEvaluator(ring)
    assert evaluator.epoch == 2
    assert "secret" not in repr(evaluator)


def test_evaluator_validates_the_whole_batch_first(tmp_path: Path) -> None:
    keys.init_oprf_key(tmp_path)
    evaluator = LocalEvaluator(keys.load_oprf_keyring(tmp_path))
    from vir.crypto import oprf

    good = oprf.blind(b"a")[1]
    with pytest.raises(InvalidElement) as info:
        evaluator.evaluate([good, good, bytes(32)])
    assert info.value.field == "blinded_elements[2]"
    assert len(evaluator.evaluate([good, good])) == 2
