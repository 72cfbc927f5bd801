"""The key holder's configuration, read from ``VIR_KEYHOLDER_*`` environment variables
(and ``VIR_PKCS11_*`` for an HSM). Nothing is shared with the index's settings: the two
run as different operators, with different keys, databases and certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KeyholderSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIR_KEYHOLDER_", frozen=True, extra="forbid", populate_by_name=True
    )

    database_url: str = "sqlite:///.vir/keyholder/keyholder.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8444, ge=1, le=65535)
    # Processes serving the port (vir.server.workers): evaluation is CPU work, and one
    # process runs its Python on one core at a time. 1 (default): this process serves.
    workers: int = Field(default=1, ge=1, le=64)
    # The OPRF key of each epoch (or this holder's share of it) and the checkpoint key.
    keys_dir: Path = Path(".vir/keyholder/keys")
    # The key holder's audit log's name in its signed checkpoints.
    audit_origin: str = Field(default="vir-dev/keyholder-log", pattern=r"^[!-*,-~]{1,200}$")
    tls_cert: Path = Path(".vir/dev/keyholder.crt")
    tls_key: Path = Path(".vir/dev/keyholder.key")
    client_ca: Path = Path(".vir/dev/ca.crt")
    client_crl: Path | None = None
    tls_mode: Literal["embedded", "proxy"] = "embedded"
    trusted_proxies: str = ""
    checkpoint_interval_seconds: float = Field(default=300.0, ge=0)
    # Per organisation, shared by every key-holder instance on this database (the buckets
    # are in it): blinded elements per second and the burst allowed at once, and the
    # hourly quota. A registration costs one element per pseudonym (young person,
    # parents, address: at most six), so the quota takes a migration of ten thousand
    # signals in an hour; a privacy officer or a school needs far less.
    oprf_rate_per_second: float = Field(default=200.0, gt=0)
    oprf_burst: int = Field(default=2000, ge=64)
    oprf_per_hour: int = Field(default=100_000, ge=64)
    # A threshold deployment's t: how many key holders answer each evaluation. 1 with a
    # whole key; with a Shamir share (vir dev init --threshold), t, which every answer
    # states so that a client configured for another t refuses it instead of making a
    # wrong pseudonym.
    threshold: int = Field(default=1, ge=1, le=255)
    # Days an epoch replaced by a rotation keeps its key (for rekeys and late clients)
    # before it is destroyed.
    epoch_grace_days: int = Field(default=30, ge=0, le=365)
    # Seconds between runs of the job that retires epochs past their grace period.
    retire_interval_seconds: float = Field(default=3600.0, ge=0)
    # People signed in to the portal call POST /v1/oprf/evaluate from their browser with
    # their access token (vir.keyholder.bearer): the portal's origins (comma-separated,
    # exact, e.g. https://portal.example) are the only ones CORS lets read the answer.
    portal_origins: str = Field(default="", max_length=2000)
    # CA certificates (PEM) to trust for the organisations' OpenID providers, whose
    # discovery documents and keys the key holder fetches; none: the system's.
    oidc_ca: Path | None = None
    # The audience ``vir keyholder oidc`` stores when none is given: the name by which
    # the providers' access tokens address this key holder (their ``aud``).
    oidc_audience: str = Field(default="vir-keyholder", pattern=r"^[!-~]{1,200}$")
    refusal_entries_per_minute: int = Field(default=60, ge=3)
    refusal_flush_seconds: float = Field(default=15.0, ge=0)
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    log_format: Literal["json", "text"] = "json"
    metrics_allow: str = "127.0.0.1"
    ready_min_free_mb: int = Field(default=64, ge=0, le=1024 * 1024)  # as the index's
    api_contact_name: str = Field(default="vir key holder operator", min_length=1, max_length=100)
    api_contact_email: str = Field(
        default="servicedesk@vir.example", pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$"
    )
    api_contact_url: str = Field(
        default="https://vir.example/servicedesk", pattern=r"^https://\S{1,200}$"
    )
    # Keys in an HSM (PKCS#11): all three, or none (files).
    pkcs11_module: Path | None = Field(
        default=None, validation_alias=AliasChoices("VIR_PKCS11_MODULE", "pkcs11_module")
    )
    pkcs11_token: str | None = Field(
        default=None, validation_alias=AliasChoices("VIR_PKCS11_TOKEN", "pkcs11_token")
    )
    pkcs11_pin_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("VIR_PKCS11_PIN_FILE", "pkcs11_pin_file")
    )
