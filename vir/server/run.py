"""``vir serve`` and ``vir keyholder serve``: uvicorn with mutual TLS and the TLS-extension
protocol, or plain HTTP behind a reverse proxy (``VIR_TLS_MODE=proxy``)."""

from __future__ import annotations

import gc
import logging
import os
import pwd
import shlex
import shutil
import socket
import ssl
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, cast

import uvicorn
from fastapi import FastAPI

from vir.api.app import create_app
from vir.api.metrics_workers import Siblings, private_folder
from vir.domain.errors import ConfigurationError
from vir.keyholder.app import create_keyholder_app
from vir.keyholder.settings import KeyholderSettings
from vir.logs import logging_config
from vir.server.tls import protocol_class, server_context
from vir.server.workers import listening_sockets, serve_forked
from vir.settings import Settings
from vir.store.db import check_database_files

App = TypeVar("App")


def check_private_key(path: Path) -> None:
    """ConfigurationError, with the chmod that fixes it, when the TLS private key at ``path``
    is accessible by group or others: whoever reads it can pose as this server."""
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"TLS private key {path} (VIR_TLS_KEY) is accessible by group or others; "
            f"run: chmod 600 {shlex.quote(str(path))}"
        )


def check_readable(path: Path, private: bool = False) -> None:
    """ConfigurationError naming the file and the ``chown`` that fixes it, when this
    process cannot read the TLS file at ``path`` (a key left root's, 0600, while the
    service runs as vir): said at start, before uvicorn reads it and fails with a
    traceback. ``private``: a private key, which must stay 0600 as well."""
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = str(os.geteuid())
        quoted = shlex.quote(str(path))
        keep = f" && chmod 600 {quoted}" if private else ""
        raise ConfigurationError(
            f"TLS file {path} cannot be read by user {user}, who runs this service; "
            f"give it to that user: chown {user} {quoted}{keep}"
        ) from None


class Listener(Protocol):
    """The settings of how a vir service listens (the index's and the key holder's)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def workers(self) -> int: ...
    @property
    def tls_mode(self) -> str: ...
    @property
    def tls_cert(self) -> Path: ...
    @property
    def tls_key(self) -> Path: ...
    @property
    def client_ca(self) -> Path: ...
    @property
    def client_crl(self) -> Path | None: ...
    @property
    def log_format(self) -> Literal["json", "text"]: ...
    @property
    def database_url(self) -> str: ...


def build_config(settings: Settings) -> uvicorn.Config:
    """The index's uvicorn configuration (``vir serve``)."""
    return _config(settings, lambda: create_app(settings))


def build_keyholder_config(settings: KeyholderSettings) -> uvicorn.Config:
    """The key holder's uvicorn configuration (``vir keyholder serve``)."""
    return _config(settings, lambda: create_keyholder_app(settings))


def _config(listener: Listener, make_app: Callable[[], FastAPI]) -> uvicorn.Config:
    """The uvicorn configuration; the app is built here, so a bad key stops us before binding.

    ``tls_mode=proxy``: plain HTTP for the reverse proxy in front (deploy/nginx), which
    does the mutual TLS; no TLS file is read. uvicorn's X-Forwarded-For handling is off in
    both modes: the peer address decides whether a Client-Cert header is believed, so no
    header may rewrite it.

    Refuses to start (ConfigurationError) when the SQLite database, its directory or the
    TLS private key can be read by other local users.
    """
    check_database_files(listener.database_url)
    logging.captureWarnings(True)  # Python's warnings through log_config's formatter
    common: dict[str, Any] = {
        "host": listener.host,
        "port": listener.port,
        "http": protocol_class(),  # embedded: adds the TLS extension; proxy: plain TCP
        "lifespan": "on",
        "ws": "none",  # vir serves no WebSocket: an Upgrade header changes nothing
        "proxy_headers": False,
        "access_log": False,  # it prints concrete paths; vir.api.metrics logs requests
        "log_config": logging_config(listener.log_format),
        "server_header": False,
        "log_level": "info",
        # SIGTERM: stop taking requests, let those in flight finish, then close idle
        # keep-alive connections after at most this long instead of waiting for clients.
        "timeout_graceful_shutdown": 5,
    }
    if listener.tls_mode == "proxy":
        return uvicorn.Config(settled(make_app()), **common)
    files = [listener.tls_cert, listener.tls_key, listener.client_ca]
    crl = listener.client_crl
    for path in files + ([crl] if crl else []):
        if not path.is_file():
            raise ConfigurationError(
                f"TLS file {path} is missing; for development run: vir dev init "
                "(a CRL: vir org crl)"
            )
    for path in files + ([crl] if crl else []):
        check_readable(path, private=path == listener.tls_key)
    check_private_key(listener.tls_key)
    app = settled(make_app())

    def context_factory(
        _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        return server_context(listener.tls_cert, listener.tls_key, listener.client_ca, crl)

    return uvicorn.Config(app, ssl_context_factory=context_factory, **common)


def settled(app: App) -> App:
    """``app``, with everything built to start it moved out of the garbage collector's
    reach (``gc.freeze``): its routes, models, schemas and mappers live as long as the
    process, yet each full collection under load walked all of them (about 170,000
    objects, a 77-99 ms pause of every request in flight: docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    return app


def serve(settings: Settings, announce: Callable[[], None] = lambda: None) -> int:
    """The index in this process, or in ``settings.workers`` forked processes on its port
    (vir.server.workers); the exit status. ``announce`` once it listens."""
    return _serve(settings, lambda: build_config(settings), announce)


def serve_keyholder(
    settings: KeyholderSettings, announce: Callable[[], None] = lambda: None
) -> int:
    """The key holder in this process, or in ``settings.workers`` forked processes on its
    port (vir.server.workers); the exit status. ``announce`` once it listens."""
    return _serve(settings, lambda: build_keyholder_config(settings), announce)


class Announcing(uvicorn.Server):
    """A server that says it serves once it does: its checks passed (the app is built
    before) and its socket is bound. uvicorn exits the process when binding fails, so
    nothing is announced for a port in use."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._announce()


def _serve(
    listener: Listener, config: Callable[[], uvicorn.Config], announce: Callable[[], None]
) -> int:
    if listener.workers == 1:
        Announcing(config(), announce).run()
        return 0
    check_database_files(listener.database_url)  # refused before any worker starts
    socks = listening_sockets(listener.host, listener.port, listener.workers)
    # Where the workers answer each other's /metrics (vir.api.metrics_workers): 0700.
    folder = private_folder(listener.workers)

    def serve_one(own: socket.socket) -> None:
        built = config()
        number = socks.index(own)
        siblings = Siblings(folder, number, len(socks))
        cast(FastAPI, built.app).state.metrics.share_with(siblings)
        try:
            Announcing(built, announce if number == 0 else lambda: None).run(sockets=[own])
        finally:
            siblings.close()

    try:
        return serve_forked(socks, serve_one)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
