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
