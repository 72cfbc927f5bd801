"""``vir serve``: uvicorn with mutual TLS and the TLS-extension protocol."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import uvicorn

from vir.api.app import create_app
from vir.domain.errors import ConfigurationError
from vir.server.tls import protocol_class, server_context
from vir.settings import Settings


def build_config(settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration; create_app runs here, so a bad key stops us before binding."""
    for path in (settings.tls_cert, settings.tls_key, settings.client_ca):
        if not path.is_file():
            raise ConfigurationError(
                f"TLS file {path} is missing; for development run: vir dev init"
            )
    app = create_app(settings)

    def context_factory(
        _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        return server_context(settings.tls_cert, settings.tls_key, settings.client_ca)

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(),
        lifespan="on",
        ssl_context_factory=context_factory,
        access_log=False,
        server_header=False,
        log_level="info",
    )


def serve(settings: Settings) -> None:
    uvicorn.Server(build_config(settings)).run()
