"""``vir worker`` processes against a real webhook receiver (issue 16).

1. A worker killed with SIGKILL in the middle of delivering, while writers keep making
   notifications, and started again: every event delivered at least once, none lost.
2. Two writing "instances" (two Database objects, own connection pools) and two worker
   processes on one database: each event delivered once in the normal case (the
   duplicates are counted), PostgreSQL's ``FOR UPDATE SKIP LOCKED`` claims included.

Both run on the suite's database (``VIR_TEST_DATABASE=postgresql`` for PostgreSQL) and
print their counts in the terminal summary.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from sqlalchemy import func, select
from support import postgres
from support.instore import ORGS
from support.service import kill_process, stop_processes
from support.webhook_receiver import Receiver
from support.world import World, person, world

from vir.crypto.standard_webhooks import new_secret
from vir.delivery import admin
from vir.domain.clock import utc_now
from vir.domain.signals import Professional
from vir.services.epochs import EpochBook
from vir.services.identity import Caller
from vir.services.signals import SignalRequest, SignalService
from vir.store.db import Database
from vir.store.tables import DeliveryRow, NotificationRow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        made.clock.now = utc_now() - dt.timedelta(seconds=1)
        yield made


def _url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def _start_worker(w: World, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIR_")},
        "VIR_DATABASE_URL": _url(w.store.db),
        "VIR_DEV": "1",
        "VIR_DELIVERY_LEASE_SECONDS": "3",
        "VIR_WEBHOOK_TIMEOUT_SECONDS": "5",
    }
    with log.open("ab") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "vir.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def _hook(w: World, receiver: Receiver, *orgs: int) -> str:
    secret = new_secret()
    for index in orgs:
        admin.set_webhook(
            w.store.db, str(ORGS[index].oin), receiver.url, secret, utc_now(), dev=True
        )
    return secret


def _writer(
    service: SignalService, org: int, names: list[str], errors: list[BaseException]
) -> None:

    caller = Caller(ORGS[org], f"{org:064x}")
    try:
        for name in names:
            request = SignalRequest(
                f"{name}-{org}",
                1,
                person(name),
                (),
                None,
                None,
                Professional("Anna de Vries", f"anna@org{org}.example"),
                None,
            )
            service.register(caller, request)
    except BaseException as error:  # reported by the test
        errors.append(error)


def _open(w: World) -> int:
    with w.store.db.read() as session:
        return int(
            session.scalar(
                select(func.count()).where(DeliveryRow.state.in_(("pending", "retrying")))
            )
            or 0
        )


def _wait_until_delivered(w: World, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        w.store.db.integrate()  # number what the writers committed
        if _open(w) == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{_open(w)} deliveries still open after {seconds} s")


def _notification_ids(w: World) -> set[str]:
    with w.store.db.read() as session:
        return set(session.scalars(select(NotificationRow.id)))


def test_a_worker_killed_mid_delivery_under_load_loses_nothing(
    w: World, tmp_path: Path, record_property: Any
) -> None:
    receiver = Receiver()
    receiver.behaviour.delay = 0.02  # each delivery takes a moment: the kill lands mid-batch
    receiver.up()
    secret = _hook(w, receiver, 0, 1, 2)
    log = tmp_path / "worker.log"
    errors: list[BaseException] = []
    service = SignalService(w.store.db, utc_now, EpochBook(w.store.db))
    names = [f"child-{i}" for i in range(40)]
    writers = [
        threading.Thread(target=_writer, args=(service, org, names, errors)) for org in (0, 1, 2)
    ]
    first = _start_worker(w, log)
    try:
        for t in writers:
            t.start()
        deadline = time.monotonic() + 60
        while len(receiver.snapshot()) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        received_before_kill = len(receiver.snapshot())
        os.kill(first.pid, signal.SIGKILL)  # mid-delivery, writers still writing
        first.wait()
        for t in writers:
            t.join()
        assert errors == []
        w.store.db.integrate()
        with w.store.db.read() as session:
            leased = session.scalar(select(func.count()).where(DeliveryRow.claim.is_not(None)))
        second = _start_worker(w, log)
        try:
            _wait_until_delivered(w, 120)
        finally:
            stop_processes([second])
    finally:
        kill_process(first)
        receiver.down()
    expected = _notification_ids(w)
    got = receiver.snapshot()
    reference = standardwebhooks.Webhook(secret)
    ids = Counter(reference.verify(r.body, r.headers)["id"] for r in got)
    assert expected <= set(ids), "every event delivered at least once"
    duplicates = sum(n - 1 for n in ids.values())
    with w.store.db.read() as session:
        states = Counter(session.scalars(select(DeliveryRow.state)))
    assert states == Counter({"delivered": len(expected)})
    record_property(
        "terminal_summary",
        f"worker SIGKILL under load ({postgres.backend()}): {len(expected)} notifications, "
        f"{received_before_kill} requests before the kill, {leased} deliveries leased by the "
        f"killed worker, {len(got)} requests in all, {len(set(ids))} distinct events, "
        f"{duplicates} duplicates, 0 lost",
    )


@pytest.mark.parametrize("fault", [False, True], ids=["normal", "one-worker-killed"])
def test_two_instances_and_two_workers_deliver_each_event_once(
    w: World, tmp_path: Path, record_property: Any, fault: bool
) -> None:
    """Normal case: each event exactly once. Under a fault (one of the two workers
    killed with SIGKILL mid-batch): each at least once, the duplicates counted."""
    receiver = Receiver()
    if fault:
        receiver.behaviour.delay = 0.02
    receiver.up()
    secret = _hook(w, receiver, 0, 1, 2, 3)
    second_instance = Database.connect(_url(w.store.db))
    try:
        services = [
            SignalService(db, utc_now, EpochBook(db)) for db in (w.store.db, second_instance)
        ]
        errors: list[BaseException] = []
        writers = [
            threading.Thread(
                target=_writer,
                args=(services[org % 2], org, [f"kid-{i}" for i in range(30)], errors),
            )
            for org in (0, 1, 2, 3)
        ]
        workers = [_start_worker(w, tmp_path / f"worker-{n}.log") for n in (1, 2)]
        try:
            for t in writers:
                t.start()
            if fault:
                deadline = time.monotonic() + 60
                while len(receiver.snapshot()) < 40 and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.kill(workers[0].pid, signal.SIGKILL)
                workers[0].wait()
            for t in writers:
                t.join()
            assert errors == []
            _wait_until_delivered(w, 120)
        finally:
            stop_processes(workers)
    finally:
        second_instance.dispose()
        receiver.down()
    expected = _notification_ids(w)
    reference = standardwebhooks.Webhook(secret)
    ids = Counter(reference.verify(r.body, r.headers)["id"] for r in receiver.snapshot())
    assert set(ids) == expected
    duplicates = sum(n - 1 for n in ids.values())
    logs = "".join((tmp_path / f"worker-{n}.log").read_text() for n in (1, 2))
    if not fault:
        assert duplicates == 0, logs
    record_property(
        "terminal_summary",
        f"2 instances x 2 workers ({postgres.backend()}, "
        f"{'one worker killed mid-batch' if fault else 'normal'}): {len(expected)} "
        f"notifications, {sum(ids.values())} requests, {duplicates} duplicates, 0 lost",
    )
