"""Webhooks end to end: a real ``vir serve`` (its in-process delivery worker), a webhook
set with ``vir org webhook`` while it runs (no restart), organisations registering
through the API with the bundled client, and a receiver on 127.0.0.1 that verifies
every request with ``VirClient.webhook_verifier``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support.service import start_service
from support.webhook_receiver import Receiver

from vir.client import VirClient, nl_bsn
from vir.crypto.standard_webhooks import new_secret

BSN = "123456782"


def test_vir_serve_pushes_signed_events_to_a_webhook_set_while_it_runs(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.up()
    service = start_service(tmp_path / "vir", VIR_DEV="1")
    try:
        secret = new_secret()
        secret_file = tmp_path / "webhook.secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        school, gp = service.org("education"), service.org("gp")
        for org in (school, gp):
            done = service.vir(
                "org",
                "webhook",
                "--oin",
                org.oin,
                "--url",
                receiver.url,
                "--secret-file",
                str(secret_file),
            )
            assert secret not in done.stdout + done.stderr
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
