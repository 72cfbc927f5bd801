"""All configuration in one validated object, read from ``VIR_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIR_", frozen=True, extra="forbid")

    database_url: str = "sqlite:///.vir/vir.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=1, le=65535)
    keys_dir: Path = Path("keys")
    # The audit log's name in its signed checkpoints (C2SP origin; no spaces or '+').
    audit_origin: str = Field(default="vir-dev/audit-log", pattern=r"^[!-*,-~]{1,200}$")
    tls_cert: Path = Path(".vir/dev/server.crt")
    tls_key: Path = Path(".vir/dev/server.key")
    client_ca: Path = Path(".vir/dev/ca.crt")
    # "embedded": `vir serve` does mutual TLS itself. "proxy": plain HTTP behind a reverse
    # proxy (deploy/nginx) that terminates mutual TLS and forwards the certificate in the
    # RFC 9440 Client-Cert header, believed only from `trusted_proxies` (docs/trust-model.md).
    tls_mode: Literal["embedded", "proxy"] = "embedded"
    # Comma-separated IP addresses/CIDRs of the reverse proxies (proxy mode only; empty: none).
    trusted_proxies: str = ""
    # CRL (PEM) of the client CA: loaded into the embedded server's TLS context at start;
    # when `vir org revoke` rewrites it, cached identities are dropped at once.
    client_crl: Path | None = None
    # Seconds between automatic audit checkpoints (0: only on demand, `vir audit checkpoint`).
    checkpoint_interval_seconds: float = Field(default=300.0, ge=0)
    # OPRF evaluations per organisation: sustained elements per second, and the burst allowed.
    oprf_rate_per_second: float = Field(default=200.0, gt=0)
    oprf_burst: int = Field(default=2000, ge=64)
    # Seconds between in-process lifecycle runs (removal dates, archive term); 0: off, run
    # `vir lifecycle run` from a timer instead.
    lifecycle_interval_seconds: float = Field(default=3600.0, ge=0)
    # Days after which a signal without confirmation of the information duty is listed.
    information_duty_days: int = Field(default=30, ge=1, le=365)
    # Veilig Thuis consultations per organisation: sustained per second, and the burst.
    consult_rate_per_second: float = Field(default=1.0, gt=0)
    consult_burst: int = Field(default=60, ge=1)
    # Largest request body accepted; anything larger is refused before it is parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Log lines: "json" (one object per line) or "text"; both via the event catalogue (vir.logs).
    log_format: Literal["json", "text"] = "json"
    # Comma-separated addresses/CIDRs that may read GET /metrics (no client certificate).
    metrics_allow: str = "127.0.0.1"
