"""The outbox and the webhook channel against a real receiver on 127.0.0.1 (issue 16).

No mocks of the receiver: an HTTP server the test starts, down for the first simulated
minute; the worker runs on a clock the test moves, so a minute of downtime and the
backoff after it take no real time. Every signature is checked with the Standard
Webhooks reference library (``standardwebhooks``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from sqlalchemy import func, select
from support.instore import ORGS
from support.webhook_receiver import Receiver, hook_keys, make_test_ca, set_hook
from support.world import World, world

from vir.api.routes.signals import notification_item
from vir.delivery import admin
from vir.delivery.webhook import WebhookChannel
from vir.delivery.worker import Worker
from vir.domain.clock import utc_now
from vir.domain.signals import WithdrawalReason
from vir.services.signals import NotificationService
from vir.store import outbox
from vir.store.tables import DeliveryRow, NotificationRow


@dataclass
class SimClock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        yield made


def _worker(w: World, clock: SimClock, **channel: Any) -> Worker:
    return Worker(
        w.store.db,
        [WebhookChannel(w.store.db, keys_dir=hook_keys(), dev=True, timeout=2.0, **channel)],
        clock,
        notification_item,
        rng=random.Random(16),
        base=dt.timedelta(seconds=2),
    )


def _make_matches(w: World, children: int, at: dt.datetime | None = None) -> None:
    """``children`` person matches between ORGS[0] and ORGS[1]: two notifications each,
    made at ``at`` (default: a second ago)."""
    w.clock.now = at or utc_now() - dt.timedelta(seconds=1)
    for i in range(children):
        w.register(0, f"kind-{i}")
        w.register(1, f"kind-{i}")


def _stored(w: World) -> dict[str, tuple[str, int]]:
    with w.store.db.read() as session:
        rows = session.execute(
            select(NotificationRow.id, NotificationRow.oin, NotificationRow.position)
        )
        return {nid: (oin, int(pos)) for nid, oin, pos in rows}


def test_a_receiver_down_for_a_minute_gets_every_event_verified_and_in_recoverable_order(
    w: World, record_property: Any
) -> None:
    receiver = Receiver()
    receiver.reserve()  # down: nothing listens on its port yet
    secret = set_hook(w.store.db, receiver.url, 0, 1)
    # Starts a minute in the past: the reference library checks webhook-timestamp
    # against the real clock (5 minutes either way).
    clock = SimClock(utc_now() - dt.timedelta(seconds=60))
    _make_matches(w, 12, clock.now)
    stored = _stored(w)
    assert len(stored) == 24
    worker = _worker(w, clock)
    tried_while_down = 0
    elapsed = 0
    while elapsed < 600:
        if elapsed >= 60:
            receiver.up()
        handled = worker.run_until_idle()
        if elapsed < 60:
            tried_while_down += handled
        with w.store.db.read() as session:
            open_ = session.scalar(
                select(func.count()).where(DeliveryRow.state.in_(("pending", "retrying")))
            )
        if open_ == 0:
            break
        clock.advance(5)
        elapsed += 5
    receiver.down()
    got = receiver.snapshot()
    reference = standardwebhooks.Webhook(secret)
    events = [reference.verify(r.body, r.headers) for r in got]  # raises if any is not valid
    ids = Counter(e["id"] for e in events)
    assert set(ids) == set(stored)  # every event arrived
    assert all(r.headers["webhook-id"] == json.loads(r.body)["id"] for r in got)
    duplicates = sum(n - 1 for n in ids.values())
    # Order: per organisation, the events sorted by sequence are its positions 1..n.
    by_org: dict[str, list[int]] = {}
    for e in {e["id"]: e for e in events}.values():
        oin = stored[e["id"]][0]
        by_org.setdefault(oin, []).append(int(e["sequence"]))
        assert int(e["sequence"]) == stored[e["id"]][1]
        assert e["specversion"] == "1.0" and e["type"].startswith("nl.vir.match.")
        assert e["datacontenttype"] == "application/json"
    for positions in by_org.values():
        assert sorted(positions) == list(range(1, len(positions) + 1))
    arrival_in_order = all(
        [int(e["sequence"]) for e in events if stored[e["id"]][0] == oin] == sorted(seqs)
        for oin, seqs in by_org.items()
    )
    # The data is the notification exactly as GET /v1/notifications shows it.
    page = NotificationService(w.store.db, w.clock).read(w.caller(0), None, 100)
    shown = {n.id: notification_item(n) for n in page.items}
    for e in events:
        if e["id"] in shown:
            assert e["data"] == shown[e["id"]]
    assert all(page.delivery[n.id] == {"webhook": "delivered"} for n in page.items)
    with w.store.db.read() as session:
        attempts = list(session.scalars(select(DeliveryRow.attempts)))
    assert tried_while_down > 0 and max(attempts) >= 2
    assert {a for a in w.actions() if a.startswith("delivery.")} == {"delivery.delivered"}
    record_property(
        "terminal_summary",
        f"webhook downtime (simulated 60 s down): {len(stored)} events, {len(got)} requests, "
        f"{duplicates} duplicates, all {len(events)} signatures verified by standardwebhooks, "
        f"max attempts {max(attempts)}, simulated seconds {elapsed}, "
        f"arrived in position order per organisation: {arrival_in_order}",
    )


def test_https_receiver_with_the_test_ca(w: World, tmp_path: Path) -> None:
    ca, cert, key = make_test_ca(tmp_path / "pki")
    receiver = Receiver(tls=(cert, key))
    receiver.up()
    try:
        secret = set_hook(w.store.db, receiver.url, 0, 1)
        _make_matches(w, 2)
        clock = SimClock(utc_now())
        assert _worker(w, clock, ca_file=ca).run_until_idle() == 4
    finally:
        receiver.down()
    reference = standardwebhooks.Webhook(secret)
    assert len({reference.verify(r.body, r.headers)["id"] for r in receiver.snapshot()}) == 4


def test_a_receiver_the_system_trust_does_not_know_is_not_delivered_to(
    w: World, tmp_path: Path
) -> None:
    _ca, cert, key = make_test_ca(tmp_path / "pki")
    receiver = Receiver(tls=(cert, key))
    receiver.up()
    try:
        set_hook(w.store.db, receiver.url, 0)
        _make_matches(w, 1)
        _worker(w, SimClock(utc_now())).run_until_idle()
    finally:
        receiver.down()
    with w.store.db.read() as session:
        row = session.execute(select(DeliveryRow.state, DeliveryRow.last_error)).one()
    assert tuple(row) == ("retrying", "tls")


def test_deliveries_commit_with_their_notification_and_go_with_it(w: World) -> None:
    receiver = Receiver()
    receiver.reserve()
    set_hook(w.store.db, receiver.url, 0)  # only ORGS[0] has a webhook
    _make_matches(w, 1)
    with w.store.db.read() as session:
        rows = session.execute(
            select(DeliveryRow.oin, DeliveryRow.state, DeliveryRow.channel)
        ).all()
    assert [tuple(r) for r in rows] == [(str(ORGS[0].oin), "pending", "webhook")]
    # Retention: the notification goes when its signal goes, its delivery with it.
    w.signals.withdraw(w.caller(0), "kind-0-0", WithdrawalReason.UNJUSTIFIED)
    with w.store.db.read() as session:
        remaining = session.execute(
            select(DeliveryRow.notification_id, NotificationRow.id).join(
                NotificationRow, NotificationRow.id == DeliveryRow.notification_id, isouter=True
            )
        ).all()
    assert remaining == []  # nothing left to deliver of what is no longer held


def test_unnumbered_notifications_are_not_delivered(w: World) -> None:
    receiver = Receiver()
    receiver.up()
    try:
        set_hook(w.store.db, receiver.url, 0)
        _make_matches(w, 1)
        with w.store.db.write() as session:
            session.execute(NotificationRow.__table__.update().values(position=None))  # type: ignore[attr-defined]
        clock = SimClock(utc_now())
        assert _worker(w, clock).run_until_idle() == 0
        assert receiver.snapshot() == []
    finally:
        receiver.down()


def test_a_lease_keeps_a_claim_from_a_second_worker_until_it_expires(w: World) -> None:
    receiver = Receiver()
    receiver.reserve()
    set_hook(w.store.db, receiver.url, 0, 1)
    _make_matches(w, 3)
    now = utc_now()
    with w.store.db.write() as session:
        first = outbox.claim(session, "webhook", now, dt.timedelta(seconds=30), 100)
    with w.store.db.write() as session:
        second = outbox.claim(session, "webhook", now, dt.timedelta(seconds=30), 100)
    assert len(first) == 6 and second == []
    # The first worker dies; once its lease ran out, another worker claims everything.
    later = now + dt.timedelta(seconds=31)
    with w.store.db.write() as session:
        third = outbox.claim(session, "webhook", later, dt.timedelta(seconds=30), 100)
    assert sorted(c.id for c in third) == sorted(c.id for c in first)
    # The dead worker's late result is not recorded over the new claim.
    with w.store.db.write() as session:
        assert not outbox.finish(
            session, first[0].id, first[0].claim, state="delivered", attempted=True, now=later
        )
    # Claims come in position order per organisation.
    by_org: dict[str, list[int]] = {}
    for c in third:
        by_org.setdefault(c.notification.oin, []).append(c.notification.position)
    assert all(p == sorted(p) for p in by_org.values())


def test_gone_is_dead_at_once_and_retry_puts_it_back(w: World) -> None:
    receiver = Receiver()
    receiver.behaviour.status = 410
    receiver.up()
    try:
        set_hook(w.store.db, receiver.url, 0)
        _make_matches(w, 1)
        clock = SimClock(utc_now())
        _worker(w, clock).run_until_idle()
        listed = admin.listing(w.store.db, "dead")
        assert [(d.state, d.attempts, d.last_error) for d in listed] == [("dead", 1, "410")]
        assert "delivery.dead" in w.actions()
        receiver.behaviour.status = 204
        assert admin.retry(w.store.db, clock(), delivery_id=None, dead=True) == 1
        _worker(w, clock).run_until_idle()
        assert [d.state for d in admin.listing(w.store.db, None)] == ["delivered"]
    finally:
        receiver.down()


def test_retries_end_dead_after_the_window(w: World) -> None:
    receiver = Receiver()
    receiver.behaviour.status = 503
    receiver.up()
    try:
        set_hook(w.store.db, receiver.url, 0)
        _make_matches(w, 1)
        clock = SimClock(utc_now())
        worker = _worker(w, clock, retry_hours=1.0)
        for _ in range(200):
            worker.run_until_idle()
            clock.advance(60)
            if admin.listing(w.store.db, "dead"):
                break
        [dead] = admin.listing(w.store.db, "dead")
        assert dead.last_error == "503" and dead.attempts > 3
    finally:
        receiver.down()
