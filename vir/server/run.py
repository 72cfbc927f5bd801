"""``vir serve``: uvicorn with mutual TLS and the TLS-extension protocol, or plain HTTP
behind a reverse proxy (``VIR_TLS_MODE=proxy``)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import uvicorn

from vir.api.app import create_app
from vir.domain.errors import ConfigurationError
from vir.logs import logging_config
from vir.server.tls import protocol_class, server_context
from vir.settings import Settings


def build_config(settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration; create_app runs here, so a bad key stops us before binding.

    ``VIR_TLS_MODE=proxy``: plain HTTP for the reverse proxy in front (deploy/nginx), which
    does the mutual TLS; no TLS file is read. uvicorn's X-Forwarded-For handling is off in
    both modes: the peer address decides whether a Client-Cert header is believed, so no
    header may rewrite it.
    """
    if settings.tls_mode == "proxy":
        return uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            http=protocol_class(),  # plain TCP: no TLS extension is added
            lifespan="on",
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
        ssl_context_factory=context_factory,
        proxy_headers=False,
        access_log=False,  # it prints concrete paths; vir.api.metrics logs requests
        log_config=logging_config(settings.log_format),
        server_header=False,
        log_level="info",
    )


def serve(settings: Settings) -> None:
    uvicorn.Server(build_config(settings)).run()
