"""Key holders in folders of their own (a keys directory and a SQLite database each),
run as ``vir keyholder ...`` in this process: for the procedures whose files travel
between holders (share repair, key generation). Every run's output is kept, so that a
test can search it for secrets."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from vir import cli
from vir.crypto.signing import load_signing_key
from vir.keyholder import exchange
from vir.store.db import Database
from vir.store.tables import AuditEntryRow


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@dataclass
class HolderFolders:
    root: Path
    outputs: list[Ran] = field(default_factory=list, init=False)
    threshold: int = field(default=2, kw_only=True)

    def keys_dir(self, number: int) -> Path:
        return self.root / f"holder-{number}" / "keys"

    def database_url(self, number: int) -> str:
        return f"sqlite:///{self.root / f'holder-{number}' / 'keyholder.db'}"

    def env(self, number: int) -> dict[str, str]:
        return {
            "VIR_KEYHOLDER_KEYS_DIR": str(self.keys_dir(number)),
            "VIR_KEYHOLDER_DATABASE_URL": self.database_url(number),
            "VIR_KEYHOLDER_AUDIT_ORIGIN": f"test/holder-{number}",
            "VIR_KEYHOLDER_THRESHOLD": str(self.threshold),
            "VIR_DATABASE_URL": f"sqlite:///{self.root / 'index.db'}",
        }

    def run(self, number: int, *args: str) -> Ran:
        """``vir keyholder ARGS`` as holder ``number``, in this process."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            for name in list(os.environ):
                if name.startswith(("VIR_KEYHOLDER_", "VIR_PKCS11_")):
                    patch.delenv(name)
            for name, value in self.env(number).items():
                patch.setenv(name, value)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(["keyholder", *args])
        ran = Ran(code, out.getvalue(), err.getvalue())
        self.outputs.append(ran)
        return ran

    def ok(self, number: int, *args: str) -> str:
        ran = self.run(number, *args)
        assert ran.code == 0, ran.err
        return ran.out

    def refused(self, number: int, *args: str, match: str) -> str:
        ran = self.run(number, *args)
        assert ran.code != 0, ran.out
        assert match in ran.err, ran.err
        return ran.err

    def verifier(self, number: int) -> str:
        return f"{number}={self.ok(number, 'key').strip()}"

    def audit_bodies(self, number: int) -> list[dict[str, Any]]:
        """Holder ``number``'s audit log entries, in order."""
        db = Database.connect(self.database_url(number))
        try:
            db.integrate()
            with db.read() as session:
                rows = session.execute(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
                return [json.loads(bytes(body)) for (body,) in rows]
        finally:
            db.dispose()

    def file(self, name: str) -> Path:
        return self.root / "files" / name

    def resign(
        self,
        family: exchange.Family,
        path: Path,
        signer: int,
        change: Callable[[dict[str, Any]], None],
    ) -> None:
        """Change a signed file of ``family`` and sign it again with holder ``signer``'s
        real key: what a holder whose files were corrupted before signing, or a
        dishonest one, would hand over."""
        doc = json.loads(path.read_text())
        change(doc)
        body = {k: v for k, v in doc.items() if k not in ("signature", "signer")}
        key = load_signing_key(self.keys_dir(signer), f"test/holder-{signer}")
        path.unlink()
        path.write_bytes(exchange.sign(family, body, key))
