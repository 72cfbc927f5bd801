"""The portal's settings, read from ``VIR_PORTAL_*`` (the database is the index's own)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vir.domain import strict_json
from vir.domain.errors import ConfigurationError


@dataclass(frozen=True)
class KeyHolders:
    """Where the registration page's script evaluates the OPRF: the key holders' base
    URLs and ``threshold``, how many of them answer each evaluation (1: a whole key)."""

    urls: tuple[str, ...]
    threshold: int

    @property
    def origins(self) -> tuple[str, ...]:
        """scheme://host[:port] of each, for the Content-Security-Policy's connect-src."""
        return tuple(dict.fromkeys(_origin(url) for url in self.urls))


def _origin(url: str) -> str:
    split = urlsplit(url)
    if split.scheme != "https" or not split.netloc or split.username or split.query:
        raise ConfigurationError("a key holder URL must be https://host[:port][/path]")
    return f"https://{split.netloc}"


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIR_PORTAL_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8445, ge=1, le=65535)
    # Where browsers reach the portal: the OpenID providers send people back to
    # <public_url>/auth/callback, which must be registered with them. Not given: the
    # address it serves on, https://<host>:<port> (127.0.0.1 for a host that stands for
    # every address), so that VIR_PORTAL_PORT alone moves a development portal.
    public_url: str = Field(default="", pattern=r"^https://[!-~]{1,200}$")
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
    # A signed-in person's refused requests audited one by one in a minute; past it, one
    # entry (refusal_cap) and 429 for the rest of the minute (vir.portal.state.RefusalCap).
    refusals_per_minute: int = Field(default=20, ge=1, le=10_000)
    # The key holders the registration page's script asks (comma-separated https base
    # URLs) and how many of them answer each evaluation. Empty: those of a development
    # set-up's endpoints.json (``dev_endpoints``), when it exists.
    keyholders: str = Field(default="", max_length=2000)
    threshold: int = Field(default=1, ge=1, le=255)
    dev_endpoints: Path = Path(".vir/dev/endpoints.json")

    @model_validator(mode="before")
    @classmethod
    def _served_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("public_url"):
            return data
        host = str(data.get("host") or cls.model_fields["host"].default)
        if host in ("0.0.0.0", "::"):  # noqa: S104 (a name for every address, not bound here)
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        port = data.get("port") or cls.model_fields["port"].default
        return {**data, "public_url": f"https://{host}:{port}"}

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/auth/callback"

    def key_holders(self) -> KeyHolders:
        """The key holders of ``keyholders``, else of ``dev_endpoints``; none: registration
        in the browser is not possible (the page says so)."""
        if self.keyholders.strip():
            urls = tuple(u.strip().rstrip("/") for u in self.keyholders.split(",") if u.strip())
            threshold = self.threshold
        elif self.dev_endpoints.is_file():
            urls, threshold = _dev_key_holders(self.dev_endpoints)
        else:
            return KeyHolders((), 1)
        for url in urls:
            _origin(url)  # https, or ConfigurationError
        if urls and threshold > len(urls):
            raise ConfigurationError("the threshold is larger than the number of key holders")
        return KeyHolders(urls, threshold)


def _dev_key_holders(path: Path) -> tuple[tuple[str, ...], int]:
    """The key holders' URLs and threshold of a development endpoints.json, or a
    ConfigurationError naming the file (never a traceback, never its content)."""
    try:
        found = strict_json.load_file(path, 1 << 20)
    except OSError:
        raise ConfigurationError(f"{path} cannot be read") from None
    except strict_json.NotJson as error:
        raise ConfigurationError(f"{path} is not an endpoints file: {error}") from None
    urls = found.get("keyholders", []) if isinstance(found, dict) else None
    threshold = found.get("threshold", 1) if isinstance(found, dict) else None
    if (
        not isinstance(urls, list)
        or not all(isinstance(url, str) for url in urls)
        or type(threshold) is not int
    ):
        raise ConfigurationError(f"{path} is not an endpoints file (keyholders, threshold)")
    return tuple(url.rstrip("/") for url in urls), threshold
