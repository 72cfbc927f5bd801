"""``vir serve``: uvicorn with mutual TLS and the TLS-extension protocol, or plain HTTP
behind a reverse proxy (``VIR_TLS_MODE=proxy``)."""

from __future__ import annotations

import shlex
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import uvicorn

from vir.api.app import create_app
from vir.domain.errors import ConfigurationError
from vir.logs import logging_config
from vir.server.tls import protocol_class, server_context
from vir.settings import Settings
from vir.store.db import check_database_files


def check_private_key(path: Path) -> None:
    """ConfigurationError, with the chmod that fixes it, when the TLS private key at ``path``
    is accessible by group or others: whoever reads it can pose as this server."""
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"TLS private key {path} (VIR_TLS_KEY) is accessible by group or others; "
            f"run: chmod 600 {shlex.quote(str(path))}"
        )


def build_config(settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration; create_app runs here, so a bad key stops us before binding.

    ``VIR_TLS_MODE=proxy``: plain HTTP for the reverse proxy in front (deploy/nginx), which
    does the mutual TLS; no TLS file is read. uvicorn's X-Forwarded-For handling is off in
    both modes: the peer address decides whether a Client-Cert header is believed, so no
    header may rewrite it.

    Refuses to start (ConfigurationError) when the SQLite database, its directory or the
    TLS private key can be read by other local users.
    """
    check_database_files(settings.database_url)
    if settings.tls_mode == "proxy":
        return uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            http=protocol_class(),  # plain TCP: no TLS extension is added
            lifespan="on",
            ws="none",  # vir serves no WebSocket: an Upgrade header changes nothing
            proxy_headers=False,
            access_log=False,  # it prints concrete paths; vir.api.metrics logs requests
            log_config=logging_config(settings.log_format),
            server_header=False,
            log_level="info",
        )
    files = [settings.tls_cert, settings.tls_key, settings.client_ca]
    for path in files + ([settings.client_crl] if settings.client_crl else []):
        if not path.is_file():
            raise ConfigurationError(
                f"TLS file {path} is missing; for development run: vir dev init "
                "(a CRL: vir org crl)"
            )
    check_private_key(settings.tls_key)
    app = create_app(settings)

    def context_factory(
        _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        return server_context(
            settings.tls_cert, settings.tls_key, settings.client_ca, settings.client_crl
        )

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(),
        lifespan="on",
        ws="none",
        ssl_context_factory=context_factory,
        proxy_headers=False,
        access_log=False,  # it prints concrete paths; vir.api.metrics logs requests
        log_config=logging_config(settings.log_format),
        server_header=False,
        log_level="info",
    )


def serve(settings: Settings) -> None:
    uvicorn.Server(build_config(settings)).run()
