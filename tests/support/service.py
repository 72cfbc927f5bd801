"""Start a real vir service (``vir dev init`` + ``vir serve``) in a subprocess for tests.

Its database is ``ROOT/vir.db`` (SQLite), or with ``VIR_TEST_DATABASE=postgresql``
a PostgreSQL database of its own on the test server (``support.postgres``),
named after ROOT: services started on the same folder share keys, PKI and
database, as several instances of one deployment do.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from support import postgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                result = connection.execute(text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def org(self, category: str) -> Org:
        return next(o for o in self.orgs if o.category == category)

    def vir(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_vir(self.root, self.env, *args, check=check)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_database_lock = threading.Lock()


def database_url(root: Path) -> str:
    """The database of the service(s) in ``root``; on PostgreSQL, created when new."""
    if not postgres.on_postgresql():
        return f"sqlite:///{root / 'vir.db'}"
    server = postgres.server()
    name = "vir_service_" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:20]
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
        }
    )
    env.update(overrides)
    return env


def run_vir(
    root: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "vir.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
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
        try:
            with urllib.request.urlopen(f"{url}/health", context=context, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"vir serve did not become healthy:\n{log.read_text()}")


def start_service(root: Path, **overrides: str) -> RunningService:
    root.mkdir(parents=True, exist_ok=True)
    # The folder holds the SQLite database: vir serve refuses one others can read.
    root.chmod(0o700)
    port = free_port()
    env = service_env(root, port, **overrides)
    run_vir(root, env, "dev", "init", "--dev-dir", str(root / "dev"))
    # A second instance on the same folder logs to a file of its own.
    log_path = root / "serve.log"
    if log_path.exists():
        log_path = root / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vir.cli", "serve"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = RunningService(root, port, env, process, log_path)
    try:
        wait_healthy(service.url, service.ca, process, log_path)
    except AssertionError:
        service.stop()
        raise
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
