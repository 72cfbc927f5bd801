"""A small HTTPS server with mutual TLS for the client's transport tests: it records
what it received, says which connection carried each request, and answers by path
(well-formed, closing, compressed, chunked, slow, broken)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from vir.crypto import pki


@dataclass(frozen=True)
class Received:
    connection: int  # the client's port: one per connection
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Files:
    ca: Path
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


def make_files(folder: Path) -> Files:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in ``folder``."""
    now = dt.datetime.now(dt.UTC)
    ca = pki.create_ca("vir transport test CA", now)
    files = Files(
        folder / "ca.crt",
        folder / "client.crt",
        folder / "client.key",
        folder / "server.crt",
        folder / "server.key",
    )
    files.ca.write_bytes(pki.cert_pem(ca.cert))
    server = pki.issue_server_certificate(ca, ["127.0.0.1", "localhost"], now)
    pki.save_issued(server, files.server_cert, files.server_key)
    client = pki.issue_client_certificate(
        ca, "00000009000000000001", "Transport test", now, now + dt.timedelta(days=1)
    )
    pki.save_issued(client, files.client_cert, files.client_key)
    return files


@dataclass
class Server:
    port: int
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def connections(self) -> set[int]:
        return {r.connection for r in self.received}


def _head(status: str, *headers: str) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


# Answers no well-behaved server sends, or sends rarely, byte for byte.
RAW_ANSWERS: dict[str, Any] = {
    # An informational answer (103 Early Hints), then the answer.
    "/early-hints": lambda a: (
        _head("103 Early Hints", "Link: </x.css>; rel=preload")
        + _head("200 OK", f"Content-Length: {len(a)}", "Content-Type: application/json")
        + a
    ),
    "/many-headers": lambda a: (
        _head("200 OK", f"Content-Length: {len(a)}", *(f"X-H{i}: {i}" for i in range(120))) + a
    ),
    "/large-header": lambda a: (
        _head("200 OK", f"Content-Length: {len(a)}", "X-Big: " + "b" * 70_000) + a
    ),
    "/large-body": lambda a: _head("200 OK", "Content-Length: 5000") + b"x" * 5000,
    "/large-chunks": lambda a: (
        _head("200 OK", "Transfer-Encoding: chunked")
        + b"".join(b"3e8\r\n" + b"y" * 1000 + b"\r\n" for _ in range(5))
        + b"0\r\n\r\n"
    ),
    # The answer, then bytes no request asked for (a second answer).
    "/more": lambda a: (
        _head("200 OK", f"Content-Length: {len(a)}") + a + _head("200 OK", "Content-Length: 0")
    ),
    "/truncated": lambda a: _head("200 OK", "Content-Length: 100") + a[:10],
    "/until-close": lambda a: _head("200 OK", "Content-Type: application/json") + a,
    "/switch": lambda a: _head(
        "101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"
    ),
}


KEPT_OPEN = {"/more"}  # the server would read the next request on it


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless a path says otherwise
    server: _TlsServer

    def log_message(self, *_args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record.received.append(
            Received(
                self.client_address[1], self.command, self.path, list(self.headers.items()), body
            )
        )
        path = self.path.split("?")[0]
        answer = json.dumps({"connection": self.client_address[1], "path": self.path}).encode()
        if path == "/slow":
            time.sleep(2)
        if path == "/hang-up":
            self.close_connection = True
            return
        if path == "/garbage":
            self.wfile.write(b"SECRET-LOOKING-GARBAGE\r\n\r\n")
            self.close_connection = True
            return
        raw = RAW_ANSWERS.get(path)
        if raw is not None:  # written as it is, then the connection closed
            self.wfile.write(raw(answer))
            self.close_connection = path not in KEPT_OPEN
            return
        if path == "/status":
            code = int(self.path.partition("?code=")[2] or 200)
            self._answer(code, answer, [("Retry-After", "0")])
            return
        if path == "/gzip":
            self._answer(200, gzip.compress(answer), [("Content-Encoding", "gzip")])
            return
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (answer[:5], answer[5:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/close":
            self._answer(200, answer, [("Connection", "close")])
            self.close_connection = True
            return
        if path == "/bye":  # closes after answering, without saying so
            self._answer(200, answer, [])
            self.close_connection = True
            return
        self._answer(200, answer, [])

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    record: Server
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


@contextmanager
def serving(files: Files, *, client_ca: Path | None = None) -> Iterator[Server]:
    """The server on a free port of 127.0.0.1, requiring a client certificate of
    ``client_ca`` (default: the files' CA), until the block ends."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.server_cert, files.server_key)
    context.load_verify_locations(client_ca or files.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = _TlsServer(("127.0.0.1", 0), _Handler)
    httpd.context = context
    httpd.record = Server(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
