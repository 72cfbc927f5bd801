"""Files another local user must not read, tried as that user would (issue 11, point 4).

Before: ``.vir/`` was 0755 and the SQLite database with its -wal and -shm files 0644, so
every local user could read the pseudonyms, professionals' contact details and the
audit log; ``vir serve`` also ran with a TLS private key anyone could read. Now vir
creates the database's folder 0700 and its files 0600, ``vir dev init`` makes its
folders 0700 and keys 0600, and ``vir serve`` refuses to start on an open database,
database folder or TLS key, saying which ``chmod`` fixes it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from support import postgres
from support.service import free_port, run_vir, service_env

from vir.domain.errors import ConfigurationError
from vir.store.db import Database, check_database_files

pytestmark = pytest.mark.skipif(
    postgres.on_postgresql(), reason="file permissions and TLS keys: runs once, on SQLite"
)

SQLITE_FILES = "the database is a file only on SQLite"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The common umask 022, under which new files are 0644 unless made otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.sqlite_only(reason=SQLITE_FILES)
@pytest.mark.usefixtures("open_umask")
def test_a_new_database_and_its_folders_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "vir"
    path = folder / "vir.db"
    db = Database.connect(f"sqlite:///{path}")
    try:
        with db.engine.begin() as connection:  # a write: SQLite makes -wal and -shm
            connection.execute(text("CREATE TABLE t (x)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        wal, shm = path.with_name("vir.db-wal"), path.with_name("vir.db-shm")
        gate = path.with_name("vir.db-writers")  # vir.store.writer_gate
        assert wal.exists() and shm.exists() and gate.exists()
        assert {p.name: mode(p) for p in (path, wal, shm, gate)} == {
            "vir.db": 0o600,
            "vir.db-wal": 0o600,
            "vir.db-shm": 0o600,
            "vir.db-writers": 0o600,
        }
        assert (mode(folder), mode(folder.parent)) == (0o700, 0o700)
        check_database_files(f"sqlite:///{path}")  # nothing to refuse
    finally:
        db.dispose()


@pytest.mark.sqlite_only(reason=SQLITE_FILES)
def test_an_existing_folder_and_database_keep_their_mode(tmp_path: Path) -> None:
    """vir never changes what it did not create; ``vir serve`` refuses it instead."""
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "vir.db"
    path.touch()
    path.chmod(0o644)
    Database.connect(f"sqlite:///{path}").dispose()
    assert (mode(folder), mode(path)) == (0o755, 0o644)


@pytest.mark.sqlite_only(reason=SQLITE_FILES)
@pytest.mark.parametrize(
    ("folder_mode", "file_modes", "fix"),
    [
        (0o700, {"vir.db": 0o644}, "chmod 600"),
        (0o700, {"vir.db": 0o600, "vir.db-wal": 0o640}, "chmod 600"),
        (0o700, {"vir.db": 0o600, "vir.db-shm": 0o604}, "chmod 600"),
        (0o700, {"vir.db": 0o600, "vir.db-writers": 0o666}, "chmod 600"),
        (0o755, {"vir.db": 0o600}, "chmod 700"),
        (0o701, {}, "chmod 700"),
    ],
    ids=[
        "db-world-readable",
        "wal-group-readable",
        "shm-other-readable",
        "writers-gate-writable",
        "folder",
        "x-bit",
    ],
)
def test_open_database_files_are_refused_with_the_fix(
    tmp_path: Path, folder_mode: int, file_modes: dict[str, int], fix: str
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    for name, file_mode in file_modes.items():
        (folder / name).touch()
        (folder / name).chmod(file_mode)
    folder.chmod(folder_mode)
    url = f"sqlite:///{folder / 'vir.db'}"
    with pytest.raises(ConfigurationError) as refused:
        check_database_files(url)
    assert fix in refused.value.detail
    # The command in the message is the whole fix.
    command = refused.value.detail.split("run: ", 1)[1]
    subprocess.run(command, shell=True, check=True)
    check_database_files(url)


def test_nothing_to_check_without_a_database_file() -> None:
    check_database_files("postgresql+psycopg://vir@127.0.0.1/vir")
    check_database_files("sqlite://")
    check_database_files("sqlite:///:memory:")


def _vir(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``vir`` run under umask 022, as a developer's shell would."""
    return subprocess.run(
        ["sh", "-c", 'umask 022 && exec "$0" -m vir.cli "$@"', sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.sqlite_only(reason=SQLITE_FILES)
def test_vir_dev_init_makes_private_folders_and_keys(tmp_path: Path) -> None:
    # The defaults of a developer's checkout: .vir/vir.db, .vir/dev, keys/.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    result = _vir(tmp_path, env, "dev", "init")
    assert result.returncode == 0, result.stderr
    vir, dev = tmp_path / ".vir", tmp_path / ".vir" / "dev"
    assert (mode(vir), mode(dev), mode(tmp_path / "keys")) == (0o700, 0o700, 0o700)
    assert mode(vir / "vir.db") == 0o600
    keys = [p for p in tmp_path.rglob("*.key")]
    assert len(keys) >= 8  # CA, server, demo organisations and roles, OPRF, checkpoint
    assert {str(p.relative_to(tmp_path)): mode(p) for p in keys} == {
        str(p.relative_to(tmp_path)): 0o600 for p in keys
    }
    folders = [p for p in dev.rglob("*") if p.is_dir()]
    assert folders and all(mode(p) == 0o700 for p in folders)


@pytest.mark.sqlite_only(reason=SQLITE_FILES)
def test_serve_refuses_an_existing_open_dev_setup_and_says_how_to_fix_it(
    tmp_path: Path,
) -> None:
    """A developer's .vir from before this change: 0755, with a 0644 database."""
    env = service_env(tmp_path, free_port(), VIR_DATABASE_URL=f"sqlite:///{tmp_path}/.vir/vir.db")
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    database = tmp_path / ".vir" / "vir.db"
    database.parent.chmod(0o755)
    database.chmod(0o644)
    refused = run_vir(tmp_path, env, "serve", check=False)
    assert refused.returncode == 2
    assert "accessible by group or others" in refused.stderr
    assert f"chmod 700 {database.parent}" in refused.stderr
    assert f"chmod 600 {database}" in refused.stderr
    # What it says to run is enough: vir serve then gets past the check (and on to the TLS
    # key, made here world-readable too).
    subprocess.run(refused.stderr.split("run: ", 1)[1], shell=True, check=True)
    key = tmp_path / "dev" / "server.key"
    key.chmod(0o644)
    again = run_vir(tmp_path, env, "serve", check=False)
    assert again.returncode == 2
    assert f"TLS private key {key}" in again.stderr
    assert f"chmod 600 {key}" in again.stderr


def test_serve_refuses_a_tls_key_others_can_read(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    key = tmp_path / "dev" / "server.key"
    assert mode(key) == 0o600
    for open_mode in (0o640, 0o604, 0o644):
        key.chmod(open_mode)
        result = run_vir(tmp_path, env, "serve", check=False)
        assert result.returncode == 2
        assert f"run: chmod 600 {key}" in result.stderr
        assert "BEGIN" not in result.stderr  # the message names the file, never its content


@pytest.mark.parametrize("unreadable", ["server.key", "server.crt", "client-ca.crt"])
def test_serve_names_a_tls_file_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unreadable: str
) -> None:
    """A key left root's and 0600 while the service runs as vir: before, uvicorn read it
    after start-up and ended in a PermissionError traceback. The refusal (the kernel's
    answer stood in for, since these tests may run as root) names the file and the fix."""
    from vir.server.run import build_config
    from vir.settings import Settings

    files = {name: tmp_path / name for name in ("server.crt", "server.key", "client-ca.crt")}
    for path in files.values():
        path.write_text("-----BEGIN NOTHING-----\n", encoding="ascii")
        path.chmod(0o600)
    refused = files[unreadable]
    opened = Path.open

    def open_as_another_user(path: Path, *args: object, **kwargs: object) -> object:
        if path == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", open_as_another_user)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'state' / 'vir.db'}",
        tls_mode="embedded",
        tls_cert=files["server.crt"],
        tls_key=files["server.key"],
        client_ca=files["client-ca.crt"],
        trusted_proxies="",
    )
    with pytest.raises(ConfigurationError) as error:
        build_config(settings)
    assert f"TLS file {refused} cannot be read by user " in error.value.detail
    assert "give it to that user: chown " in error.value.detail
    if unreadable == "server.key":
        assert error.value.detail.endswith(f" && chmod 600 {refused}")
    else:
        assert "chmod" not in error.value.detail


def test_serve_refuses_a_webhook_secret_key_others_can_read(tmp_path: Path) -> None:
    """Before, the webhook secret key was read only when a secret was first sealed or
    opened: ``vir serve`` started beside a world-readable one."""
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    key = tmp_path / "keys" / "webhook-secrets.key"
    assert mode(key) == 0o600
    content = key.read_text("ascii").strip()
    for open_mode in (0o640, 0o604, 0o644):
        key.chmod(open_mode)
        result = run_vir(tmp_path, env, "serve", check=False)
        assert result.returncode == 2
        assert f"run: chmod 600 {key}" in result.stderr
        assert content not in result.stderr and content not in result.stdout
