"""Sending the client's requests on kept-alive connections of the standard library.

httpx still makes each request (the URL against the base URL, the query, the headers,
the JSON body: ``httpx.Client.build_request``) and holds each answer (an
``httpx.Response``, which decodes a compressed body), so the wire format and
everything above it stay as they were; only the sending in between is ours. httpx's
own (its client's send, httpcore's pool, the h11 parser in pure Python) cost about
310 us of CPU a small request on this project's machine, this about 175 us, and a
registration makes two requests (the key holder's evaluation, then the index's
signal). Measured with ``time.thread_time`` over 3,000 requests each to a local
uvicorn server with mutual TLS (docs/benchmarks.md, session 44).

Failures are raised as httpx raises them (``httpx.ConnectError``, ``ReadTimeout``,
``RemoteProtocolError``, ...), with the request attached, so callers catch
``httpx.HTTPError`` as before. A connection is used by one request at a time, kept
for the next one unless the server said it closes it, and dropped when it fails or
when the server closed it while it was idle. Nothing is sent twice here: a request
refused or lost is repeated (or not) by ``VirClient.request`` alone.

Only for ``https`` URLs without a proxy in the environment (``HTTPS_PROXY``,
``ALL_PROXY``, unless ``NO_PROXY`` exempts the host): through a proxy the client sends
with httpx itself (``through_proxy``).
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import urllib.request

import httpx

# Connections kept idle per server: as many as threads sent at once, up to this.
MAX_IDLE = 32


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
        self._idle: dict[tuple[str, int], list[http.client.HTTPSConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (made by ``httpx.Client.build_request``) and read its whole
        answer."""
        url = request.url
        if url.scheme != "https":
            raise httpx.UnsupportedProtocol(f"not an https URL: {url.scheme}", request=request)
        server = (url.host, url.port or 443)
        connection = self._take(server) or self._connect(server, request)
        try:
            connection.putrequest(
                request.method,
                url.raw_path.decode("ascii"),
                skip_host=True,  # httpx's Host header is among the request's own
                skip_accept_encoding=True,
            )
            for name, value in request.headers.raw:
                connection.putheader(name, value)
            connection.endheaders(request.content or None)
            answer = connection.getresponse()
            content = answer.read()
        except BaseException as error:
            connection.close()
            raise _as_httpx(error, request) from None
        if answer.will_close:
            connection.close()
        else:
            self._keep(server, connection)
        return httpx.Response(
            answer.status,
            headers=answer.getheaders(),
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _connect(
        self, server: tuple[str, int], request: httpx.Request
    ) -> http.client.HTTPSConnection:
        host, port = server
        connection = http.client.HTTPSConnection(
            host, port, context=self._context, timeout=self._timeout
        )
        try:
            connection.connect()
        except TimeoutError as error:
            connection.close()
            raise httpx.ConnectTimeout(str(error) or "timed out", request=request) from None
        except OSError as error:  # ssl.SSLError among them
            connection.close()
            raise httpx.ConnectError(str(error), request=request) from None
        return connection

    def _take(self, server: tuple[str, int]) -> http.client.HTTPSConnection | None:
        """An idle connection to ``server`` that the server has not closed meanwhile:
        a socket with something to read between two requests has the server's end of
        the connection (or bytes no request asked for), and is dropped."""
        while True:
            with self._lock:
                idle = self._idle.get(server)
                connection = idle.pop() if idle else None
            if connection is None:
                return None
            sock = connection.sock
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                return connection
            connection.close()

    def _keep(self, server: tuple[str, int], connection: http.client.HTTPSConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(server, [])
            if not self._closed and len(idle) < MAX_IDLE:
                idle.append(connection)
                return
        connection.close()


def _as_httpx(error: BaseException, request: httpx.Request) -> BaseException:
    """``error``, raised while sending ``request`` or reading its answer, as httpx
    would have raised it. Anything else (KeyboardInterrupt, a programming error)
    unchanged."""
    if isinstance(error, TimeoutError):
        return httpx.ReadTimeout(str(error) or "timed out", request=request)
    if isinstance(error, http.client.RemoteDisconnected):
        return httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if isinstance(error, http.client.HTTPException):  # a malformed answer
        return httpx.RemoteProtocolError(
            f"malformed answer ({type(error).__name__})", request=request
        )
    if isinstance(error, OSError):
        return httpx.ReadError(str(error), request=request)
    return error
