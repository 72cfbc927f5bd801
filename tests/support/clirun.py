"""``vir ARGS`` in this process: for tests of commands whose effect they then read back.

``vir.cli.main`` closes every database a command opened, so nothing outlives the call.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass

import pytest

from vir import cli
from vir.store.db import Database


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


class _Terminal(io.StringIO):
    """Standard error as a terminal: where a long job draws its progress bar."""

    def isatty(self) -> bool:
        return True


def run_vir(db: Database, *args: str, stdin: str = "", tty: bool = False, **env: str) -> Ran:
    """Run ``vir ARGS`` on ``db`` with ``stdin`` and extra ``VIR_*`` settings (``env``:
    ``keys_dir="..."`` sets ``VIR_KEYS_DIR``); exit code, standard output and error
    (``tty``: a terminal's)."""
    out, err = io.StringIO(), _Terminal() if tty else io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIR_DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
        for name, value in env.items():
            patch.setenv(f"VIR_{name.upper()}", value)
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    return Ran(code, out.getvalue(), err.getvalue())
