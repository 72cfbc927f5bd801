"""Write the OpenAPI document the service serves to a file, for Spectral (``make spectral``).

The app is built as the service builds it (``create_app``), on throwaway keys and a
throwaway migrated SQLite database in a temporary directory: nothing of a real
deployment is read or written.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from vir.api.app import create_app
from vir.crypto.keys import init_oprf_key
from vir.crypto.signing import init_signing_key
from vir.settings import Settings
from vir.store.migrate import upgrade


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="vir-openapi-") as tmp:
        keys = Path(tmp) / "keys"
        init_oprf_key(keys)
        init_signing_key(keys)
        url = f"sqlite:///{Path(tmp) / 'openapi.sqlite'}"
        upgrade(url)
        app = create_app(Settings(database_url=url, keys_dir=keys))
        try:
            spec = app.openapi()
        finally:
            app.state.services.db.dispose()
    out.write_text(json.dumps(spec, indent=2, sort_keys=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
