"""A database that does not answer at start-up: one line naming the setting and what to
check, never a traceback, the URL, its password or the driver's message (which quotes
the host and the user). Before, ``vir serve`` printed a 136-line traceback ending in
sqlalchemy's OperationalError with psycopg's text."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.service import free_port, keyholder_listing, run_vir, service_env

pytestmark = pytest.mark.integration

# Nothing listens on port 1; the password must never be printed.
PASSWORD = "hunter2secret"
UNREACHABLE = f"postgresql+psycopg://viruser:{PASSWORD}@127.0.0.1:1/virdb"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("unreachable")
    root.chmod(0o700)
    env = service_env(root, free_port(), VIR_KEYHOLDER_PORT=str(free_port()))
    run_vir(root, env, "dev", "init", "--dev-dir", str(root / "dev"))
    env |= keyholder_listing(root)[0]["env"]
    env |= {
        "VIR_PORTAL_PORT": str(free_port()),
        "VIR_PORTAL_TLS_CERT": str(root / "dev" / "server.crt"),
        "VIR_PORTAL_TLS_KEY": str(root / "dev" / "server.key"),
    }
    return root, env


@pytest.mark.parametrize(
    ("command", "setting"),
    [
        (("serve",), "VIR_DATABASE_URL"),
        (("db", "upgrade"), "VIR_DATABASE_URL"),
        (("audit", "verify"), "VIR_DATABASE_URL"),
        (("org", "list"), "VIR_DATABASE_URL"),
        (("portal", "serve"), "VIR_DATABASE_URL"),
        (("keyholder", "serve"), "VIR_KEYHOLDER_DATABASE_URL"),
        (("keyholder", "db", "upgrade"), "VIR_KEYHOLDER_DATABASE_URL"),
        (("keyholder", "org", "list"), "VIR_KEYHOLDER_DATABASE_URL"),
    ],
)
def test_an_unreachable_database_is_one_line_naming_the_setting(
    setup: tuple[Path, dict[str, str]], command: tuple[str, ...], setting: str
) -> None:
    root, env = setup
    env = env | {"VIR_DATABASE_URL": UNREACHABLE, "VIR_KEYHOLDER_DATABASE_URL": UNREACHABLE}
    result = run_vir(root, env, *command, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"vir: the database in {setting} cannot be used ("), (
        result.stderr[-400:]
    )
    assert len(result.stderr.splitlines()) == 1, result.stderr[-400:]
    output = result.stdout + result.stderr
    for secret in (PASSWORD, "viruser", "virdb", "Traceback", "psycopg", "Connection refused"):
        assert secret not in output, secret


@pytest.mark.parametrize(
    "command", [("serve",), ("audit", "verify"), ("org", "list"), ("lifecycle", "run")]
)
def test_a_damaged_or_unwritable_sqlite_database_is_one_line(
    setup: tuple[Path, dict[str, str]], tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A SQLite file that is damaged (truncated), and one whose folder this user may
    not write (a read-only snapshot; here the writer lock's path is a folder, which
    fails the same way): one line each saying what to do, not a traceback."""
    root, env = setup
    whole = tmp_path / "whole" / "vir.db"
    whole.parent.mkdir(mode=0o700)
    run_vir(root, env | {"VIR_DATABASE_URL": f"sqlite:///{whole}"}, "db", "upgrade")
    damaged = tmp_path / "damaged" / "vir.db"
    damaged.parent.mkdir(mode=0o700)
    damaged.write_bytes(whole.read_bytes()[:20_000])
    damaged.chmod(0o600)
    cases = [
        (damaged, "vir: the database file in VIR_DATABASE_URL is damaged, or no database"),
        (whole, "vir: cannot open " + f"{whole}-writers, the database's writer lock ("),
    ]
    (whole.parent / "vir.db-writers").unlink(missing_ok=True)
    (whole.parent / "vir.db-writers").mkdir(mode=0o700)
    for database, said in cases:
        result = run_vir(
            root, env | {"VIR_DATABASE_URL": f"sqlite:///{database}"}, *command, check=False
        )
        assert result.returncode == 2, result.stderr[-600:]
        assert result.stderr.startswith(said), result.stderr[-600:]
        assert len(result.stderr.splitlines()) == 1, result.stderr[-600:]


def test_a_key_holder_without_its_keys_folder_is_one_line(
    setup: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """``vir keyholder serve`` with VIR_KEYHOLDER_KEYS_DIR naming no folder ended in a
    FileNotFoundError traceback (its serving lock is the first file it opens there)."""
    root, env = setup
    missing = tmp_path / "no-such-keys"
    result = run_vir(
        root, env | {"VIR_KEYHOLDER_KEYS_DIR": str(missing)}, "keyholder", "serve", check=False
    )
    assert result.returncode == 2, result.stderr[-600:]
    assert result.stderr == (
        f"vir: the keys folder {missing} (VIR_KEYHOLDER_KEYS_DIR) does not exist: set "
        "VIR_KEYHOLDER_KEYS_DIR to the key holder's keys, or make them (vir keyholder "
        "init for a whole key, vir keyholder dkg for a share)\n"
    )
