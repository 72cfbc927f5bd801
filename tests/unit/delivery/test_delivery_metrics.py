"""``/metrics``' delivery figures with many delivered deliveries in the outbox.

Delivered deliveries stay until retention removes their notification, so a scrape must
not count them: ``vir_deliveries`` counts the pending, retrying and dead ones (ranges
of the index on channel and state) and ``vir_deliveries_delivered_total`` counts the
deliveries this process's worker made. The figures stay right beside 20,000 delivered
rows, and the scrape's query reads the index, not the table.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from support import postgres
from support.inapp import in_app, signal_body
from support.instore import ORGS, T0
from support.webhook_receiver import Receiver, hook_keys, receiving
from support.world import World, world

from vir.api.metrics import Metrics, _Deliveries, delivery_counts
from vir.api.routes.signals import notification_item
from vir.crypto.secretbox import init_secret_key
from vir.crypto.standard_webhooks import new_secret
from vir.delivery import admin
from vir.delivery.webhook import WebhookChannel
from vir.delivery.worker import Worker
from vir.domain.clock import utc_now
from vir.store import outbox
from vir.store.tables import DeliveryRow, NotificationRow

DELIVERED = 20_000
OIN = str(ORGS[0].oin)
# (channel, state) -> how many rows beside the delivered ones.
OTHERS = {
    ("webhook", "pending"): 3,
    ("webhook", "retrying"): 2,
    ("webhook", "dead"): 4,
    ("email", "retrying"): 1,
    ("email", "dead"): 5,
}


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        yield made


def _fill(w: World) -> None:
    """DELIVERED delivered webhook deliveries and OTHERS, each with a notification."""
    now = utc_now()
    states = [("webhook", "delivered")] * DELIVERED
    for key, count in OTHERS.items():
        states += [key] * count
    notifications, deliveries = [], []
    for position, (channel, state) in enumerate(states, start=1):
        notification_id = str(uuid.uuid4())
        notifications.append(
            {
                "id": notification_id,
                "oin": OIN,
                "position": position,
                "local_ref": f"r-{position}",
                "type": "match.created",
                "match_id": str(uuid.uuid4()),
                "created_at": now,
                "payload": "{}",
            }
        )
        deliveries.append(
            {
                "notification_id": notification_id,
                "channel": channel,
                "oin": OIN,
                "state": state,
                "attempts": 0 if state == "pending" else 1,
                "created_at": now,
                "next_attempt_at": now + dt.timedelta(hours=1),
                "retry_from": now,
            }
        )
    with w.store.db.write() as session:
        session.execute(insert(NotificationRow), notifications)
        session.execute(insert(DeliveryRow), deliveries)
    if postgres.on_postgresql():
        with w.store.db.write() as session:
            session.execute(text("ANALYZE deliveries"))  # what autovacuum does


def _plan(w: World) -> str:
    query = outbox.counts_query(outbox.CHANNELS)
    with w.store.db.read() as session:
        dialect = session.get_bind().dialect
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        explain = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN "
        return "\n".join(str(row[-1]) for row in session.execute(text(explain + sql)))


def test_the_figures_stay_right_beside_many_delivered_deliveries(w: World) -> None:
    _fill(w)
    assert delivery_counts(w.store.db) == OTHERS
    metrics = Metrics(process=False)
    metrics.registry.register(_Deliveries(lambda: delivery_counts(w.store.db)))
    page = metrics.render()
    for channel in outbox.CHANNELS:
        for state in outbox.NOT_DELIVERED:
            count = OTHERS.get((channel, state), 0)
            assert f'vir_deliveries{{channel="{channel}",state="{state}"}} {count}.0' in page
        dead = OTHERS.get((channel, "dead"), 0)
        assert f'vir_deliveries_dead{{channel="{channel}"}} {dead}.0' in page
        assert f'vir_deliveries_delivered_total{{channel="{channel}"}} 0.0' in page
    assert 'state="delivered"' not in page
    plan = _plan(w)
    assert "ix_deliveries_due" in plan, plan
    assert "Seq Scan on deliveries" not in plan and "SCAN deliveries\n" not in plan + "\n", plan


def test_delivered_deliveries_are_counted_as_they_are_made(w: World) -> None:
    receiver = Receiver()
    receiver.up()
    try:
        admin.set_webhook(
            w.store.db, OIN, receiver.url, new_secret(), utc_now(), dev=True, keys_dir=hook_keys()
        )
        for org in (0, 1, 2):
            w.register(org, "kind")
        metrics = Metrics(process=False)
        worker = Worker(
            w.store.db,
            [WebhookChannel(w.store.db, keys_dir=hook_keys(), dev=True)],
            utc_now,
            notification_item,
            rng=random.Random(3),
        )
        worker.observe(metrics.delivery_recorded)
        worker.run_until_idle()
    finally:
        receiver.down()
    assert len(receiver.snapshot()) == 2
    page = metrics.render()
    assert 'vir_deliveries_delivered_total{channel="webhook"} 2.0' in page
    assert 'vir_deliveries_delivered_total{channel="email"} 0.0' in page
    assert delivery_counts(w.store.db) == {}


def test_the_services_own_worker_counts_on_its_metrics(tmp_path: Path) -> None:
    """``vir serve``'s delivery thread (``app.state.delivery``) tells the app's metrics of
    what it delivered: /metrics shows it, the table's delivered rows are not counted."""
    with receiving() as receiver, in_app(tmp_path, dev=True) as app:
        init_secret_key(tmp_path / "keys")  # what vir keys init makes beside the other key
        db = app.app.state.services.db
        admin.set_webhook(
            db, OIN, receiver.url, new_secret(), T0, dev=True, keys_dir=tmp_path / "keys"
        )
        for index, ref in ((0, "a-1"), (1, "b-1")):
            app.as_caller(index)
            response = app.request("POST", "/v1/signals", json=signal_body(ref, "Sam", app.epoch))
            assert response.status_code == 201
        assert app.app.state.delivery.run_until_idle() == 1
        page = app.scrape("/metrics").text
    assert len(receiver.snapshot()) == 1
    assert 'vir_deliveries_delivered_total{channel="webhook"} 1.0' in page
    assert 'vir_deliveries{channel="webhook",state="pending"} 0.0' in page
    assert 'state="delivered"' not in page
