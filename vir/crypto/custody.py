"""Which keys may be where: the index never holds an OPRF key (DESIGN.md §4)."""

from __future__ import annotations

import re
from pathlib import Path

from vir.domain.errors import ConfigurationError

# Plain and HSM-wrapped OPRF key files (vir.crypto.keys), of any epoch.
_OPRF_KEY_FILE = re.compile(r"oprf-epoch-[0-9]+\.key(\.wrapped)?")


def require_no_oprf_key(keys_dir: Path) -> None:
    """Refuse to start the index beside an OPRF key: whoever runs the index must not be
    able to pseudonymise (``vir dev init`` moves a development key to the key holder)."""
    if not keys_dir.is_dir():
        return
    found = sorted(p.name for p in keys_dir.iterdir() if _OPRF_KEY_FILE.fullmatch(p.name))
    if found:
        raise ConfigurationError(
            f"the index's keys directory {keys_dir} holds an OPRF key ({found[0]}); it "
            "belongs to the key holder alone: move it to the key holder's keys directory "
            "(VIR_KEYHOLDER_KEYS_DIR; `vir dev init` does this for a development set-up)"
        )
