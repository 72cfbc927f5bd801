"""Start a real vir service (``vir dev init`` + ``vir serve``) in a subprocess for tests.

Its database is ``ROOT/vir.db`` (SQLite), or with ``VIR_TEST_DATABASE=postgresql``
a PostgreSQL database of its own on the test server (``support.postgres``),
named after ROOT: services started on the same folder share keys, PKI and
database, as several instances of one deployment do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from support import launch, postgres

from vir.client.connection import EpochsDiffer, ProtocolError, VirClient
from vir.crypto import pki
from vir.services.devsetup import DEMO_ORGANISATIONS
from vir.store.db import Database


class _Made(Protocol):
    @property
    def epoch(self) -> int: ...


_P = TypeVar("_P", bound=_Made)

# Test servers listen on ports below the kernel's ephemeral range (32768-60999 on Linux):
# a port the kernel hands out (to a client's connection, or to a bind to port 0) cannot
# then be taken between a test choosing it and its server binding it.
_ALL_SERVER_PORTS = range(20000, 32000)


def _ports_of_this_worker() -> range:
    """This pytest-xdist worker's part of ``_ALL_SERVER_PORTS`` (all of it without xdist):
    two workers never choose the same port. Each once could, between one choosing it and
    its server binding it (a server of another test then failed with EADDRINUSE)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and workers.isdigit()):
        return _ALL_SERVER_PORTS
    index, count = int(worker[2:]), max(int(workers), 1)
    size = len(_ALL_SERVER_PORTS) // count
    start = _ALL_SERVER_PORTS.start + (index % count) * size
    return range(start, start + size)


_SERVER_PORTS = _ports_of_this_worker()
_choose = random.SystemRandom()  # not the seeded global: both workers would pick alike
_CHOSEN: set[int] = set()  # every port free_ports gave out in this process


