"""``vir worker`` processes against a real webhook receiver (issue 16).

1. A worker killed with SIGKILL in the middle of delivering, while writers keep making
   notifications, and started again: every event delivered at least once, none lost.
2. Two ``vir serve`` processes on one PostgreSQL database, organisations registering
   through both with the bundled client, and two ``vir worker`` processes: each event
   delivered exactly once in the normal case (PostgreSQL's ``FOR UPDATE SKIP LOCKED``
   claims), then one worker killed mid-delivery: at least once, the duplicates counted.

The first runs on the suite's database (``VIR_TEST_DATABASE=postgresql`` for
PostgreSQL), the second on PostgreSQL only; both print their counts in the terminal
summary.
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
from support import launch, postgres
from support.instore import ORGS
from support.service import (
    Org,
    RunningService,
    kill_process,
    start_service,
    stop_processes,
)
from support.webhook_receiver import Receiver, hook_keys, set_hook
from support.world import World, person, world

from vir.client import nl_bsn
from vir.crypto.standard_webhooks import new_secret
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
        "VIR_KEYS_DIR": str(hook_keys()),
        "VIR_DEV": "1",
        "VIR_DELIVERY_LEASE_SECONDS": "3",
        "VIR_WEBHOOK_TIMEOUT_SECONDS": "5",
    }
    with log.open("ab") as handle:  # the child keeps its own descriptor
        return launch.popen(
            [sys.executable, "-m", "vir.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


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
    secret = set_hook(w.store.db, receiver.url, 0, 1, 2)
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


def _bsns(count: int, start: int) -> list[str]:
    """``count`` BSNs that pass the 11-proof, from ``start`` (eight digits) on."""
    found: list[str] = []
    base = start
    while len(found) < count:
        digits = f"{base:08d}"
        total = sum(int(d) * (9 - i) for i, d in enumerate(digits))
        check = total % 11
        if check < 10:
            found.append(digits + str(check))
        base += 1
    return found


def _register_through_both(
    instances: list[RunningService], bsns: list[str], tag: str, errors: list[str]
) -> None:
    """Every demo organisation registers a signal for each of ``bsns``, at the same time,
    alternating between the instances (child k through instance (org + k) mod 2): the
    matches, and so the notifications and deliveries, are made on both."""

    def one(number: int, org: Org) -> None:
        try:
            for n, service in enumerate(instances):
                with service.client(org.category) as client:
                    mine = [b for k, b in enumerate(bsns) if (number + k) % 2 == n]
                    answer = client.pseudonymise([nl_bsn(b) for b in mine])
                    results = client.register_signals(
                        [
                            {
                                "local_ref": f"{tag}-{b}",
                                "epoch": answer.epoch,
                                "person": pseudonym,
                                "professional": {"name": "Els Jansen", "email": "e@org.example"},
                            }
                            for b, pseudonym in zip(mine, answer.pseudonyms, strict=True)
                        ]
                    )
                    errors.extend(str(r["status"]) for r in results if r["status"] != 201)
        except Exception as error:  # reported by the test
            errors.append(repr(error))

    threads = [
        threading.Thread(target=one, args=(number, org))
        for number, org in enumerate(instances[0].orgs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _served_worker(service: RunningService, log: Path) -> subprocess.Popen[bytes]:
    """``vir worker`` beside the instances, with their settings (a short lease: a killed
    worker's claims run out within the test)."""
    env = service.env | {"VIR_DELIVERY_LEASE_SECONDS": "3", "VIR_WEBHOOK_TIMEOUT_SECONDS": "5"}
    with log.open("ab") as handle:
        return launch.popen(
            [sys.executable, "-m", "vir.cli", "worker"],
            cwd=service.root,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def _all_delivered(service: RunningService, receiver: Receiver, seconds: float) -> set[str]:
    """Wait until every notification has a delivered webhook delivery; their ids."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        [(notifications, open_, delivered)] = service.sql(
            "SELECT (SELECT count(*) FROM notifications),"
            " (SELECT count(*) FROM deliveries WHERE state <> 'delivered'),"
            " (SELECT count(*) FROM deliveries WHERE state = 'delivered')"
        )
        if open_ == 0 and delivered == notifications:
            return {str(r[0]) for r in service.sql("SELECT id FROM notifications")}
        time.sleep(0.2)
    raise AssertionError(f"deliveries still open after {seconds} s")


@pytest.mark.skipif(not postgres.on_postgresql(), reason="two vir serve instances: PostgreSQL")
def test_two_serve_instances_and_two_workers_deliver_each_event_once(
    tmp_path: Path, record_property: Any
) -> None:
    """Two ``vir serve`` processes on one PostgreSQL database (no delivery thread of their
    own), two ``vir worker`` processes and a real receiver. Normal case: each event
    exactly once, every signature verified with ``standardwebhooks``. Then a fault (one
    worker killed with SIGKILL mid-delivery): each event at least once, duplicates
    counted."""
    receiver = Receiver()
    receiver.up()
    root = tmp_path / "vir"
    settings = {"VIR_DEV": "1", "VIR_DELIVERY_INPROCESS": "0"}
    instances = [start_service(root, **settings)]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        instances.append(start_service(root, **settings))
        secret = new_secret()
        secret_file = tmp_path / "webhook.secret"
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
        for org in instances[0].orgs:
            instances[1].vir(
                "org", "webhook", "--oin", org.oin, "--url", receiver.url,
                "--secret-file", str(secret_file),
            )  # fmt: skip
        workers = [_served_worker(instances[0], tmp_path / f"worker-{n}.log") for n in (1, 2)]
        errors: list[str] = []
        _register_through_both(instances, _bsns(12, 10_000_000), "normal", errors)
        assert errors == []
        normal = _all_delivered(instances[0], receiver, 45)
        reference = standardwebhooks.Webhook(secret)
        ids = Counter(reference.verify(r.body, r.headers)["id"] for r in receiver.snapshot())
        logs = "".join((tmp_path / f"worker-{n}.log").read_text() for n in (1, 2))
        assert set(ids) == normal and len(normal) > 0
        assert max(ids.values()) == 1, logs  # exactly once
        received_normal = len(receiver.snapshot())

        receiver.behaviour.delay = 0.03  # each delivery takes a moment: the kill lands mid-batch
        writer = threading.Thread(
            target=_register_through_both,
            args=(instances, _bsns(12, 20_000_000), "fault", errors),
        )
        writer.start()
        deadline = time.monotonic() + 30
        while len(receiver.snapshot()) < received_normal + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait()
        writer.join()
        assert errors == []
        everything = _all_delivered(instances[0], receiver, 45)
    finally:
        stop_processes(workers)
        for service in instances:
            service.stop()
        receiver.down()
    got = receiver.snapshot()
    ids = Counter(reference.verify(r.body, r.headers)["id"] for r in got)
    assert set(ids) == everything  # every event at least once, none lost
    fault = everything - normal
    duplicates = sum(n - 1 for n in ids.values())
    record_property(
        "terminal_summary",
        f"2 vir serve x 2 vir worker (postgresql): normal: {len(normal)} notifications, "
        f"{received_normal} requests, 0 duplicates; one worker SIGKILLed mid-delivery: "
        f"{len(fault)} notifications, {len(got) - received_normal} requests, "
        f"{duplicates} duplicates, 0 lost",
    )
