"""A real webhook receiver for tests: an HTTP(S) server on 127.0.0.1 in a thread.

It records every request (headers and body) and answers as told: ``status`` (200 by
default), after ``delay`` seconds, with ``body_size`` bytes of body and ``location``
for a redirect; with ``drip`` the answer's status line and headers go out one byte
every ``drip`` seconds (a receiver that never trips a per-read timeout). ``down()``
closes the listening socket (connections are refused), ``up()`` listens again on the
same port; ``receiving()`` is one that is up for a block.

``set_hook`` sets an organisation's webhook as ``vir org webhook`` does, its secret
sealed with ``hook_keys()``, the webhook secret key of the test process.
"""

from __future__ import annotations

import atexit
import functools
import http.server
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.instore import ORGS

from vir.crypto import pki
from vir.crypto.secretbox import init_secret_key
from vir.crypto.standard_webhooks import new_secret
from vir.delivery import admin
from vir.domain.clock import utc_now
from vir.store.db import Database


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0
    body_size: int = 0
    location: str | None = None
    drip: float = 0.0


@dataclass
class Receiver:
    tls: tuple[Path, Path] | None = None  # server certificate and key (PEM)
    behaviour: Behaviour = field(default_factory=Behaviour)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hooks/vir"

    def up(self) -> None:
        if self._server is not None:
            return
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-request (a worker killed with SIGKILL): a
                    # real receiver never sees a request, nor answers one, that is cut
                    # short, and the delivery is made again by another worker.
                    self.close_connection = True
                    return
                with receiver._lock:
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, self.path)
                    )
                b = receiver.behaviour
                if b.delay:
                    time.sleep(b.delay)
                if b.drip:
                    self._drip(b)
                    return
                self.send_response(b.status)
                if b.location:
                    self.send_header("Location", b.location)
                self.send_header("Content-Length", str(b.body_size))
                self.end_headers()
                chunk = b"x" * 65536
                left = b.body_size
                try:
                    while left > 0:
                        self.wfile.write(chunk[: min(left, len(chunk))])
                        left -= len(chunk)
                except OSError:
                    pass

            def _drip(self, b: Behaviour) -> None:
                head = f"HTTP/1.1 {b.status} OK\r\nContent-Length: 0\r\n\r\n".encode()
                try:
                    for byte in head:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(b.drip)
                except OSError:
                    pass  # the sender gave up
                self.close_connection = True

            def log_message(self, *_args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def reserve(self) -> None:
        """Pick a free port without listening on it (the receiver starts down)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def make_test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed: (ca.crt, server.crt, server.key)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = utc_now()
    ca = pki.create_ca("vir test webhook CA", now)
    server = pki.issue_server_certificate(ca, ["127.0.0.1", "localhost"], now)
    ca_path = folder / "ca.crt"
    ca_path.write_bytes(pki.cert_pem(ca.cert))
    cert, key = folder / "server.crt", folder / "server.key"
    pki.save_issued(server, cert, key)
    return ca_path, cert, key


@functools.cache
def hook_keys() -> Path:
    """An index keys directory holding the webhook secret key, as ``vir keys init`` makes
    it; one per test process (in-process tests seal and open secrets with it)."""
    folder = Path(tempfile.mkdtemp(prefix="vir-hook-keys-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    init_secret_key(folder / "keys")
    return folder / "keys"


@contextmanager
def receiving(**behaviour: Any) -> Iterator[Receiver]:
    """A receiver that is up for the block, answering as ``behaviour`` (Behaviour's
    fields) says."""
    receiver = Receiver(behaviour=Behaviour(**behaviour))
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()


def set_hook(db: Database, url: str, *orgs: int | str, secret: str | None = None) -> str:
    """Set the webhook ``url`` with one secret (new unless given) for each of ``orgs``
    (an index into ORGS, or an OIN), as ``vir org webhook`` does in development
    (``VIR_DEV=1``), sealed with ``hook_keys()``; the secret."""
    secret = secret or new_secret()
    for org in orgs:
        oin = str(ORGS[org].oin) if isinstance(org, int) else org
        admin.set_webhook(db, oin, url, secret, utc_now(), dev=True, keys_dir=hook_keys())
    return secret
