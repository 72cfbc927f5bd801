"""GET /ready: 200 when the database answers and the key files are in place (the index's
checkpoint key; the key holder's also the served epoch's OPRF key), else 503
problem+json with Retry-After naming the failing checks (never a path); /health stays
liveness only. Neither needs a client certificate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.https import request
from support.inapp import InApp, in_app, in_keyholder
from support.service import start_service

from vir.api.routes.health import RETRY_AFTER
from vir.crypto.keys import key_path
from vir.crypto.signing import signing_key_path
from vir.store.db import Database


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
    reply = app.request("GET", "/ready")
    assert reply.status_code == 503
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["retry-after"] == str(RETRY_AFTER)
    body = reply.json()
    assert body["type"] == "urn:vir:problem:not-ready"
    for secret in (str(tmp_path), "oprf-epoch", "ed25519", ".key", "sqlite"):
        assert secret not in reply.text, secret
    assert body["detail"] == "not ready: " + ", ".join(body["checks"])
    return list(body["checks"])


def test_ready_and_healthy_without_a_certificate(app: InApp, holder: InApp) -> None:
    for running in (app, holder):
        running.anonymous()
        assert running.request("GET", "/ready").json() == {"status": "ready"}
        assert running.request("GET", "/health").json() == {"status": "ok"}


def test_ready_with_keys_and_database(app: InApp, holder: InApp, tmp_path: Path) -> None:
    # The index is ready without any OPRF key: it has none.
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.startswith("oprf")]
    for running in (app, holder):
        running.anonymous()
        reply = running.request("GET", "/ready")
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
def test_a_real_service_is_ready_over_tls_without_a_certificate(tmp_path: Path) -> None:
    running = start_service(tmp_path / "ready")
    try:
        reply = request(running.port, running.ca, "GET", "/ready")
        assert reply.status == 200
        assert reply.body == b'{"status":"ready"}'
        reply = request(running.keyholder_port, running.ca, "GET", "/ready")
        assert reply.status == 200
        assert reply.body == b'{"status":"ready"}'
    finally:
        running.stop()
