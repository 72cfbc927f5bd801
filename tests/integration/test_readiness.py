"""GET /ready: 200 when the database answers and the key files are in place (the index's
checkpoint key; the key holder's also the served epoch's OPRF key), else 503
problem+json with Retry-After naming the failing checks (never a path); /health stays
liveness only. /health needs no client certificate; /ready needs one (any the TLS layer
verified: a monitoring system's own) with the embedded server, and none on an instance's
internal port behind the reverse proxy."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from support import postgres
from support.https import request
from support.inapp import InApp, in_app, in_keyholder
from support.instore import ORGS, T0
from support.service import start_service

from vir.api.routes.health import RETRY_AFTER
from vir.crypto import pki
from vir.crypto.keys import key_path
from vir.crypto.secretbox import init_secret_key
from vir.crypto.secretbox import key_path as secret_key_path
from vir.crypto.signing import signing_key_path
from vir.services.identity import revoke_certificate
from vir.services.onboarding import register_certificate
from vir.settings import Settings
from vir.store.db import Database

CA = pki.create_ca("readiness test CA", T0 - dt.timedelta(days=60))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    """The index: its keys directory holds its checkpoint key (and no OPRF key)."""
    with in_app(tmp_path) as running:
        yield running


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[InApp]:
    """The key holder: its keys directory (``tmp_path/keyholder/keys``) holds the OPRF
    key of the served epoch and its checkpoint key."""
    with in_keyholder(tmp_path) as running:
        yield running


def _not_ready(app: InApp, tmp_path: Path) -> list[str]:
    reply = app.scrape("/ready")
    assert reply.status_code == 503
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["retry-after"] == str(RETRY_AFTER)
    body = reply.json()
    assert body["type"] == "urn:vir:problem:not-ready"
    for secret in (str(tmp_path), "oprf-epoch", "ed25519", ".key", "sqlite"):
        assert secret not in reply.text, secret
    assert body["detail"] == "not ready: " + ", ".join(body["checks"])
    return list(body["checks"])


def test_ready_needs_a_certificate_and_health_does_not(app: InApp, holder: InApp) -> None:
    for running in (app, holder):
        running.anonymous()
        refused = running.request("GET", "/ready")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:vir:problem:client-certificate-required"
        assert running.scrape("/ready").json() == {"status": "ready"}
        assert running.request("GET", "/health").json() == {"status": "ok"}
        spec = running.request("GET", "/openapi.json").json()
        assert spec["paths"]["/ready"]["get"]["security"] == [{"mutualTLS": []}]
        assert "401" in spec["paths"]["/ready"]["get"]["responses"]
        assert "security" not in spec["paths"]["/health"]["get"]


def test_ready_on_an_instance_behind_the_reverse_proxy(tmp_path: Path) -> None:
    """The instance's port is internal (nginx requires a certificate on every path)."""
    with in_app(tmp_path, tls_mode="proxy", trusted_proxies="127.0.0.1") as running:
        running.anonymous()
        assert running.request("GET", "/ready", peer="127.0.0.2").status_code == 200


def test_ready_with_keys_and_database(app: InApp, holder: InApp, tmp_path: Path) -> None:
    # The index is ready without any OPRF key: it has none.
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.startswith("oprf")]
    for running in (app, holder):
        running.anonymous()
        reply = running.scrape("/ready")
        assert reply.status_code == 200
        assert reply.json() == {"status": "ready"}
        assert "/ready" in running.request("GET", "/openapi.json").json()["paths"]


def test_a_missing_checkpoint_key_makes_the_index_not_ready(app: InApp, tmp_path: Path) -> None:
    signing_key_path(tmp_path / "keys").unlink()
    assert _not_ready(app, tmp_path) == ["keys"]
    assert app.request("GET", "/health").status_code == 200  # liveness only


@pytest.mark.parametrize("which", ["oprf", "signing"])
def test_a_missing_key_file_makes_the_key_holder_not_ready(
    holder: InApp, tmp_path: Path, which: str
) -> None:
    keys = tmp_path / "keyholder" / "keys"
    (key_path(keys, holder.epoch) if which == "oprf" else signing_key_path(keys)).unlink()
    assert _not_ready(holder, tmp_path) == ["keys"]
    assert holder.request("GET", "/health").status_code == 200  # liveness only


def test_a_checkpoint_key_a_restart_would_refuse_makes_the_index_not_ready(
    app: InApp, tmp_path: Path
) -> None:
    """Before, /ready checked only that the file existed and was readable: 200 with a
    0644 key that ``vir serve`` refuses at start."""
    signing_key_path(tmp_path / "keys").chmod(0o644)
    assert _not_ready(app, tmp_path) == ["keys"]


def test_a_webhook_secret_key_a_restart_would_refuse_makes_the_index_not_ready(
    app: InApp, tmp_path: Path
) -> None:
    key = secret_key_path(tmp_path / "keys")
    assert not key.exists()  # none is needed (no webhooks yet): ready
    assert app.scrape("/ready").status_code == 200
    init_secret_key(tmp_path / "keys")
    assert app.scrape("/ready").status_code == 200
    key.chmod(0o604)
    assert _not_ready(app, tmp_path) == ["keys"]
    key.chmod(0o600)
    key.write_text("not a key\n", encoding="ascii")
    assert _not_ready(app, tmp_path) == ["keys"]


