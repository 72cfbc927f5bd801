"""A key holder without its keys says how a key holder gets them, for its deployment.

Before, ``vir keyholder key`` on a fresh key holder folder gave the index's advice
("VIR_KEYS_DIR is ...: set VIR_KEYS_DIR to the index's keys folder. Only when setting up
a new index: vir keys init ..."), and ``vir keyholder serve`` of a 2-of-3 holder without
its share advised ``vir keyholder init``, which refuses at that threshold. A holder of a
t-of-n deployment gets its share from the key generation (``vir keyholder dkg start``)
or, in place of a lost holder, from the share repair.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from vir import cli
from vir.domain.errors import ConfigurationError
from vir.keyholder.app import create_keyholder_app
from vir.keyholder.settings import KeyholderSettings
from vir.store.migrate import upgrade

pytestmark = pytest.mark.sqlite_only("the key holder's database is a file here")

DKG = "vir keyholder dkg start, with the other holders of a new deployment"
REPAIR = 'vir keyholder repair request (docs/operations.md, "Losing a key holder")'


def _vir(tmp_path: Path, threshold: int, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIR_KEYHOLDER_THRESHOLD", str(threshold))
        patch.setenv("VIR_KEYHOLDER_KEYS_DIR", str(tmp_path / "kh1" / "keys"))
        patch.setenv("VIR_KEYHOLDER_DATABASE_URL", f"sqlite:///{tmp_path / 'kh1' / 'kh.db'}")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("threshold", "set_up"),
    [(1, "vir keyholder init"), (2, f"{DKG}; in place of a lost holder, {REPAIR}")],
)
def test_key_on_a_fresh_key_holder_names_the_key_holders_folder_and_set_up(
    tmp_path: Path, threshold: int, set_up: str
) -> None:
    keys = tmp_path / "kh1" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    code, out, err = _vir(tmp_path, threshold, "keyholder", "key")
    assert (code, out) == (2, "")
    assert err == (
        f"vir: no checkpoint signing key at {keys / 'checkpoint-ed25519.key'}; "
        f"VIR_KEYHOLDER_KEYS_DIR is {keys} ({keys.resolve()}) and holds none: set "
        "VIR_KEYHOLDER_KEYS_DIR to the key holder's keys folder. Only when setting up a "
        f"new key holder: {set_up}\n"
    )


def test_a_threshold_holder_without_its_share_is_pointed_to_the_key_generation(
    tmp_path: Path,
) -> None:
    """What ``vir keyholder serve`` builds before it listens (``create_keyholder_app``)."""
    database = f"sqlite:///{tmp_path / 'kh.db'}"
    upgrade(database)
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    settings = KeyholderSettings(database_url=database, keys_dir=keys, threshold=2)
    with pytest.raises(ConfigurationError) as refused:
        create_keyholder_app(settings)
    said = str(refused.value)
    assert said.startswith(f"no OPRF key in {keys}; check VIR_KEYHOLDER_KEYS_DIR")
    assert said.endswith(
        f"Only when setting up a new key holder: {DKG}; in place of a lost holder, {REPAIR}"
    )
    assert "vir keyholder init" not in said
