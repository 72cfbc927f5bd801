"""A real webhook receiver for tests: an HTTP(S) server on 127.0.0.1 in a thread.

It records every request (headers and body) and answers as told: ``status`` (200 by
default), after ``delay`` seconds, with ``body_size`` bytes of body and ``location``
for a redirect. ``down()`` closes the listening socket (connections are refused),
``up()`` listens again on the same port.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vir.crypto import pki
from vir.domain.clock import utc_now


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
                with receiver._lock:
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, self.path)
                    )
                b = receiver.behaviour
                if b.delay:
                    time.sleep(b.delay)
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
