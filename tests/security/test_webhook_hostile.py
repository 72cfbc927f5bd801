"""Webhooks as an attacker (or a careless operator, or a hostile receiver) would use them.

The operator's command refuses what would leak (plain HTTP, credentials in the URL, a
malformed or world-readable secret) and never echoes a URL or the secret; a receiver
cannot make vir follow a redirect, wait forever or read a huge answer; an
organisation's webhook never receives another organisation's notifications.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.clirun import run_vir
from support.instore import ORGS
from support.webhook_receiver import Receiver
from support.world import World, world

from vir.api.routes.signals import notification_item
from vir.crypto.standard_webhooks import new_secret
from vir.delivery import admin
from vir.delivery.webhook import WebhookChannel
from vir.delivery.worker import Worker
from vir.domain.clock import utc_now
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
        [WebhookChannel(w.store.db, dev=True, **channel)],
        utc_now,
        notification_item,
        rng=random.Random(1),
    )


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
    ran = run_vir(
        w.store.db,
        "org",
        "webhook",
        "--oin",
        OIN,
        "--url",
        url,
        "--secret-file",
        str(path),
        dev=dev,
    )
    assert ran.code == 2
    assert ran.err.startswith("vir: url: ") and why in ran.err
    assert len(ran.err.strip().splitlines()) == 1
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
    ran = run_vir(
        w.store.db,
        "org",
        "webhook",
        "--oin",
        OIN,
        "--url",
        "https://hooks.example.nl/vir",
        "--secret-file",
        str(path),
    )
    assert ran.code == 2 and ran.err.startswith("vir: secret: ")
    assert text in ("", "whsec_") or text not in ran.err


def test_a_secret_file_others_can_read_is_refused(w: World, tmp_path: Path) -> None:
    path, secret = _secret_file(tmp_path, mode=0o644)
    ran = run_vir(
        w.store.db,
        "org",
        "webhook",
        "--oin",
        OIN,
        "--url",
        "https://hooks.example.nl/vir",
        "--secret-file",
        str(path),
    )
    assert ran.code == 2 and ran.err.startswith("vir: secret-file: ") and "chmod 600" in ran.err
    assert secret not in ran.err


def test_an_unknown_organisation_is_refused(w: World, tmp_path: Path) -> None:
    path, _ = _secret_file(tmp_path)
    ran = run_vir(
        w.store.db,
        "org",
        "webhook",
        "--oin",
        "00000009999999999999",
        "--url",
        "https://hooks.example.nl/vir",
        "--secret-file",
        str(path),
    )
    assert ran.code == 2 and ran.err.startswith("vir: oin: ")


def test_the_secret_and_url_appear_in_no_output_log_or_audit_entry(
    w: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = Receiver()
    receiver.up()
    try:
        path, secret = _secret_file(tmp_path)
        url = receiver.url + "?token=sekrit-path-token"
        outputs = [
            run_vir(
                w.store.db,
                "org",
                "webhook",
                "--oin",
                OIN,
                "--url",
                url,
                "--secret-file",
                str(path),
                dev="1",
            )
        ]
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
    finally:
        receiver.down()
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
    mine, theirs = Receiver(), Receiver()
    mine.up()
    theirs.up()
    try:
        admin.set_webhook(w.store.db, OIN, mine.url, new_secret(), utc_now(), dev=True)
        admin.set_webhook(
            w.store.db, str(ORGS[2].oin), theirs.url, new_secret(), utc_now(), dev=True
        )
        for i in range(4):  # matches among all three; ORGS[1] has no webhook
            for org in (0, 1, 2):
                w.register(org, f"kind-{i}")
        _worker(w).run_until_idle()
    finally:
        mine.down()
        theirs.down()
    with w.store.db.read() as session:
        owner = dict(session.execute(select(NotificationRow.id, NotificationRow.oin)).all())
    for receiver, oin in ((mine, OIN), (theirs, str(ORGS[2].oin))):
        got = receiver.snapshot()
        assert got and {owner[r.headers["webhook-id"]] for r in got} == {oin}
        assert len({r.headers["webhook-id"] for r in got}) == sum(
            1 for o in owner.values() if o == oin
        )


def test_a_slow_receiver_times_out_and_a_huge_answer_is_not_read(w: World) -> None:
    receiver = Receiver()
    receiver.up()
    try:
        admin.set_webhook(w.store.db, OIN, receiver.url, new_secret(), utc_now(), dev=True)
        w.register(0, "kind")
        w.register(1, "kind")
        receiver.behaviour.delay = 3.0
        started = time.monotonic()
        _worker(w, timeout=0.5).run_until_idle()
        assert time.monotonic() - started < 2.5
        assert _states(w) == [("retrying", "timeout")]
        receiver.behaviour.delay = 0.0
        receiver.behaviour.body_size = 64 * 1024 * 1024  # 64 MiB the worker never reads
        with w.store.db.write() as session:
            session.execute(DeliveryRow.__table__.update().values(next_attempt_at=utc_now()))  # type: ignore[attr-defined]
        started = time.monotonic()
        _worker(w, timeout=2.0).run_until_idle()
        assert time.monotonic() - started < 2.0
        assert _states(w) == [("delivered", None)]
    finally:
        receiver.down()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(w: World, status: int) -> None:
    receiver, elsewhere = Receiver(), Receiver()
    elsewhere.up()
    receiver.behaviour.status = status
    receiver.behaviour.location = elsewhere.url
    receiver.up()
    try:
        admin.set_webhook(w.store.db, OIN, receiver.url, new_secret(), utc_now(), dev=True)
        w.register(0, "kind")
        w.register(1, "kind")
        _worker(w).run_until_idle()
    finally:
        receiver.down()
        elsewhere.down()
    assert len(receiver.snapshot()) == 1 and elsewhere.snapshot() == []
    assert _states(w) == [("retrying", str(status))]


def test_gone_is_dead_at_once(w: World) -> None:
    receiver = Receiver()
    receiver.behaviour.status = 410
    receiver.up()
    try:
        admin.set_webhook(w.store.db, OIN, receiver.url, new_secret(), utc_now(), dev=True)
        w.register(0, "kind")
        w.register(1, "kind")
        _worker(w).run_until_idle()
    finally:
        receiver.down()
    assert _states(w) == [("dead", "410")]


def test_a_webhook_disabled_meanwhile_is_not_delivered_to(w: World) -> None:
    receiver = Receiver()
    receiver.up()
    try:
        admin.set_webhook(w.store.db, OIN, receiver.url, new_secret(), utc_now(), dev=True)
        w.register(0, "kind")
        w.register(1, "kind")
        admin.disable_webhook(w.store.db, OIN, utc_now())
        _worker(w).run_until_idle()
    finally:
        receiver.down()
    assert receiver.snapshot() == [] and _states(w) == [("dead", "disabled")]
