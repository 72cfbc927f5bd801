"""Read-only commands run where there is no index (another directory, a wrong setting)
create nothing and name where they looked; they never advise what would make an empty
log or a new signing key of an existing index."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from vir import cli


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The defaults (sqlite:///.vir/vir.db, keys) in a directory without an index."""
    for name in ("VIR_DATABASE_URL", "VIR_KEYS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _vir(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(list(args))
    return code, err.getvalue()


@pytest.mark.parametrize(
    "command",
    [("audit", "verify"), ("report", "privacy", "--from", "2026-01-01", "--to", "2026-02-01")],
)
def test_a_missing_database_is_named_and_not_created(elsewhere: Path, command: tuple[str]) -> None:
    code, err = _vir(*command)
    assert code == 2
    assert not (elsewhere / ".vir").exists()  # no empty database, not even its folder
    database = elsewhere.resolve() / ".vir" / "vir.db"
    assert err.startswith(f"vir: no database at {database} (VIR_DATABASE_URL is ")
    assert "Only when setting up a new index: vir db upgrade" in err
    assert "run: vir db upgrade" not in err and len(err.splitlines()) == 1


def test_an_empty_database_is_not_advised_an_upgrade(elsewhere: Path) -> None:
    (elsewhere / "empty.db").touch(mode=0o600)
    code, err = _vir_with("sqlite:///empty.db", "audit", "verify")
    assert code == 2
    assert f"the database at {elsewhere.resolve() / 'empty.db'} is empty" in err
    assert "run: vir db upgrade" not in err


def _vir_with(url: str, *args: str) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIR_DATABASE_URL", url)
        return _vir(*args)


def test_a_missing_signing_key_names_the_keys_folder_and_creates_none(elsewhere: Path) -> None:
    code, err = _vir("audit", "key")
    assert code == 2
    assert not (elsewhere / "keys").exists()
    keys = elsewhere.resolve() / "keys"
    assert err == (
        "vir: no checkpoint signing key at keys/checkpoint-ed25519.key; VIR_KEYS_DIR is keys "
        f"({keys}) and holds none: set VIR_KEYS_DIR to the index's keys folder. Only when "
        "setting up a new index: vir keys init --keys-dir keys\n"
    )
