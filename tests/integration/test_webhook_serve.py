"""Webhooks end to end: a real ``vir serve`` (its in-process delivery worker), a webhook
set with ``vir org webhook`` while it runs (no restart), organisations registering
through the API with the bundled client, and a receiver on 127.0.0.1 that verifies
every request with ``VirClient.webhook_verifier``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support.service import RunningService, start_service
from support.webhook_receiver import Receiver

from vir.client import VirClient, nl_bsn
from vir.crypto.standard_webhooks import new_secret

BSN = "123456782"


def _set_webhooks(service: RunningService, url: str, folder: Path, *categories: str) -> str:
    """``vir org webhook`` for each of ``categories``' demo organisations; the secret."""
    secret = new_secret()
    secret_file = folder / "webhook.secret"
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    for category in categories:
        done = service.vir(
            "org",
            "webhook",
            "--oin",
            service.org(category).oin,
            "--url",
            url,
            "--secret-file",
            str(secret_file),
        )
        assert secret not in done.stdout + done.stderr
    return secret


def test_vir_serve_pushes_signed_events_to_a_webhook_set_while_it_runs(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.up()
    service = start_service(tmp_path / "vir", VIR_DEV="1")
    try:
        secret = _set_webhooks(service, receiver.url, tmp_path, "education", "gp")
        for who, ref in (("education", "LL-2026-0042"), ("gp", "HA.77:31")):
            with service.client(who) as client:
                answer = client.pseudonymise([nl_bsn(BSN)])
                client.register_signal(
                    {
                        "local_ref": ref,
                        "epoch": answer.epoch,
                        "person": answer.pseudonyms[0],
                        "professional": {"name": "Els Jansen", "email": "e.jansen@org.example"},
                    }
                )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(receiver.snapshot()) < 2:
            time.sleep(0.1)
        verifier = VirClient.webhook_verifier(secret)
        events = [verifier.verify(r.body, dict(r.headers)) for r in receiver.snapshot()]
        assert sorted(e.data["local_ref"] for e in events) == ["HA.77:31", "LL-2026-0042"]
        assert all(e.type == "nl.vir.match.created" and e.sequence == 1 for e in events)
        assert not any(e.duplicate for e in events)
        with service.client("education") as client:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                items, _cursor = client.notifications()
                if items and items[0]["delivery"].get("webhook") == "delivered":
                    break
                time.sleep(0.2)
        assert items[0]["delivery"] == {"webhook": "delivered"}
        [mine] = [e for e in events if e.data["local_ref"] == "LL-2026-0042"]
        assert mine.data == {k: v for k, v in items[0].items() if k != "delivery"}
        assert secret not in service.log() and "hooks/vir" not in service.log()
    finally:
        service.stop()
        receiver.down()


def test_the_demo_waits_for_its_webhooks_before_it_withdraws(tmp_path: Path) -> None:
    """With webhooks set up, ``vir demo`` pushed nothing: it withdrew its signals
    (deleting their notifications and open deliveries) before the worker got to them."""
    receiver = Receiver()
    receiver.up()
    service = start_service(tmp_path / "vir", VIR_DEV="1")
    try:
        _set_webhooks(service, receiver.url, tmp_path, "education", "gp", "youth_care")
        out = service.vir("demo", "--url", service.url, "--dev-dir", str(service.dev)).stdout
        assert "(pushed before the withdrawal: 5 by webhook)" in out, out
        assert len(receiver.snapshot()) == 5
    finally:
        service.stop()
        receiver.down()
