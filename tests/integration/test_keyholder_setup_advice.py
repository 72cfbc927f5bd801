"""A key holder without its keys says how a key holder gets them, for its deployment.

Before, ``vir keyholder serve`` of a 2-of-3 holder without its share advised ``vir
keyholder init``, which refuses at that threshold. A holder of a
t-of-n deployment gets its share from the key generation (``vir keyholder dkg start``)
or, in place of a lost holder, from the share repair.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vir.domain.errors import ConfigurationError
from vir.keyholder.app import create_keyholder_app
from vir.keyholder.settings import KeyholderSettings
from vir.store.migrate import upgrade

pytestmark = pytest.mark.sqlite_only("the key holder's database is a file here")

DKG = "vir keyholder dkg start, with the other holders of a new deployment"
REPAIR = 'vir keyholder repair request (docs/operations.md, "Losing a key holder")'


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
