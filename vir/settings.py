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
    # Processes serving the port (vir.server.workers), each an instance as vir@PORT is
    # (its own connections and background jobs; what they share is in the database).
    # 1 (default): this process serves.
    workers: int = Field(default=1, ge=1, le=64)
    # The index's own keys (the audit checkpoint key); never an OPRF key, which lives
    # only at the key holder (vir keyholder serve; docs/trust-model.md).
    keys_dir: Path = Path("keys")
    # The key holder's verifier key (its checkpoint key, `vir keyholder key`): rekey tokens
    # (vir keys rekey --token) must be signed with it.
    keyholder_verifier_key: Path = Path("keys/keyholder.pub")
    # Days a replaced key epoch is still accepted (converted on arrival) after a rekey.
    epoch_grace_days: int = Field(default=30, ge=0, le=365)
    # Where the privacy report reads how much each organisation had pseudonymised: the key
    # holders' GET /v1/oprf/usage (comma-separated base URLs; empty: in development the
    # key holders of .vir/dev/endpoints.json, else the report says the counts are
    # missing; a threshold deployment: all n), how many of them each evaluation reaches
    # (a threshold deployment's t: n - t + 1 must answer; docs/audit.md),
    # and the index's own client certificate there (an index operator's, role
    # index_service).
    usage_keyholders: str = ""
    usage_threshold: int = Field(default=1, ge=1, le=255)
    usage_client_cert: Path = Path(".vir/dev/index-service.crt")
    usage_client_key: Path = Path(".vir/dev/index-service.key")
    usage_ca: Path = Path(".vir/dev/ca.crt")
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
    # Rate limits are per organisation and hold across every instance on the database (the
    # buckets are in it, vir.store.ratelimits); over the limit: 429 with Retry-After, the
    # refusal audited, and a "rate_limited" flag in the privacy officer's report. Each is a
    # token bucket: the burst is what may be used at once, the rate refills it.
    # Signals registered. The burst takes a region's migration of one organisation's whole
    # case load (a large youth-care provider holds a few thousand active signals) or a
    # school's batch at the start of term in one go; then 1,000 an hour, ten times the
    # busiest organisation's daily flow. Registering alone is no quiet probe: a signal that
    # stays makes matches, notifies the other reporters and counts in the report.
    register_per_hour: float = Field(default=1000.0, gt=0)
    register_burst: int = Field(default=10_000, ge=1)
    # Signals withdrawn: register-then-withdraw is the quiet probe ("is this child in the
    # index?"), so this is the tighter one. A back office withdraws as cases close (tens a
    # day), a school at the end of the school year some hundreds at once; 1,000 at once,
    # then 200 an hour. A larger clean-up (a migration gone wrong) is the operator's call.
    withdraw_per_hour: float = Field(default=200.0, gt=0)
    withdraw_burst: int = Field(default=1000, ge=1)
    # A privacy officer's lookups on a pseudonym (access requests and erasures, found or
    # not), per organisation: each is a person's request, handled by hand. 20 at once (a
    # backlog worked through by a script), then one a minute.
    privacy_lookups_per_hour: float = Field(default=60.0, gt=0)
    privacy_lookup_burst: int = Field(default=20, ge=1)
    # Seconds between in-process lifecycle runs (removal dates, archive term); 0: off, run
    # `vir lifecycle run` from a timer instead.
    lifecycle_interval_seconds: float = Field(default=3600.0, ge=0)
    # Days after which a signal without confirmation of the information duty is listed.
    information_duty_days: int = Field(default=30, ge=1, le=365)
    # Veilig Thuis consultations per organisation: sustained per second, and the burst.
    consult_rate_per_second: float = Field(default=1.0, gt=0)
    consult_burst: int = Field(default=60, ge=1)
    # Hard cap on request.refused audit entries per minute, all instances together (counted
    # in the database). Refusals are counted per key (reason, endpoint, claimed organisation
    # and certificate, peer network) and minute: a key's first refusal is an entry at once,
    # the rest of its minute one more entry with their count; so (cap - 1) // 2 keys a
    # minute are itemised, and refusals past them are summed in one "overflow" entry per
    # minute and counted in vir_refusals_overflow_total. Ordinary traffic refuses a handful
    # of keys a minute (an expired certificate, a typo, a 404); 60 keeps a flood from many
    # sources to at most 86,400 entries a day (~40 MB) instead of one entry per request.
    refusal_entries_per_minute: int = Field(default=60, ge=3)
    # Seconds between writing the counts of closed minutes to the audit log (any instance
    # does; also at start and at stop). 0: only at start and at stop.
    refusal_flush_seconds: float = Field(default=15.0, ge=0)
    # Largest request body accepted; anything larger is refused before it is parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # The same for POST /v1/signals/batch, whose 500 items need more: 1 MiB holds 500 of
    # the largest valid signals (~1,450 bytes each, even with every letter of the name
    # \u-escaped; tests/unit/api/test_batch_body_limit.py works it out).
    max_batch_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Log lines: "json" (one object per line) or "text"; both via the event catalogue (vir.logs).
    log_format: Literal["json", "text"] = "json"
    # Comma-separated addresses/CIDRs that may read GET /metrics (no client certificate).
    metrics_allow: str = "127.0.0.1"
    # GET /ready says "disk" when the SQLite database's file system has less free space
    # than this (MiB) or its folder cannot be written: commits would fail. 0: no check.
    ready_min_free_mb: int = Field(default=64, ge=0, le=1024 * 1024)
    # Who answers questions about the API, in the OpenAPI document's info.contact (the
    # Logius API Design Rules ask for one): the operator's service desk, not a person.
    api_contact_name: str = Field(default="vir operator", min_length=1, max_length=100)
    api_contact_email: str = Field(
        default="servicedesk@vir.example", pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$"
    )
    api_contact_url: str = Field(
        default="https://vir.example/servicedesk", pattern=r"^https://\S{1,200}$"
    )

    # --- Delivery of notifications (vir.delivery, docs/delivery.md) ---
    # Development mode (`make run` sets VIR_DEV=1): webhooks may be http://127.0.0.1 or
    # http://localhost, and plain SMTP to localhost is allowed. Never in production.
    dev: bool = False
    # Run the delivery worker as a thread of `vir serve` (default); 0: run `vir worker`
    # processes instead (as many as wanted, on the same database).
    delivery_inprocess: bool = True
    # Seconds a worker holds the deliveries it claimed: one that dies holding them leaves
    # them to be claimed again after this (at least once). Longer than a batch can take.
    delivery_lease_seconds: float = Field(default=300.0, ge=1, le=3600)
    # Hours a webhook delivery is retried (exponential backoff with full jitter) before it
    # is dead-lettered (`vir outbox list --state dead`, `vir outbox retry`).
    webhook_retry_hours: float = Field(default=24.0, gt=0, le=24 * 14)
    # Seconds one whole webhook request may take (connect, TLS, send, the answer's head).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The CloudEvents `source` of every event: which index sent it.
    webhook_source: str = Field(default="urn:vir:index", pattern=r"^[!-~]{1,200}$")
    # CA certificates (PEM) webhook receivers' certificates must chain to; unset: the system's.
    webhook_ca_file: Path | None = None

    # --- E-mail to the professional (vir.delivery.email, docs/delivery.md "E-mail") ---
    # The mail server: smtp://[user@]host[:port] (STARTTLS required, port 587 by default);
    # empty: no e-mail. smtp+insecure://localhost:PORT (plain) only with VIR_DEV=1. Never a
    # password in the URL: it is refused (and kept out of repr).
    smtp_url: str = Field(default="", repr=False)
    # The file holding the SMTP password (one line, chmod 600); required when the URL names a user.
    smtp_password_file: Path | None = None
    # The sender address (From); required with smtp_url.
    smtp_from: str = ""
    # CA certificates (PEM) the mail server's certificate must chain to; unset: the system's.
    smtp_ca_file: Path | None = None
    # Seconds each network step with the mail server may take (connect, STARTTLS, each command).
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # At most one e-mail per professional address per this many minutes (0: no digest).
    email_digest_minutes: float = Field(default=15.0, ge=0, le=1440)
    # Hours an e-mail is retried (with backoff) while the mail server refuses or is down.
    email_retry_hours: float = Field(default=24.0, gt=0, le=24 * 14)
    # Where a professional looks up a match in the web portal, named in the e-mail; empty:
    # the e-mail points to the organisation's own system only.
    portal_url: str = Field(default="", pattern=r"^(https://[!-~]{1,200})?$")
