"""A throwaway nginx (own prefix, config, pid and log files) in front of vir processes
started in proxy mode (``VIR_TLS_MODE=proxy``), all on one database; the key holder
beside them (``support.service.start_keyholders``), with its own mutual TLS.

The nginx configuration is ``deploy/nginx/vir.conf`` with its ``${VIR_NGINX_*}``
placeholders filled in, inside a minimal main configuration of our own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support import launch
from support.service import free_port, run_vir, service_env

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "vir.conf"
# nginx connects to the apps from its own loopback address (deploy/vir.env.example), so
# that a scraper on 127.0.0.1 is not taken for the proxy.
PROXY_SOURCE = "127.0.0.2"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def render(template: str, values: dict[str, str]) -> str:
    """Fill every ``${VIR_NGINX_*}`` placeholder; a missing value is an error."""

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\$\{(VIR_NGINX_[A-Z0-9_]+)\}", value, template)


@dataclass
class ProxiedApp:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_http(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vir serve exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"vir serve did not become healthy:\n{log.read_text()}")


def _spawn_proxied_app(root: Path, env: dict[str, str]) -> ProxiedApp:
    port = free_port()
    log_path = root / f"serve-proxy-{port}.log"
    with log_path.open("wb") as log:
        process = launch.popen(
            [sys.executable, "-m", "vir.cli", "serve"],
            cwd=root,
            env={**env, "VIR_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ProxiedApp(port, process, log_path)


def start_proxied_app(root: Path, env: dict[str, str]) -> ProxiedApp:
    """One ``vir serve`` in proxy mode (plain HTTP on 127.0.0.1), on a free port."""
    return start_proxied_apps(root, env, 1)[0]


def start_proxied_apps(root: Path, env: dict[str, str], count: int) -> list[ProxiedApp]:
    """``count`` of them, started side by side; returns once each is healthy."""
    apps = [_spawn_proxied_app(root, env) for _ in range(count)]
    try:
        for app in apps:
            _wait_http(app.port, app.process, app.log_path)
    except AssertionError:
        for app in apps:
            app.stop()
        raise
    return apps


def proxy_env(root: Path, trusted_proxies: str = PROXY_SOURCE) -> dict[str, str]:
    """The environment of the vir processes behind nginx (port set per process), and of
    the key holder (``VIR_KEYHOLDER_*``: a port of its own, embedded TLS)."""
    return service_env(
        root,
        1,  # replaced per process (start_proxied_app)
        VIR_TLS_MODE="proxy",
        VIR_TRUSTED_PROXIES=trusted_proxies,
        VIR_CLIENT_CRL=str(root / "dev" / "crl.pem"),
        VIR_KEYHOLDER_PORT=str(free_port()),
    )


def prepare(root: Path, env: dict[str, str]) -> None:
    """Keys, development PKI, demo organisations, database, and an (empty) CRL; the key
    holder's key, database and registry (``keyholders.json``)."""
    root.mkdir(parents=True, exist_ok=True)
    run_vir(root, env, "dev", "init", "--dev-dir", str(root / "dev"))
    run_vir(root, env, "org", "crl", "--dev-dir", str(root / "dev"))


@dataclass
class Nginx:
    binary: str
    prefix: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")

    def access_log(self) -> str:
        """One line per request, in vir.conf's own format (``vir_route``): the route,
        never the URI; the upstream address that served it is the last field."""
        return (self.prefix / "access.log").read_text(errors="replace")

    def reload(self) -> None:
        """``nginx -s reload``; returns once the new configuration has been read."""
        result = subprocess.run(
            [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-s", "reload"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nginx(root: Path, apps: list[ProxiedApp], binary: str) -> Nginx:
    """nginx on a free port of 127.0.0.1, non-daemon, everything under ``root/nginx``."""
    prefix = root / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    dev = root / "dev"
    port = free_port()
    site = render(
        TEMPLATE.read_text(),
        {
            "VIR_NGINX_APP_1": f"127.0.0.1:{apps[0].port}",
            "VIR_NGINX_APP_2": f"127.0.0.1:{apps[1].port}",
            "VIR_NGINX_LISTEN": f"127.0.0.1:{port}",
            "VIR_NGINX_SERVER_NAME": "localhost",
            "VIR_NGINX_CERT": str(dev / "server.crt"),
            "VIR_NGINX_KEY": str(dev / "server.key"),
            "VIR_NGINX_CLIENT_CA": str(dev / "ca.crt"),
            "VIR_NGINX_CLIENT_CRL": str(dev / "crl.pem"),
            "VIR_NGINX_PROXY_SOURCE": PROXY_SOURCE,
            "VIR_NGINX_ACCESS_LOG": str(prefix / "access.log"),
        },
    )
    (prefix / "vir.conf").write_text(site)
    # vir.conf's server names its own access log (VIR_NGINX_ACCESS_LOG).
    write_main_conf(prefix, f"    include {prefix / 'vir.conf'};\n", connections=256)
    with (prefix / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    nginx = Nginx(binary, prefix, port, process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"nginx exited:\n{(prefix / 'stderr.log').read_text()}\n{nginx.log()}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return nginx
        except OSError:
            time.sleep(0.05)
    nginx.stop()
    raise AssertionError(f"nginx did not start listening:\n{nginx.log()}")


def write_main_conf(prefix: Path, http: str, connections: int) -> None:
    """``prefix``/nginx.conf for an nginx run from ``prefix`` by a test: one worker, its
    pid, error log and temporary folders there, and ``http`` (lines of the http block)."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, workers would run as 'nobody' and could not enter pytest's 0700 folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        f"events {{ worker_connections {connections}; }}\n"
        "http {\n"
        "    access_log off;\n"
        f"{temp}\n"
        f"{http}"
        "}\n"
    )
