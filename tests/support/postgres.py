"""A throwaway PostgreSQL server for the test suite, started on first use.

``VIR_TEST_DATABASE=postgresql`` makes the service-level stores
(``support.instore``) and the real ``vir serve`` processes (``support.service``)
use PostgreSQL instead of SQLite. The server is found, initialised in a
temporary folder and started on a free port on 127.0.0.1 the first time a test
needs it, with durability off (``fsync=off``: a crash loses the data, which a
test server never needs), and stopped at the end of the session.

``VIR_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://ci@db:5432/postgres``, a
role that may create databases) uses an existing server instead; the databases
made for the run are dropped at its end.

The server binaries are looked for in ``VIR_TEST_POSTGRES_BINDIR``, then
``pg_config --bindir``, then ``/usr/lib/postgresql/<version>/bin`` (Debian),
then ``PATH``; ``scripts/ensure-postgres.sh`` installs them when none is found.
PostgreSQL refuses to run as root: under root, the server runs as the
``postgres`` system user (or ``nobody``), in a temporary folder owned by it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

BACKEND_ENV = "VIR_TEST_DATABASE"
URL_ENV = "VIR_TEST_POSTGRES_URL"
BINDIR_ENV = "VIR_TEST_POSTGRES_BINDIR"
BACKENDS = ("sqlite", "postgresql")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def backend() -> str:
    """The database the tests run on: ``sqlite`` (the default) or ``postgresql``."""
    chosen = os.environ.get(BACKEND_ENV, "").strip().lower() or "sqlite"
    if chosen not in BACKENDS:
        raise RuntimeError(f"{BACKEND_ENV}={chosen!r}: use one of {', '.join(BACKENDS)}")
    return chosen


def on_postgresql() -> bool:
    return backend() == "postgresql"


def _has_server(folder: Path) -> bool:
    return (folder / "initdb").is_file() and (folder / "postgres").is_file()


def _version(folder: Path) -> tuple[int, ...]:
    digits = re.findall(r"\d+", folder.parent.name)
    return tuple(int(d) for d in digits)


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, or None when there is no server."""
    candidates: list[Path] = []
    if os.environ.get(BINDIR_ENV):
        candidates.append(Path(os.environ[BINDIR_ENV]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    candidates += debian
    for name in ("initdb", "postgres"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found).resolve().parent)
    return next((c for c in candidates if _has_server(c)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quoted(name: str) -> sql.Identifier:
    if not _NAME.match(name):
        raise ValueError(f"not a test database name: {name!r}")
    return sql.Identifier(name)


@dataclass
class Server:
    """A PostgreSQL server: its admin connection string and, if we started it, the process."""

    host: str
    port: int
    user: str
    password: str | None = None
    admin_database: str = "postgres"
    process: subprocess.Popen[bytes] | None = None
    root: Path | None = None
    created: list[str] = field(default_factory=list)
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def url(self, database: str) -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for ``database`` on this server."""
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.admin_database,
            autocommit=True,
            connect_timeout=10,
        )

    def unique_name(self, prefix: str) -> str:
        """A database name no other test (or concurrent test run) uses."""
        return f"{prefix}_{os.getpid()}_{next(self._names)}"

    def exists(self, database: str) -> bool:
        with self._admin() as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            return row.fetchone() is not None

    def create_database(self, database: str, template: str | None = None) -> str:
        """Create ``database`` (empty, or a copy of ``template``); returns its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(_quoted(database))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(_quoted(template))
        with self._admin() as conn:
            conn.execute(statement)
        self.created.append(database)
        return self.url(database)

    def drop_database(self, database: str) -> None:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_quoted(database))
        with self._admin() as conn:
            conn.execute(statement)
        with contextlib.suppress(ValueError):
            self.created.remove(database)

    def stop(self) -> None:
        """Stop a server we started (and delete its files); drop our databases on another."""
        if self.process is None:
            for database in list(self.created):
                with contextlib.suppress(psycopg.Error):
                    self.drop_database(database)
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: no waiting for clients
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _unprivileged() -> pwd.struct_passwd | None:
    """Who runs the server when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run as")


def _run_as(account: pwd.struct_passwd | None) -> dict[str, object]:
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


_PREFIX = "vir-postgres-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def reap_orphans() -> None:
    """Stop servers left by test runs that were killed before they could stop them
    (their pytest process is gone), and delete their folders."""
    for root in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{postmaster}/cmdline").read_bytes()
            if str(root).encode() in cmdline:  # that server, not a reused pid
                os.kill(postmaster, signal.SIGQUIT)  # immediate shutdown
                for _ in range(100):
                    if not _alive(postmaster):
                        break
                    time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)


def start_server(bindir: Path | None = None, *, durable: bool = False) -> Server:
    """initdb into a temporary folder and start ``postgres`` on a free local port.

    ``durable=True`` (benchmarks) keeps PostgreSQL's own fsync'd commits, so the
    figures compare with SQLite's ``synchronous=FULL``."""
    reap_orphans()
    bindir = bindir or find_bindir()
    if bindir is None:
        raise RuntimeError(
            "no PostgreSQL server binaries found (initdb, postgres): run "
            "scripts/ensure-postgres.sh, or set VIR_TEST_POSTGRES_BINDIR or VIR_TEST_POSTGRES_URL"
        )
    account = _unprivileged()
    # Under /tmp (world-traversable), not pytest's tmp folder, which only root may enter.
    root = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    data, log_path = root / "data", root / "postgres.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    user = "vir"
    init = subprocess.run(
        [
            str(bindir / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            user,
            "--auth",
            "trust",  # only 127.0.0.1 can connect, and only for the length of a test run
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **_run_as(account),  # type: ignore[arg-type]
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    for _attempt in range(5):
        port = _free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    # A test server: durability off, nothing that runs on its own.
                    *(
                        ()
                        if durable
                        else (
                            "-c",
                            "fsync=off",
                            "-c",
                            "synchronous_commit=off",
                            "-c",
                            "full_page_writes=off",
                        )
                    ),
                    "-c",
                    # Autovacuum workers connect to databases, and CREATE DATABASE ...
                    # TEMPLATE refuses a template that anyone is connected to.
                    "autovacuum=off",
                    "-c",
                    "max_connections=400",
                    "-c",
                    "log_min_messages=warning",
                ],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is pytest's, not the server's
                **_run_as(account),  # type: ignore[arg-type]
            )
        server = Server("127.0.0.1", port, user, process=process, root=root)
        if _wait_ready(server):
            return server
        if process.poll() is None:
            process.kill()
        process.wait()
    log_text = log_path.read_text(errors="replace")
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"postgres did not start:\n{log_text}")


def _wait_ready(server: Server, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            return False  # exited: most likely the port was taken meanwhile
        try:
            with server._admin() as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            time.sleep(0.05)
    return False


def _external(url: str) -> Server:
    parsed = make_url(url)
    return Server(
        parsed.host or "127.0.0.1",
        parsed.port or 5432,
        parsed.username or "postgres",
        password=parsed.password,
        admin_database=parsed.database or "postgres",
    )


_lock = threading.Lock()
_server: Server | None = None


def server() -> Server:
    """The session's server, started (or, with VIR_TEST_POSTGRES_URL, reached) on first use."""
    global _server
    with _lock:
        if _server is None:
            url = os.environ.get(URL_ENV)
            _server = _external(url) if url else start_server()
            atexit.register(stop_server)
        return _server


def stop_server() -> None:
    """Stop the session's server if one was started; safe to call more than once."""
    global _server
    with _lock:
        running, _server = _server, None
    if running is not None:
        running.stop()
