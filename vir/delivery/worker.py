"""The delivery worker: claims due deliveries, hands them to their channel, records what
came of them (docs/delivery.md).

One round per channel: a short write transaction claims up to ``channel.batch`` due
deliveries (numbered notifications only, oldest first) and sets a lease on them; it
commits before anything is sent, so two workers (threads of several ``vir serve``
instances, or ``vir worker`` processes) never hold one delivery. The channel then
delivers outside any transaction; a second short transaction records each outcome
(only while this worker's lease holds) and writes ``delivery.delivered`` and
``delivery.dead`` to the audit log, with ids only. A worker killed at any point leaves
nothing lost: an unrecorded delivery's lease expires and it is claimed again (at
least once; the event id is stable, so receivers deduplicate).

Failures back off exponentially with full jitter (a random delay between 0 and
``BASE * 2**attempts``, at most ``CAP``), or as the receiver asked (Retry-After),
until ``channel.give_up_after`` since the first attempt: then the delivery is dead.
Time and randomness are parameters (``clock``, ``rng``).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vir import logs
from vir.audit.actions import Action
from vir.audit.chain import Outcome as AuditOutcome
from vir.delivery.channels import Channel, Due, Outcome, Result, State
from vir.domain.clock import Clock
from vir.store import audit_log, outbox
from vir.store.db import Database
from vir.store.records import StoredNotification

BASE = dt.timedelta(seconds=10)
CAP = dt.timedelta(hours=2)
LEASE = dt.timedelta(minutes=5)
POLL_SECONDS = 0.5
# How often a channel's own upkeep (``housekeep``) runs, whether or not anything is due.
HOUSEKEEPING = dt.timedelta(minutes=1)

Render = Callable[[StoredNotification], Mapping[str, Any]]


def backoff(
    attempts: int, rng: random.Random, base: dt.timedelta = BASE, cap: dt.timedelta = CAP
) -> dt.timedelta:
    """Full jitter: uniformly between 0 and min(cap, base * 2**(attempts - 1))."""
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2 ** min(max(attempts - 1, 0), 30))
    return dt.timedelta(seconds=rng.uniform(0, ceiling))


class Worker:
    def __init__(
        self,
        db: Database,
        channels: Sequence[Channel],
        clock: Clock,
        render: Render,
        *,
        rng: random.Random | None = None,
        lease: dt.timedelta = LEASE,
        poll: float = POLL_SECONDS,
        base: dt.timedelta = BASE,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        """``render``: a stored notification as ``GET /v1/notifications`` shows it.
        ``on_result(channel, state)``: told of each recorded delivered/retrying/dead."""
        self._db = db
        self._channels = list(channels)
        self._clock = clock
        self._render = render
        self._rng = rng or random.SystemRandom()
        self._lease = lease
        self._base = base
        self._poll = poll
        self._on_result = on_result
        self._tidied: dict[str, dt.datetime] = {}  # channel -> its last housekeeping
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(self, on_result: Callable[[str, str], None]) -> None:
        """Tell ``on_result(channel, state)`` of each delivery state recorded from now on
        (the metrics' delivered counter)."""
        self._on_result = on_result

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    def run_once(self) -> int:
        """One round over every channel; how many deliveries it handled."""
        return sum(self._round(channel) for channel in self._channels)

    def run_until_idle(self, rounds: int = 1000) -> int:
        """Rounds until nothing is due (tests)."""
        total = 0
        for _ in range(rounds):
            done = self.run_once()
            total += done
            if not done:
                break
        return total

    def _round(self, channel: Channel) -> int:
        now = self._clock()
        self._housekeep(channel, now)
        with self._db.read() as session:
            if not outbox.has_due(session, channel.name, now):
                return 0
        with self._db.write() as session:
            claimed = outbox.claim(
                session,
                channel.name,
                now,
                self._lease,
                channel.batch,
                ordered=bool(getattr(channel, "ordered", False)),
            )
        if not claimed:
            return 0
        due = [
            Due(
                id=c.id,
                channel=c.channel,
                notification_id=c.notification.id,
                oin=c.notification.oin,
                position=int(c.notification.position),
                type=c.notification.type,
                local_ref=c.notification.local_ref,
                signal_id=c.signal_id,
                created_at=c.notification.created_at,
                item=self._render(c.notification),
                attempts=c.attempts,
                first_attempt_at=c.first_attempt_at,
            )
            for c in claimed
        ]
        try:
            outcomes = {o.delivery_id: o for o in channel.deliver(due, now)}
        except Exception:  # a channel's bug must not stop the others; its rows retry
            logs.emit(logs.JOB_FAILED, job=f"delivery.{channel.name}", exc_info=True)
            outcomes = {}
        done = self._clock()
        results: list[tuple[str, str]] = []
        with self._db.write() as session:
            for c in claimed:
                outcome = outcomes.get(c.id) or Outcome(c.id, Result.RETRY, "error")
                state = self._record(session, channel, c, outcome, done)
                if state is not None:
                    results.append((channel.name, state))
        if self._on_result is not None:
            for name, state in results:
                self._on_result(name, state)
        return len(claimed)

    def _housekeep(self, channel: Channel, now: dt.datetime) -> None:
        """A channel's own upkeep (an optional ``housekeep(now)``: the e-mail channel
        deletes digest windows that are over), at most once per HOUSEKEEPING, also in a
        quiet spell when nothing is due (the round then ends before ``deliver``)."""
        tidy = getattr(channel, "housekeep", None)
        last = self._tidied.get(channel.name)
        if not callable(tidy) or (last is not None and now - last < HOUSEKEEPING):
            return
        self._tidied[channel.name] = now
        try:
            tidy(now)
        except Exception:  # upkeep must not stop delivery; tried again next time
            logs.emit(logs.JOB_FAILED, job=f"delivery.{channel.name}", exc_info=True)

    def _record(
        self,
        session: Any,
        channel: Channel,
        claimed: outbox.Claimed,
        outcome: Outcome,
        now: dt.datetime,
    ) -> str | None:
        attempts = claimed.attempts + (0 if outcome.result is Result.DEFER else 1)
        if outcome.result is Result.DELIVERED:
            state, attempted, next_at = State.DELIVERED, True, None
        elif outcome.result is Result.DEFER:
            state = State.RETRYING if claimed.attempts else State.PENDING
            attempted, next_at = False, outcome.retry_at or now
        elif outcome.result is Result.FAILED or now - claimed.retry_from >= channel.give_up_after:
            state, attempted, next_at = State.DEAD, True, None
        else:
            state, attempted = State.RETRYING, True
            next_at = outcome.retry_at or now + backoff(attempts, self._rng, self._base)
        recorded = outbox.finish(
            session,
            claimed.id,
            claimed.claim,
            state=state.value,
            attempted=attempted,
            now=now,
            next_attempt_at=next_at,
            error=outcome.error,
        )
        if not recorded:
            return None
        if state in (State.DELIVERED, State.DEAD):
            objects: dict[str, str | int] = {
                "notification": claimed.notification.id,
                "channel": channel.name,
                "attempts": attempts,
            }
            if state is State.DEAD and outcome.error:
                objects["error"] = outcome.error[:16]
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.DELIVERY_DELIVERED if state is State.DELIVERED else Action.DELIVERY_DEAD,
                    AuditOutcome.SUCCESS if state is State.DELIVERED else AuditOutcome.FAILED,
                    now,
                    organisation=claimed.notification.oin,
                    actor="delivery",
                    objects=objects,
                ),
            )
        return state.value

    # --- the thread (in-process delivery, and ``vir worker``) ---------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="vir-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()
        for channel in self._channels:
            close = getattr(channel, "close", None)
            if callable(close):
                close()

    def run_forever(self) -> None:
        """Rounds until ``stop`` (from another thread or a signal handler)."""
        self._loop()

    def request_stop(self) -> None:
        self._stopping.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                done = self.run_once()
            except Exception:  # a busy database must not end the loop for good
                logs.emit(logs.JOB_FAILED, job="delivery.worker", exc_info=True)
                done = 0
            if not done:
                self._stopping.wait(self._poll)
