"""Write the OpenAPI documents the services serve to files, for Spectral (``make spectral``):
the index's (``create_app``) and the key holder's (``create_keyholder_app``).

Each app is built as its service builds it, on throwaway keys and a throwaway migrated
SQLite database in a temporary directory: nothing of a real deployment is read or
written.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from vir.api.app import create_app
from vir.crypto.keys import init_oprf_key
from vir.crypto.signing import init_signing_key
from vir.keyholder.app import create_keyholder_app
from vir.keyholder.settings import KeyholderSettings
from vir.settings import Settings
from vir.store.migrate import upgrade


def _spec(tmp: Path, keyholder: bool) -> dict[str, Any]:
    keys = tmp / ("keyholder-keys" if keyholder else "keys")
    if keyholder:
        init_oprf_key(keys)
    init_signing_key(keys)
    url = f"sqlite:///{tmp / ('keyholder.sqlite' if keyholder else 'openapi.sqlite')}"
    upgrade(url)
    if keyholder:
        app = create_keyholder_app(KeyholderSettings(database_url=url, keys_dir=keys))
    else:
        app = create_app(Settings(database_url=url, keys_dir=keys))
    try:
        spec: dict[str, Any] = app.openapi()
    finally:
        app.state.services.db.dispose()
    return spec


def main(index_out: Path, keyholder_out: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="vir-openapi-") as tmp:
        outs = [(index_out, False)] + ([(keyholder_out, True)] if keyholder_out else [])
        for out, keyholder in outs:
            spec = _spec(Path(tmp), keyholder)
            out.write_text(json.dumps(spec, indent=2, sort_keys=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
