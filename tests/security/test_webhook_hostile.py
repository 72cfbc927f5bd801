"""Webhooks as an attacker (or a careless operator, or a hostile receiver) would use them.

The operator's command refuses what would leak (plain HTTP, credentials in the URL, a
malformed or world-readable secret) and never echoes a URL or the secret; a receiver
cannot make vir follow a redirect, wait forever or read a huge answer; an
organisation's webhook never receives another organisation's notifications; a receiver
that drips its answer holds a worker no longer than the whole-request deadline.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from sqlalchemy import select
from support.clirun import Ran, run_vir
from support.instore import ORGS
from support.webhook_receiver import Receiver, hook_keys, receiving, set_hook
from support.world import World, world

from vir.api.routes.signals import notification_item
from vir.client.webhooks import InvalidSignature, WebhookVerifier
from vir.crypto.secretbox import SealedSecretError, init_secret_key, load_secret_box
from vir.crypto.standard_webhooks import new_secret
from vir.delivery import admin
from vir.delivery.webhook import WebhookChannel
from vir.delivery.worker import Worker
from vir.domain.clock import utc_now
from vir.store import outbox
from vir.store.tables import AuditEntryRow, DeliveryRow, NotificationRow, WebhookRow

OIN = str(ORGS[0].oin)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        made.clock.now = utc_now() - dt.timedelta(seconds=1)
        yield made


def _secret_file(folder: Path, text: str | None = None, mode: int = 0o600) -> tuple[Path, str]:
    secret = text if text is not None else new_secret()
    path = folder / "webhook.secret"
    path.write_text(secret + "\n")
    os.chmod(path, mode)
    return path, secret


def _worker(w: World, **channel: Any) -> Worker:
    return Worker(
        w.store.db,
        [WebhookChannel(w.store.db, keys_dir=hook_keys(), dev=True, **channel)],
        utc_now,
        notification_item,
        rng=random.Random(1),
    )


def _stored_secret(w: World, oin: str) -> str:
    with w.store.db.read() as session:
        return str(session.scalar(select(WebhookRow.secret).where(WebhookRow.oin == oin)))


def _due_now(w: World) -> None:
    with w.store.db.write() as session:
        session.execute(DeliveryRow.__table__.update().values(next_attempt_at=utc_now()))  # type: ignore[attr-defined]


def _command(w: World, path: Path, url: str, oin: str = OIN, **env: str) -> Ran:
    """``vir org webhook --oin OIN --url URL --secret-file PATH`` (``env``: VIR_* settings)."""
    return run_vir(
        w.store.db, "org", "webhook", "--oin", oin, "--url", url, "--secret-file", str(path),
        **env,
    )  # fmt: skip


@contextmanager
def _one_event(w: World, **behaviour: Any) -> Iterator[Receiver]:
    """A receiver answering as ``behaviour`` says, set as ORGS[0]'s webhook, and a match
    of ORGS[0] and ORGS[1]: one notification for it."""
    with receiving(**behaviour) as receiver:
        set_hook(w.store.db, receiver.url, OIN)
        w.register(0, "kind")
        w.register(1, "kind")
        yield receiver


def _states(w: World) -> list[tuple[str, str | None]]:
    with w.store.db.read() as session:
        rows = session.execute(select(DeliveryRow.state, DeliveryRow.last_error))
        return [(state, error) for state, error in rows]


@pytest.mark.parametrize(
    ("url", "dev", "why"),
    [
        ("http://hooks.example.nl/vir", "1", "must be https://"),
        ("http://127.0.0.1:9/vir", "0", "must be https://"),  # only with VIR_DEV=1
        ("ftp://hooks.example.nl/vir", "1", "must be https://"),
        ("https://user:hunter2@hooks.example.nl/vir", "0", "user information"),
        ("https://token@hooks.example.nl/vir", "0", "user information"),
        ("https:///vir", "0", "no host"),
        ("https://hooks.example.nl/vir#frag", "0", "fragment"),
        ("https://hooks.example.nl:99999/vir", "0", "not a valid URL"),
        ("https://hooks.example.nl/v ir", "0", "no spaces"),
    ],
)
def test_the_command_refuses_urls_that_are_not_https_or_carry_credentials(
    w: World, tmp_path: Path, url: str, dev: str, why: str
) -> None:
    path, secret = _secret_file(tmp_path)
    ran = _command(w, path, url, dev=dev)
    assert ran.code == 2, ran.err
    assert ran.err.startswith("vir: url: ") and why in ran.err, ran.err
    assert len(ran.err.strip().splitlines()) == 1, ran.err
    assert url not in ran.err + ran.out and "hunter2" not in ran.err and secret not in ran.err
    with w.store.db.read() as session:
        assert session.scalars(select(WebhookRow)).all() == []


@pytest.mark.parametrize(
    "text",
    ["", "whsec_", "whsec_c2hvcnQ=", "not-a-secret-at-all-but-long-enough-xxxxxxxx", "whsec_!!!!"],
)
def test_the_command_refuses_a_malformed_secret_without_quoting_it(
    w: World, tmp_path: Path, text: str
) -> None:
    path, _ = _secret_file(tmp_path, text)
    ran = _command(w, path, "https://hooks.example.nl/vir")
    assert ran.code == 2 and ran.err.startswith("vir: secret: ")
    assert text in ("", "whsec_") or text not in ran.err


def test_a_secret_file_others_can_read_is_refused(w: World, tmp_path: Path) -> None:
    path, secret = _secret_file(tmp_path, mode=0o644)
    ran = _command(w, path, "https://hooks.example.nl/vir")
    assert ran.code == 2 and ran.err.startswith("vir: secret-file: ") and "chmod 600" in ran.err
    assert secret not in ran.err


def test_an_unknown_organisation_is_refused(w: World, tmp_path: Path) -> None:
    path, _ = _secret_file(tmp_path)
    ran = _command(w, path, "https://hooks.example.nl/vir", oin="00000009999999999999")
    assert ran.code == 2 and ran.err.startswith("vir: oin: ")


def test_the_secret_and_url_appear_in_no_output_log_or_audit_entry(
    w: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with receiving() as receiver:
        path, secret = _secret_file(tmp_path)
        url = receiver.url + "?token=sekrit-path-token"
        outputs = [_command(w, path, url, dev="1", keys_dir=str(hook_keys()))]
        assert outputs[0].code == 0, outputs[0].err
        w.register(0, "kind")
        w.register(1, "kind")
        receiver.behaviour.status = 500
        _worker(w).run_until_idle()
        time.sleep(0.05)
        outputs.append(run_vir(w.store.db, "outbox", "list"))
        outputs.append(run_vir(w.store.db, "outbox", "retry", "--dead"))
        outputs.append(run_vir(w.store.db, "org", "webhook", "--oin", OIN, "--disable"))
        assert all(o.code == 0 for o in outputs)
        assert "retrying" in outputs[1].out and "500" in outputs[1].out
    with w.store.db.read() as session:
        w.store.db.integrate()
        bodies = b"".join(bytes(b) for b in session.scalars(select(AuditEntryRow.body)))
    key = secret.removeprefix("whsec_")
    for text in [caplog.text, *(o.out + o.err for o in outputs), bodies.decode()]:
        assert secret not in text and key not in text
        assert "sekrit-path-token" not in text
    with w.store.db.read() as session:
        assert session.scalars(select(WebhookRow)).all() == []  # disabled: secret gone too


def test_another_organisations_notifications_never_reach_this_webhook(w: World) -> None:
    with receiving() as mine, receiving() as theirs:
        set_hook(w.store.db, mine.url, OIN)
        set_hook(w.store.db, theirs.url, 2)
        for i in range(4):  # matches among all three; ORGS[1] has no webhook
            for org in (0, 1, 2):
                w.register(org, f"kind-{i}")
        _worker(w).run_until_idle()
    with w.store.db.read() as session:
        owner = dict(session.execute(select(NotificationRow.id, NotificationRow.oin)).all())
    for receiver, oin in ((mine, OIN), (theirs, str(ORGS[2].oin))):
        got = receiver.snapshot()
        assert got and {owner[r.headers["webhook-id"]] for r in got} == {oin}
        assert len({r.headers["webhook-id"] for r in got}) == sum(
            1 for o in owner.values() if o == oin
        )


def test_a_slow_receiver_times_out_and_a_huge_answer_is_not_read(w: World) -> None:
    with _one_event(w, delay=3.0) as receiver:
        started = time.monotonic()
        _worker(w, timeout=0.5).run_until_idle()
        assert time.monotonic() - started < 2.5
        assert _states(w) == [("retrying", "timeout")]
        receiver.behaviour.delay = 0.0
        receiver.behaviour.body_size = 64 * 1024 * 1024  # 64 MiB the worker never reads
        _due_now(w)
        started = time.monotonic()
        _worker(w, timeout=2.0).run_until_idle()
        assert time.monotonic() - started < 2.0
        assert _states(w) == [("delivered", None)]


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_whole_request_deadline(
    w: World,
) -> None:
    """A byte every 0.3 s never trips a per-read timeout (1.5 s), and the answer's ~40
    bytes would take 12 s: the attempt ends at its deadline, recorded as a timeout."""
    with _one_event(w, drip=0.3) as receiver:
        started = time.monotonic()
        _worker(w, timeout=1.5).run_until_idle()
        took = time.monotonic() - started
    assert len(receiver.snapshot()) == 1
    assert took < 1.5 + 1.0, took
    with w.store.db.read() as session:
        [(state, error, attempts)] = session.execute(
            select(DeliveryRow.state, DeliveryRow.last_error, DeliveryRow.attempts)
        ).all()
    assert (state, error, attempts) == ("retrying", "timeout", 1)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(w: World, status: int) -> None:
    with receiving() as elsewhere, _one_event(w, status=status, location=elsewhere.url) as receiver:
        _worker(w).run_until_idle()
    assert len(receiver.snapshot()) == 1 and elsewhere.snapshot() == []
    assert _states(w) == [("retrying", str(status))]


def test_gone_is_dead_at_once(w: World) -> None:
    with _one_event(w, status=410):
        _worker(w).run_until_idle()
    assert _states(w) == [("dead", "410")]


def test_a_webhook_disabled_meanwhile_is_not_delivered_to(w: World) -> None:
    with _one_event(w) as receiver:
        admin.disable_webhook(w.store.db, OIN, utc_now())
        _worker(w).run_until_idle()
    assert receiver.snapshot() == [] and _states(w) == [("dead", "disabled")]


def test_the_database_alone_does_not_reveal_the_secret(w: World, tmp_path: Path) -> None:
    """The row holds AES-256-GCM ciphertext: neither the secret nor its key bytes (in any
    encoding) are in it, another index's key does not open it, and vir still signs with
    the real secret (the reference library verifies)."""
    with receiving() as receiver:
        path, secret = _secret_file(tmp_path)
        ran = _command(w, path, receiver.url, dev="1", keys_dir=str(hook_keys()))
        assert ran.code == 0, ran.err
        stored = _stored_secret(w, OIN)
        raw = base64.b64decode(secret.removeprefix("whsec_"))
        assert stored.startswith("vir-aesgcm1:") and len(stored) <= 200
        for form in (secret, secret.removeprefix("whsec_"), raw.hex()):
            assert form not in stored
        assert base64.urlsafe_b64encode(raw).decode().rstrip("=") not in stored
        init_secret_key(tmp_path / "other-keys")
        with pytest.raises(SealedSecretError) as opened:
            load_secret_box(tmp_path / "other-keys").open(stored, OIN)
        assert opened.value.code == "secret" and secret not in str(opened.value)
        w.register(0, "kind")
        w.register(1, "kind")
        _worker(w).run_until_idle()
    [got] = receiver.snapshot()
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers)["id"]


def test_a_secret_copied_to_another_organisations_row_fails_closed(
    w: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The OIN is the associated data: organisation A's sealed secret pasted into B's row
    (someone with write access to the database) does not open for B. B's deliveries are
    dead ("secret"), nothing is sent to B's receiver, signed or unsigned; A's still go."""
    caplog.set_level(logging.DEBUG)
    other = str(ORGS[2].oin)
    with receiving() as mine, receiving() as theirs:
        secret = set_hook(w.store.db, mine.url, OIN)
        set_hook(w.store.db, theirs.url, other)
        with w.store.db.write() as session:
            session.execute(
                WebhookRow.__table__.update()  # type: ignore[attr-defined]
                .where(WebhookRow.oin == other)
                .values(secret=_stored_secret(w, OIN))
            )
        for org in (0, 1, 2):
            w.register(org, "kind")
        _worker(w).run_until_idle()
    assert theirs.snapshot() == [] and len(mine.snapshot()) == 2
    with w.store.db.read() as session:
        rows = session.execute(
            select(NotificationRow.oin, DeliveryRow.state, DeliveryRow.last_error).join(
                NotificationRow, NotificationRow.id == DeliveryRow.notification_id
            )
        ).all()
    assert {(state, error) for oin, state, error in rows if oin == other} == {("dead", "secret")}
    assert {(state, error) for oin, state, error in rows if oin == OIN} == {("delivered", None)}
    assert secret not in caplog.text and secret.removeprefix("whsec_") not in caplog.text