@pytest.mark.parametrize("which", ["oprf", "signing"])
def test_a_key_holder_key_a_restart_would_refuse_makes_it_not_ready(
    holder: InApp, tmp_path: Path, which: str
) -> None:
    keys = tmp_path / "keyholder" / "keys"
    (key_path(keys, holder.epoch) if which == "oprf" else signing_key_path(keys)).chmod(0o640)
    assert _not_ready(holder, tmp_path) == ["keys"]


def test_a_key_file_replaced_by_a_directory_is_not_ready(app: InApp, tmp_path: Path) -> None:
    path = signing_key_path(tmp_path / "keys")
    path.unlink()
    path.mkdir()
    assert _not_ready(app, tmp_path) == ["keys"]


def test_an_unreachable_database_is_not_ready(
    app: InApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db: Database = app.app.state.services.db

    def gone() -> object:
        raise OSError(f"connection to {tmp_path}/app.sqlite refused")

    monkeypatch.setattr(db, "read", gone)
    assert _not_ready(app, tmp_path) == ["database"]
    signing_key_path(tmp_path / "keys").unlink()
    assert _not_ready(app, tmp_path) == ["database", "keys"]


@pytest.mark.integration
def test_a_real_service_is_ready_over_mutual_tls_only(tmp_path: Path) -> None:
    """Index and key holder: the monitoring certificate (from the client CA, of no
    registered organisation) is enough; without a certificate, 401 problem+json."""
    running = start_service(tmp_path / "ready")
    try:
        for port in (running.port, running.keyholder_port):
            reply = request(port, running.ca, "GET", "/ready", cert=running.monitor())
            assert reply.status == 200
            assert reply.body == b'{"status":"ready"}'
            refused = request(port, running.ca, "GET", "/ready")
            assert refused.status == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "urn:vir:problem:client-certificate-required"
            assert request(port, running.ca, "GET", "/health").status == 200
    finally:
        running.stop()


def test_ready_refuses_a_certificate_expired_or_revoked_since_the_handshake(
    app: InApp, holder: InApp, tmp_path: Path
) -> None:
    """The handshake verified the chain; a certificate that has expired since, one not
    for client authentication, or one this service registered and revoked is refused
    by /ready and /metrics as by the API."""
    expired = pki.issue_client_certificate(
        CA, str(ORGS[0].oin), ORGS[0].name, T0 - dt.timedelta(days=30), T0 - dt.timedelta(days=1)
    )
    registered = pki.issue_client_certificate(
        CA, str(ORGS[0].oin), ORGS[0].name, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=30)
    )
    for running in (app, holder):
        running.anonymous()
        db = running.app.state.services.db
        fingerprint = register_certificate(db, registered.cert, T0)
        pem = pki.cert_pem(registered.cert).decode()
        for path in ("/ready", "/metrics"):
            assert running.request("GET", path, certificate=pem).status_code == 200
            late = running.request("GET", path, certificate=pki.cert_pem(expired.cert).decode())
            assert late.json()["type"] == "urn:vir:problem:certificate-not-valid-now", late.text
        revoke_certificate(db, T0, fingerprint=fingerprint)
        for path in ("/ready", "/metrics"):
            refused = running.request("GET", path, certificate=pem)
            assert refused.status_code == 403, refused.text
            assert refused.json()["type"] == "urn:vir:problem:certificate-revoked"


def _free_mib(folder: Path) -> int:
    found = os.statvfs(folder)
    return found.f_bavail * found.f_frsize // (1024 * 1024)


@pytest.mark.sqlite_only("the disk check is of a SQLite database's file system")
@pytest.mark.parametrize("service", [in_app, in_keyholder])
def test_a_disk_short_of_free_space_makes_it_not_ready(
    tmp_path: Path, service: Callable[..., Any]
) -> None:
    """A full disk fails every commit (503 to each write): the instance leaves the pool
    before that, with ``disk``. Measured against the real file system's free space."""
    free = _free_mib(tmp_path)
    with service(tmp_path, ready_min_free_mb=free + 1024) as short:
        assert _not_ready(short, tmp_path) == ["disk"]
        assert short.request("GET", "/health").status_code == 200
    if free > 1024:
        with service(tmp_path / "roomy", ready_min_free_mb=free - 1024) as roomy:
            assert roomy.scrape("/ready").status_code == 200


def test_without_a_minimum_or_on_postgresql_no_disk_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full, read-only file system under the database: not ready by default on SQLite;
    ready with the check off (0), and on PostgreSQL (the server's disk: its own
    monitoring watches it)."""
    # f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_flag,
    # f_namemax: nothing free, and mounted read-only.
    full = os.statvfs_result((4096, 4096, 1000, 0, 0, 1000, 0, 0, os.ST_RDONLY, 255))
    monkeypatch.setattr(os, "statvfs", lambda _path: full)
    with in_app(tmp_path / "off", ready_min_free_mb=0) as unchecked:
        assert unchecked.scrape("/ready").status_code == 200
    with in_app(tmp_path / "default") as checked:
        if postgres.on_postgresql():
            assert checked.scrape("/ready").status_code == 200
        else:
            assert _not_ready(checked, tmp_path) == ["disk"]


def test_the_setting_is_refused_out_of_range_without_its_value(tmp_path: Path) -> None:
    for value in ("-1", "99999999999", "lots"):
        with pytest.raises(ValidationError) as refused:
            Settings(ready_min_free_mb=value)
        assert "ready_min_free_mb" in str(refused.value)
