"""``GET /v1/notifications`` shows each notification's delivery state per channel
(additive to the wire contract), and ``/metrics`` the outbox, dead letters by channel."""

from __future__ import annotations

import random
from pathlib import Path

from support.inapp import in_app, signal_body
from support.instore import ORGS, T0
from support.webhook_receiver import Receiver, hook_keys

from vir.api.routes.signals import notification_item
from vir.crypto.standard_webhooks import new_secret
from vir.delivery import admin
from vir.delivery.webhook import WebhookChannel
from vir.delivery.worker import Worker


def test_notifications_show_their_delivery_state_and_metrics_count_dead_letters(
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    receiver.behaviour.status = 410
    receiver.up()
    try:
        with in_app(tmp_path) as app:
            db = app.app.state.services.db
            admin.set_webhook(
                db, str(ORGS[0].oin), receiver.url, new_secret(), T0, dev=True, keys_dir=hook_keys()
            )
            for index, ref in ((0, "a-1"), (1, "b-1")):
                app.as_caller(index)
                assert (
                    app.request(
                        "POST", "/v1/signals", json=signal_body(ref, "Sam", app.epoch)
                    ).status_code
                    == 201
                )
            app.as_caller(0)
            pending = app.request("GET", "/v1/notifications").json()["items"]
            assert [n["delivery"] for n in pending] == [{"webhook": "pending"}]
            app.as_caller(1)  # no webhook: no channel applies
            assert [
                n["delivery"] for n in app.request("GET", "/v1/notifications").json()["items"]
            ] == [{}]
            worker = Worker(
                db,
                [WebhookChannel(db, keys_dir=hook_keys(), dev=True)],
                lambda: T0,
                notification_item,
                rng=random.Random(0),
            )
            assert worker.run_until_idle() == 1
            app.as_caller(0)
            [item] = app.request("GET", "/v1/notifications").json()["items"]
            assert item["delivery"] == {"webhook": "dead"}
            metrics = app.scrape("/metrics").text
            assert 'vir_deliveries_dead{channel="webhook"} 1.0' in metrics
            assert 'vir_deliveries{channel="webhook",state="dead"} 1.0' in metrics
            spec = app.request("GET", "/openapi.json").json()
            schema = spec["components"]["schemas"]["NotificationOut"]["properties"]["delivery"]
            assert schema["additionalProperties"]["$ref"].endswith("/DeliveryState")
    finally:
        receiver.down()