def test_a_plain_secret_from_before_waits_until_sealed_by_the_command(
    w: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A row written before secrets were sealed (plain ``whsec_``) is not used: its
    deliveries are retried ("unsealed"), nothing sent. ``vir outbox seal-secrets`` seals
    it in place (audited, output without the secret); then they go, signed with it."""
    caplog.set_level(logging.DEBUG)
    secret = new_secret()
    with receiving() as receiver:
        with w.store.db.write() as session:
            outbox.set_webhook(session, outbox.Webhook(OIN, receiver.url, secret), utc_now())
        w.register(0, "kind")
        w.register(1, "kind")
        _worker(w).run_until_idle()
        assert receiver.snapshot() == [] and _states(w) == [("retrying", "unsealed")]
        missing = run_vir(w.store.db, "outbox", "seal-secrets", keys_dir=str(Path("/nonexistent")))
        assert missing.code == 2 and "no webhook secret key" in missing.err
        assert _stored_secret(w, OIN) == secret  # untouched
        outputs = [
            run_vir(w.store.db, "outbox", "seal-secrets", keys_dir=str(hook_keys()))
            for _ in range(2)
        ]
        assert [o.out for o in outputs] == [
            "vir: 1 webhook secret sealed\n",
            "vir: 0 webhook secrets sealed\n",
        ]
        assert _stored_secret(w, OIN).startswith("vir-aesgcm1:")
        _due_now(w)
        _worker(w).run_until_idle()
    [got] = receiver.snapshot()
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers)
    assert _states(w) == [("delivered", None)]
    assert "sealed" in [e.objects.get("state") for e in w.audit()]
    for text in [caplog.text, missing.err, *(o.out + o.err for o in outputs)]:
        assert secret not in text and secret.removeprefix("whsec_") not in text


def test_no_usable_secret_key_means_nothing_is_sent_or_stored(w: World, tmp_path: Path) -> None:
    """Without the key file (or with one others can read) the command refuses (naming the
    file) and stores nothing; a worker without it retries ("secret-key"), sends nothing."""
    path, secret = _secret_file(tmp_path)
    empty = tmp_path / "no-keys"
    exposed = tmp_path / "exposed-keys"
    init_secret_key(exposed)
    (exposed / "webhook-secrets.key").chmod(0o640)
    for keys, why in ((empty, "no webhook secret key"), (exposed, "chmod 600")):
        ran = _command(w, path, "https://hooks.example.nl/v", keys_dir=str(keys))
        assert ran.code == 2 and why in ran.err and secret not in ran.err + ran.out
        with w.store.db.read() as session:
            assert session.scalars(select(WebhookRow)).all() == []
    with _one_event(w) as receiver:
        Worker(
            w.store.db,
            [WebhookChannel(w.store.db, keys_dir=empty, dev=True)],
            utc_now,
            notification_item,
            rng=random.Random(1),
        ).run_until_idle()
    assert receiver.snapshot() == [] and _states(w) == [("retrying", "secret-key")]


def test_a_secret_rotation_keeps_the_url_and_the_receiver_takes_both_meanwhile(
    w: World, tmp_path: Path
) -> None:
    """``vir org webhook --oin OIN --secret-file NEW`` (no --url): the URL stays, the next
    delivery is signed with the new secret, and a receiver verifying with both secrets
    (docs/delivery.md, rotation) accepts it. Before, the command refused without --url."""
    with receiving() as receiver:
        old = set_hook(w.store.db, receiver.url, OIN)
        verifier = WebhookVerifier([old])
        path, new = _secret_file(tmp_path)
        ran = run_vir(w.store.db, "org", "webhook", "--oin", OIN, "--secret-file", str(path),
                      keys_dir=str(hook_keys()))  # fmt: skip
        assert ran.code == 0, ran.err
        assert "secret replaced" in ran.out and new not in ran.out + ran.err
        w.register(0, "kind")
        w.register(1, "kind")
        _worker(w).run_until_idle()
        (request,) = receiver.snapshot()
    with pytest.raises(InvalidSignature):
        verifier.verify(request.body, dict(request.headers))  # the old secret alone
    both = WebhookVerifier([new, old])
    assert both.verify(request.body, dict(request.headers)).type == "nl.vir.match.created"


def test_a_secret_rotation_without_a_webhook_asks_for_the_url(w: World, tmp_path: Path) -> None:
    path, _ = _secret_file(tmp_path)
    ran = run_vir(w.store.db, "org", "webhook", "--oin", OIN, "--secret-file", str(path),
                  keys_dir=str(hook_keys()))  # fmt: skip
    assert ran.code == 2 and ran.err.startswith("vir: url: ") and "--url" in ran.err


def test_a_folder_given_as_the_secret_file_is_named_as_such(w: World, tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    ran = _command(w, folder, "https://hooks.example.nl/vir")
    assert ran.code == 2 and ran.err.strip() == "vir: secret-file: not a regular file"


def test_retrying_an_unknown_or_delivered_delivery_says_so(w: World) -> None:
    """Before: ``vir outbox retry --id 99999`` printed "0 deliveries due again", exit 0."""
    with _one_event(w):
        _worker(w).run_until_idle()
    (delivered,) = _ids(w)
    unknown = run_vir(w.store.db, "outbox", "retry", "--id", "99999")
    assert unknown.code == 2 and "no delivery has this id" in unknown.err
    again = run_vir(w.store.db, "outbox", "retry", "--id", str(delivered))
    assert again.code == 2 and "delivered already" in again.err


def _ids(w: World) -> list[int]:
    with w.store.db.read() as session:
        return [int(i) for i in session.scalars(select(DeliveryRow.id))]
