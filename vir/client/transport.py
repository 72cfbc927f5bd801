"""Sending the client's requests on kept-alive connections of its own.

httpx still makes each request (the URL against the base URL, the query, the headers,
the JSON body: ``httpx.Client.build_request``) and holds each answer (an
``httpx.Response``, which decodes a compressed body), so the wire format and
everything above it stay as they were; only the sending in between is ours: the
request's bytes written in one go on a TLS socket, the answer read with httptools'
parser (llhttp, the C parser the servers use too). httpx's own sending (its client's
send, httpcore's pool, the h11 parser in pure Python) cost about 310 us of CPU a
small request on this project's machine, the standard library's ``http.client``
about 205-235 (most of it its header parsing through the ``email`` package), this
about 145-150; a registration makes two requests (the key holder's evaluation, then
the index's signal). Measured with ``time.thread_time`` over 2,000 requests each to
a local uvicorn server over TLS (docs/benchmarks.md, sessions 44 and 45).

What a server may send is bounded: at most 100 headers in at most 64 KiB, at most
64 MiB of body; informational answers (1xx) before the answer are skipped; an answer
that asks to switch protocols, is malformed or is over a bound is a
``RemoteProtocolError`` that repeats none of the server's bytes. What the client may
send is checked too: a method, target, header name or value that HTTP cannot carry
(a line break in a value) is a ``LocalProtocolError`` and nothing is sent.

Failures are raised as httpx raises them (``httpx.ConnectError``, ``ReadTimeout``,
``RemoteProtocolError``, ...), with the request attached, so callers catch
``httpx.HTTPError`` as before. A connection is used by one request at a time, kept
for the next one unless the server said it closes it, and dropped when it fails,
when the server sent bytes after its answer, or when the server closed it while it
was idle. Nothing is sent twice here: a request refused or lost is repeated (or not)
by ``VirClient.request`` alone.

Only for ``https`` URLs without a proxy in the environment (``HTTPS_PROXY``,
``ALL_PROXY``, unless ``NO_PROXY`` exempts the host): through a proxy the client sends
with httpx itself (``through_proxy``).
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import urllib.request

import httptools
import httpx

# Connections kept idle per server: as many as threads sent at once, up to this.
MAX_IDLE = 32
MAX_HEADERS = 100  # as the standard library's http.client
MAX_HEAD = 64 * 1024  # bytes of the answer's header lines
MAX_BODY = 64 * 1024 * 1024  # bytes of the answer's body, decoded from its chunks
_READ = 65536

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_NOT_IN_A_VALUE = re.compile(rb"[\r\n\x00]")
_NOT_IN_A_TARGET = re.compile(rb"[\x00-\x20\x7f]")


def through_proxy(url: httpx.URL) -> bool:
    """Whether the environment sends requests to ``url`` through a proxy (as httpx,
    which honours the same variables, would)."""
    found = urllib.request.getproxies_environment()
    if not ({"https", "all"} & found.keys()):
        return False
    return not urllib.request.proxy_bypass(url.host)


class Connections:
    """Kept-alive HTTPS connections to the servers of the requests given to ``send``,
    with ``context`` (the client's certificate and the CA it trusts), each socket
    operation bounded by ``timeout`` seconds. Safe to use from several threads."""

    def __init__(self, context: ssl.SSLContext, timeout: float) -> None:
        self._context = context
        self._timeout = timeout
        self._idle: dict[tuple[str, int], list[ssl.SSLSocket]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (made by ``httpx.Client.build_request``) and read its whole
        answer."""
        url = request.url
        if url.scheme != "https":
            raise httpx.UnsupportedProtocol(f"not an https URL: {url.scheme}", request=request)
        wire = _request_bytes(request)
        server = (url.host, url.port or 443)
        connection = self._take(server) or self._connect(server, request)
        answer = _Answer(head_only=request.method == "HEAD")
        try:
            try:
                connection.sendall(wire)
            except TimeoutError as error:
                raise httpx.WriteTimeout(str(error) or "timed out", request=request) from None
            except OSError as error:
                raise httpx.WriteError(str(error), request=request) from None
            answer.read(connection, request)
        except BaseException:
            connection.close()
            raise
        if answer.reusable():
            self._keep(server, connection)
        else:
            connection.close()
        return httpx.Response(
            answer.parser.get_status_code(),
            headers=answer.headers,
            content=b"".join(answer.body),
            request=request,
            extensions={"http_version": b"HTTP/" + answer.parser.get_http_version().encode()},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _connect(self, server: tuple[str, int], request: httpx.Request) -> ssl.SSLSocket:
        host, port = server
        try:
            plain = socket.create_connection((host, port), timeout=self._timeout)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(str(error) or "timed out", request=request) from None
        except OSError as error:
            raise httpx.ConnectError(str(error), request=request) from None
        try:
            # Each request is written in one go: nothing is gained by holding it back.
            plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return self._context.wrap_socket(plain, server_hostname=host)
        except TimeoutError as error:
            plain.close()
            raise httpx.ConnectTimeout(str(error) or "timed out", request=request) from None
        except OSError as error:  # ssl.SSLError among them
            plain.close()
            raise httpx.ConnectError(str(error), request=request) from None

    def _take(self, server: tuple[str, int]) -> ssl.SSLSocket | None:
        """An idle connection to ``server`` that the server has not closed meanwhile:
        a socket with something to read between two requests has the server's end of
        the connection (or bytes no request asked for), and is dropped."""
        while True:
            with self._lock:
                idle = self._idle.get(server)
                connection = idle.pop() if idle else None
            if connection is None:
                return None
            if not connection.pending() and not select.select([connection], [], [], 0)[0]:
                return connection
            connection.close()

    def _keep(self, server: tuple[str, int], connection: ssl.SSLSocket) -> None:
        with self._lock:
            idle = self._idle.setdefault(server, [])
            if not self._closed and len(idle) < MAX_IDLE:
                idle.append(connection)
                return
        connection.close()


def _request_bytes(request: httpx.Request) -> bytes:
    """The request line, the headers (httpx's, in its order, Host among them) and the
    body, as HTTP/1.1 sends them; LocalProtocolError for what HTTP cannot carry (the
    error names no value: a header may hold a secret)."""
    method = request.method.encode("ascii", "replace")
    target = request.url.raw_path
    if not _TOKEN.fullmatch(method) or not target or _NOT_IN_A_TARGET.search(target):
        raise httpx.LocalProtocolError("a request line HTTP cannot carry", request=request)
    wire = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if not _TOKEN.fullmatch(name) or _NOT_IN_A_VALUE.search(value):
            raise httpx.LocalProtocolError(
                "a header name or value HTTP cannot carry", request=request
            )
        wire += [name, b": ", value, b"\r\n"]
    wire += [b"\r\n", request.read()]
    return b"".join(wire)


class _Refused(Exception):
    """Raised in a parser callback: the answer is over a bound."""


class _Answer:
    """One answer as httptools' parser hands it over (these are its callbacks)."""

    def __init__(self, *, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only  # the answer to a HEAD request: no body follows
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.head_size = 0
        self.body_size = 0
        self.head_done = False
        self.framed = False  # a Content-Length or Transfer-Encoding says where it ends
        self.complete = False
        self.until_close = False  # its body ended where the server closed
        self.more = False  # bytes after the answer: nothing a request asked for
        self.refused = ""
        self.keep_alive = False  # what the answer says, read when it completes

    def read(self, connection: ssl.SSLSocket, request: httpx.Request) -> None:
        received = 0
        while not self.complete:
            try:
                data = connection.recv(_READ)
            except TimeoutError as error:
                raise httpx.ReadTimeout(str(error) or "timed out", request=request) from None
            except OSError as error:
                raise httpx.ReadError(str(error), request=request) from None
            if not data:
                if self.head_done and not self.framed and not self.head_only:
                    self.complete = self.until_close = True  # delimited by the close
                    return
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response."
                    if received == 0
                    else "the server closed the connection before its answer was complete",
                    request=request,
                )
            received += len(data)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                raise httpx.RemoteProtocolError(
                    "the server switched protocols, which no request asked for", request=request
                ) from None
            except httptools.HttpParserError as error:
                found = self.refused or f"malformed answer ({type(error).__name__})"
                raise httpx.RemoteProtocolError(found, request=request) from None

    def reusable(self) -> bool:
        return self.keep_alive and not (self.head_only or self.until_close or self.more)

    # httptools' callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            self.more = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete or self.head_done:  # a trailer, or the next answer: not kept
            return
        self.head_size += len(name) + len(value) + 4
        if len(self.headers) >= MAX_HEADERS or self.head_size > MAX_HEAD:
            self.refused = f"an answer over {MAX_HEADERS} headers or {MAX_HEAD} bytes of them"
            raise _Refused
        self.headers.append((name, value))
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.head_done = True
        if self.head_only and self.parser.get_status_code() >= 200:
            self.complete = True

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.body_size += len(body)
        if self.body_size > MAX_BODY:
            self.refused = f"an answer with more than {MAX_BODY} bytes of body"
            raise _Refused
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.parser.get_status_code() < 200:  # informational (103 Early Hints): skipped
            self.headers, self.body = [], []
            self.head_size = self.body_size = 0
            self.head_done = self.framed = False
            return
        # Asked here: once the message is done, llhttp no longer says.
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