def free_port() -> int:
    """A port no one listens on now, for a test server to bind soon."""
    return free_ports(1)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (key holders 2..n take the next ones).

    Never one this process chose before: a port chosen is free until its server binds
    it, and meanwhile the next choice (the key holders' after the index's) could fall on
    it. Never one another pytest-xdist worker may choose: each has its own part of the
    range (``_ports_of_this_worker``)."""
    while True:
        first = _choose.randrange(_SERVER_PORTS.start, _SERVER_PORTS.stop - count)
        chosen = range(first, first + count)
        if any(port in _CHOSEN for port in chosen):
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        _CHOSEN.update(chosen)
        return first


@dataclass
class Org:
    oin: str
    name: str
    category: str
    cert: str
    key: str


@dataclass
class RunningService:
    root: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    orgs: list[Org] = field(default_factory=list)
    # The key holders, started before the index (vir dev init's keyholders.json).
    keyholders: list[subprocess.Popen[bytes]] = field(default_factory=list)
    keyholder_urls: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def dev(self) -> Path:
        return self.root / "dev"

    @property
    def ca(self) -> str:
        return str(self.dev / "ca.crt")

    @property
    def database_url(self) -> str:
        return self.env["VIR_DATABASE_URL"]

    def sql(self, statement: str, **params: object) -> list[Any]:
        """Run one SQL statement (``:name`` parameters) on the service's database, SQLite
        or PostgreSQL, and commit; the rows it returns, if any."""
        return _sql(self.database_url, statement, params)

    def org(self, category: str) -> Org:
        return next(o for o in self.orgs if o.category == category)

    def org_add(self, category: str) -> list[str]:
        """The ``vir org add`` (or ``vir keyholder org add``) arguments that admit the
        demo organisation of ``category`` with its client certificate, as ``make run``
        admitted it."""
        org = self.org(category)
        (demo,) = [o for o in DEMO_ORGANISATIONS if str(o.oin) == org.oin]
        return [
            "org",
            "add",
            "--oin",
            org.oin,
            "--name",
            demo.name,
            "--category",
            demo.category.value,
            "--region",
            demo.region,
            "--convenant",
            demo.convenant or "",
            "--cert",
            org.cert,
        ]

    def vir(
        self, *args: str, check: bool = True, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return run_vir(self.root, self.env, *args, check=check, stdin=stdin)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def keyholder_url(self) -> str:
        """Key holder 1's base URL (where POST /v1/oprf/evaluate is)."""
        return self.keyholder_urls[0]

    @property
    def keyholder_port(self) -> int:
        return int(self.keyholder_url.rsplit(":", 1)[1])

    @property
    def keyholder_database_url(self) -> str:
        return str(self.keyholder_env["VIR_KEYHOLDER_DATABASE_URL"])

    @property
    def keyholder_keys_dir(self) -> Path:
        return Path(self.keyholder_env["VIR_KEYHOLDER_KEYS_DIR"])

    def keyholder_sql(self, statement: str, **params: object) -> list[Any]:
        """``sql`` on key holder 1's database."""
        return _sql(self.keyholder_database_url, statement, params)

    def keyholder_log(self, number: int = 1) -> str:
        """The output of key holder ``number`` (started by ``start_service``)."""
        path = self.root / f"keyholder-{number}.log"
        return path.read_text(encoding="utf-8", errors="replace")

    def monitor(self) -> tuple[str, str]:
        """A monitoring system's client certificate and key (paths), from the development
        CA but of no registered organisation: what /ready and /metrics need."""
        cert, key = self.dev / "monitor.crt", self.dev / "monitor.key"
        if not cert.exists():
            ca = pki.load_issued(self.dev / "ca.crt", self.dev / "ca.key")
            now = dt.datetime.now(dt.UTC)
            issued = pki.issue_client_certificate(
                ca,
                "00000099999999999999",
                "Monitoring",
                now - dt.timedelta(minutes=5),
                now + dt.timedelta(days=1),
            )
            pki.save_issued(issued, cert, key)
        return str(cert), str(key)

    def client(self, who: str, **kwargs: Any) -> VirClient:
        """The project's client as a demo organisation or role (``VirClient.from_dev``): the
        index and the key holders of endpoints.json, with their threshold."""
        return VirClient.from_dev(who, self.dev, self.url, **kwargs)

    @property
    def keyholder_env(self) -> dict[str, str]:
        """The environment of ``vir keyholder ...`` commands for key holder 1."""
        return self.env | keyholder_listing(self.root)[0]["env"]

    def keyholder(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``vir keyholder ARGS`` on key holder 1."""
        return run_vir(self.root, self.keyholder_env, "keyholder", *args, check=check)

    def start_keyholder_instance(self, number: int = 1) -> str:
        """Another process of key holder ``number`` (its database, keys and certificate)
        on a port of its own; stopped with the service. Its URL."""
        holder = keyholder_listing(self.root)[number - 1]
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        log = self.root / f"keyholder-{number}-{port}.log"
        with log.open("ab") as out:
            process = launch.popen(
                [sys.executable, "-m", "vir.cli", "keyholder", "serve"],
                cwd=self.root,
                env=self.env | holder["env"] | {"VIR_KEYHOLDER_PORT": str(port)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.keyholders.append(process)
        wait_healthy(url, self.ca, process, log)
        return url

    def stop(self, also: Sequence[subprocess.Popen[bytes]] = ()) -> None:
        """Stop the index, its key holders and ``also`` (a provider, ...) all at once."""
        stop_processes([self.process, *self.keyholders, *also])


def _sql(url: str, statement: str, params: dict[str, object]) -> list[Any]:
    if "audit_" in statement:
        # What the service committed, integrated into the log as its integrator would
        # within moments (vir.services.integrator).
        db = Database.connect(url, durable=False)
        try:
            db.integrate()
        finally:
            db.dispose()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    stop_processes([process])


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop every one of ``processes`` (SIGTERM, SIGKILL after 10 s), all at once: each
    shuts down while the others do."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_process(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` at once (SIGKILL), as a crash or a power cut would: a server with
    an idle TLS keep-alive connection open waits for it on a graceful stop."""
    if process.poll() is None:
        process.kill()
        process.wait()


def keyholder_listing(root: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads((root / "dev" / "keyholders.json").read_text())
    return found


_database_lock = threading.Lock()


def database_url(root: Path, kind: str = "service") -> str:
    """The database of the service(s) in ``root`` (``kind``: the index's, ``service``, or
    key holder 1's, ``keyholder``); on PostgreSQL, created when new."""
    if not postgres.on_postgresql():
        return f"sqlite:///{root / ('vir.db' if kind == 'service' else 'keyholder/keyholder.db')}"
    server = postgres.server()
    name = f"vir_{kind}_" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:20]
    with _database_lock:
        if not server.exists(name):
            server.create_database(name)
    return server.url(name)


def service_env(root: Path, port: int, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    if "VIR_DATABASE_URL" not in overrides:
        env["VIR_DATABASE_URL"] = database_url(root)
    env.update(
        {
            "VIR_KEYS_DIR": str(root / "keys"),
            "VIR_TLS_CERT": str(root / "dev" / "server.crt"),
            "VIR_TLS_KEY": str(root / "dev" / "server.key"),
            "VIR_CLIENT_CA": str(root / "dev" / "ca.crt"),
            "VIR_PORT": str(port),
            "VIR_KEYHOLDER_DATABASE_URL": database_url(root, "keyholder"),
            "VIR_KEYHOLDER_KEYS_DIR": str(root / "keyholder" / "keys"),
            "VIR_KEYHOLDER_CLIENT_CA": str(root / "dev" / "ca.crt"),
            # The index's certificate for the key holder's evaluation counts (reports).
            "VIR_USAGE_CLIENT_CERT": str(root / "dev" / "index-service.crt"),
            "VIR_USAGE_CLIENT_KEY": str(root / "dev" / "index-service.key"),
            "VIR_USAGE_CA": str(root / "dev" / "ca.crt"),
        }
    )
    env.update(overrides)
    return env


def run_vir(
    root: Path, env: dict[str, str], *args: str, check: bool = True, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    result = launch.run(
        [sys.executable, "-m", "vir.cli", *args], cwd=root, env=env, input=stdin, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"vir {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def wait_healthy(url: str, ca: str, process: subprocess.Popen[bytes], log: Path) -> None:
    context = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vir serve exited early:\n{log.read_text()}")
        # Nothing listens yet: ask again soon, without a TLS handshake until something does.
        if not listening(url):
            time.sleep(0.05)
            continue
        try:
            with urllib.request.urlopen(f"{url}/health", context=context, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"vir serve did not become healthy:\n{log.read_text()}")


@dataclass
class _Starting:
    """A server process started and not yet known to be healthy."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _wait_all_healthy(starting: list[_Starting], ca: str) -> None:
    """Wait until every one of ``starting`` answers /health (they start side by side);
    if one does not, stop them all and raise."""
    try:
        for server in starting:
            wait_healthy(server.url, ca, server.process, server.log)
    except AssertionError:
        stop_processes([s.process for s in starting])
        raise


def listening(url: str) -> bool:
    """Whether something accepts connections at ``url``'s port on 127.0.0.1."""
    try:
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1).close()
    except OSError:
        return False
    return True


def _spawn_keyholders(
    root: Path, env: dict[str, str], *, missing_only: bool = False
) -> list[_Starting]:
    """Start every key holder of ``root``'s dev set-up (``missing_only``: those not
    running yet), without waiting for them."""
    starting = []
    for holder in keyholder_listing(root):
        if missing_only and listening(holder["url"]):
            continue
        log = root / f"keyholder-{holder['number']}.log"
        with log.open("ab") as out:
            process = launch.popen(
                [sys.executable, "-m", "vir.cli", "keyholder", "serve"],
                cwd=root,
                env=env | holder["env"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        starting.append(_Starting(holder["url"], process, log))
    return starting


def start_keyholders(
    root: Path, env: dict[str, str], *, missing_only: bool = False
) -> tuple[list[Any], list[str]]:
    """Start every key holder of ``root``'s dev set-up (``missing_only``: those not
    running yet), side by side; wait until each is healthy. Their processes and URLs."""
    starting = _spawn_keyholders(root, env, missing_only=missing_only)
    _wait_all_healthy(starting, str(root / "dev" / "ca.crt"))
    return [s.process for s in starting], [s.url for s in starting]


def start_service(
    root: Path,
    *,
    threshold: str = "1-of-1",
    keyholders: bool = True,
    fresh: bool = False,
    **overrides: str,
) -> RunningService:
    """``vir dev init`` in ``root`` and ``vir serve``; with ``keyholders`` (default) the
    key holder(s) too, started beside it (``threshold``: t-of-n of them). A test that
    never pseudonymises (no ``/v1/oprf/evaluate``) passes ``keyholders=False``; one that
    reads the index process's /proc entries passes ``fresh`` (``support.launch``)."""
    root.mkdir(parents=True, exist_ok=True)
    # The folder holds the SQLite database: vir serve refuses one others can read.
    root.chmod(0o700)
    port = free_port()
    env = service_env(root, port, **overrides)
    if (root / "dev" / "keyholders.json").exists():  # another instance: the same key holders
        listing = keyholder_listing(root)
        env["VIR_KEYHOLDER_PORT"] = listing[0]["env"]["VIR_KEYHOLDER_PORT"]
        endpoints = json.loads((root / "dev" / "endpoints.json").read_text())
        threshold = f"{endpoints['threshold']}-of-{len(listing)}"
    elif "VIR_KEYHOLDER_PORT" not in overrides:
        env["VIR_KEYHOLDER_PORT"] = str(free_ports(int(threshold.split("-of-")[1])))
    run_vir(root, env, "dev", "init", "--dev-dir", str(root / "dev"), "--threshold", threshold)
    # The key holders and the index start side by side: the index asks no key holder
    # anything until a request needs it.
    holders: list[_Starting] = []
    if keyholders:  # those already running (for another instance) are shared
        holders = _spawn_keyholders(root, env, missing_only=True)
    # A second instance on the same folder logs to a file of its own.
    log_path = root / "serve.log"
    if log_path.exists():
        log_path = root / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = launch.popen(
            [sys.executable, "-m", "vir.cli", "serve"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            fresh=fresh,
        )
    service = RunningService(
        root, port, env, process, log_path, keyholders=[h.process for h in holders]
    )
    service.keyholder_urls = [h["url"] for h in keyholder_listing(root)]
    _wait_all_healthy([*holders, _Starting(service.url, process, log_path)], service.ca)
    for entry in json.loads((root / "dev" / "orgs.json").read_text()):
        service.orgs.append(
            Org(
                entry["oin"],
                entry["name"],
                entry["category"],
                str(root / "dev" / entry["cert"]),
                str(root / "dev" / entry["key"]),
            )
        )
    return service


# A running key holder asks its database which epoch to serve at most once a second
# (vir.keyholder.epochs.KeyStore), so ``vir keyholder activate`` takes effect within it.
SERVED_EPOCH_TTL = 1.0


def once_served(epoch: int, pseudonymise: Callable[[], _P]) -> _P:
    """``pseudonymise()`` once the key holders serve ``epoch``: called again (for up to
    five times the key holder's cache time) while its answer has another epoch, or while
    a threshold's holders answer under different ones (their caches expire apart). A
    test that activates an epoch and pseudonymises at once would otherwise race them."""
    deadline = time.monotonic() + 5 * SERVED_EPOCH_TTL
    while True:
        try:
            made = pseudonymise()
        except (ProtocolError, EpochsDiffer):
            if time.monotonic() > deadline:
                raise
        else:
            if made.epoch == epoch or time.monotonic() > deadline:
                return made
        time.sleep(SERVED_EPOCH_TTL / 10)
