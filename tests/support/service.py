"""Start a real vir service (``vir dev init`` + ``vir serve``) in a subprocess for tests."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


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


def service_env(root: Path, port: int, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    env.update(
        {
            "VIR_DATABASE_URL": f"sqlite:///{root / 'vir.db'}",
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
    port = free_port()
    env = service_env(root, port, **overrides)
    run_vir(root, env, "dev", "init", "--dev-dir", str(root / "dev"))
    log_path = root / "serve.log"
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
