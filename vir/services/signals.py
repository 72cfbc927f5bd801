"""Registering and withdrawing signals, and reading one's own matches and notifications."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from vir.audit.chain import Outcome
from vir.crypto import oprf
from vir.domain.clock import Clock
from vir.domain.errors import Conflict, InputError, InvalidElement, NotFound
from vir.domain.matching import group_keys
from vir.domain.signals import Professional, SignalFacts, WithdrawalReason, latest_removal
from vir.services.identity import Caller
from vir.services.matching import current_matches, settle, snapshot
from vir.store import audit_log
from vir.store import signals as repo
from vir.store.db import Database


@dataclass(frozen=True)
class SignalRequest:
    local_ref: str
    epoch: int
    person: bytes
    parents: tuple[bytes, ...]
    address: bytes | None
    remove_on: dt.date | None
    professional: Professional

    def content_hash(self) -> bytes:
        """What makes a repeat idempotent: the same content under the same ``local_ref``."""
        document = {
            "epoch": self.epoch,
            "person": self.person.hex(),
            "parents": sorted(p.hex() for p in self.parents),
            "address": self.address.hex() if self.address else None,
            "remove_on": self.remove_on.isoformat() if self.remove_on else None,
            "professional": self.professional.as_dict(),
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()


@dataclass(frozen=True)
class Registered:
    created: bool
    signal_id: str
    local_ref: str
    remove_on: dt.date
    matches: list[dict[str, Any]]


def _validate(request: SignalRequest, current_epoch: int, today: dt.date) -> dt.date:
    if request.epoch != current_epoch:
        raise InputError(
            "epoch", f"pseudonyms must be made under the current key epoch ({current_epoch})"
        )
    elements = [("person", request.person)]
    elements += [(f"parents[{i}]", p) for i, p in enumerate(request.parents)]
    if request.address is not None:
        elements.append(("address", request.address))
    for field, element in elements:
        if not oprf.is_valid_element(element):
            raise InvalidElement(field)
    if len(set(request.parents)) != len(request.parents):
        raise InputError("parents", "a parent is listed twice")
    if request.person in request.parents:
        raise InputError("parents", "the young person cannot be their own parent")
    latest = latest_removal(today)
    if request.remove_on is None:
        return latest
    if request.remove_on <= today:
        raise InputError("remove_on", "the removal date must be in the future")
    if request.remove_on > latest:
        raise InputError(
            "remove_on", f"the removal date may be at most two years ahead ({latest.isoformat()})"
        )
    return request.remove_on


class SignalService:
    def __init__(self, db: Database, clock: Clock, current_epoch: int) -> None:
        self._db = db
        self._clock = clock
        self._epoch = current_epoch

    def register(self, caller: Caller, request: SignalRequest) -> Registered:
        now = self._clock()
        remove_on = _validate(request, self._epoch, now.date())
        digest = request.content_hash()
        with self._db.write() as session:
            existing = repo.signal_by_ref(session, caller.oin, request.local_ref)
            if existing is not None:
                if existing.content_hash != digest:
                    raise Conflict("this local_ref is already registered with other content")
                return Registered(
                    False,
                    existing.id,
                    existing.local_ref,
                    existing.remove_on,
                    current_matches(session, existing.id, existing.oin),
                )
            if repo.has_signal_on(session, caller.oin, request.person):
                raise Conflict(
                    "your organisation already has an active signal on this young person"
                )
            signal_id = str(uuid.uuid4())
            facts = SignalFacts(
                signal_id, caller.oin, request.person, frozenset(request.parents), request.address
            )
            before = snapshot(session, group_keys(facts))
            repo.insert_signal(
                session,
                {
                    "id": signal_id,
                    "oin": caller.oin,
                    "local_ref": request.local_ref,
                    "epoch": request.epoch,
                    "person": request.person,
                    "address": request.address,
                    "remove_on": remove_on,
                    "professional_name": request.professional.name,
                    "professional_email": request.professional.email,
                    "professional_phone": request.professional.phone,
                    "professional_function": request.professional.function,
                    "content_hash": digest,
                    "created_at": now,
                },
                request.parents,
            )
            audit_log.append(
                session,
                audit_log.new_event(
                    "signal.registered",
                    Outcome.SUCCESS,
                    now,
                    organisation=caller.oin,
                    certificate=caller.certificate,
                    objects={"signal": signal_id},
                ),
            )
            settle(session, before, now)
            return Registered(
                True,
                signal_id,
                request.local_ref,
                remove_on,
                current_matches(session, signal_id, caller.oin),
            )

    def withdraw(self, caller: Caller, local_ref: str, reason: WithdrawalReason) -> None:
        now = self._clock()
        with self._db.write() as session:
            row = repo.signal_by_ref(session, caller.oin, local_ref)
            if row is None:
                raise NotFound("your organisation has no active signal with this local_ref")
            (facts,) = repo.facts(session, [row])
            keys = group_keys(facts) | {key for _m, key in repo.matches_of(session, row.id)}
            before = snapshot(session, keys)
            repo.delete_signal(session, row.id)
            audit_log.append(
                session,
                audit_log.new_event(
                    "signal.withdrawn",
                    Outcome.SUCCESS,
                    now,
                    organisation=caller.oin,
                    certificate=caller.certificate,
                    objects={"signal": row.id},
                    reason=reason.value,
                ),
            )
            settle(session, before, now, {row.id: row.oin})

    def matches(self, caller: Caller, local_ref: str) -> list[dict[str, Any]]:
        with self._db.read() as session:
            row = repo.signal_by_ref(session, caller.oin, local_ref)
            if row is None:
                raise NotFound("your organisation has no active signal with this local_ref")
            return current_matches(session, row.id, row.oin)


@dataclass(frozen=True)
class NotificationPage:
    items: list[dict[str, Any]]
    next: str


class NotificationService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def read(self, caller: Caller, after: str | None, limit: int) -> NotificationPage:
        """Notifications for the caller's organisation after the cursor, oldest first.

        The cursor is the last item's sequence number: inserts commit in sequence
        order (writes are serialised), so following ``next`` never skips or repeats.
        """
        if after is not None and not (after.isascii() and after.isdigit() and len(after) < 19):
            raise InputError("after", "not a cursor returned by this endpoint")
        position = int(after) if after else 0
        with self._db.write() as session:
            rows = repo.notifications_after(session, caller.oin, position, limit)
            items = [
                {
                    "id": r.id,
                    "type": r.type,
                    "created_at": audit_log.rfc3339(r.created_at),
                    "local_ref": r.local_ref,
                    "match": json.loads(r.payload),
                }
                for r in rows
            ]
            audit_log.append(
                session,
                audit_log.new_event(
                    "notifications.read",
                    Outcome.SUCCESS,
                    self._clock(),
                    organisation=caller.oin,
                    certificate=caller.certificate,
                    objects={"count": len(rows)},
                ),
            )
        return NotificationPage(items, str(rows[-1].seq if rows else position))
