"""The portal's settings, read from ``VIR_PORTAL_*`` (the database is the index's own)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIR_PORTAL_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8445, ge=1, le=65535)
    # Where browsers reach the portal: the OpenID providers send people back to
    # <public_url>/auth/callback, which must be registered with them.
    public_url: str = Field(default="https://127.0.0.1:8445", pattern=r"^https://[!-~]{1,200}$")
    # The portal serves browsers without client certificates: HTTPS with this certificate.
    tls_cert: Path = Path(".vir/dev/server.crt")
    tls_key: Path = Path(".vir/dev/server.key")
    # CA certificates to trust for the organisations' OpenID providers (PEM); none: the
    # system's. The development provider's certificate is issued by the development CA.
    oidc_ca: Path | None = None
    # A session ends after this long without a request (and after 10 hours in any case).
    idle_minutes: int = Field(default=15, ge=1, le=120)
    # Largest form body accepted, in bytes.
    max_form_bytes: int = Field(default=8192, ge=1024, le=65536)

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/auth/callback"
