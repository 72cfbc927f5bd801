"""Evaluating blinded elements for an organisation: rate limit and quota, evaluate, audit.

The audit entry records the organisation and the number of elements, never an
element: the key holder learns neither inputs nor pseudonyms, and its log says only
how much each organisation asked (the privacy report's evaluation flag). An
organisation asks with its client certificate (``Caller``), or one of its people
signed in to the portal asks with their access token (``Person``, vir.keyholder.bearer):
the same buckets, the same counts, with the person's pseudonymous id as the actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import oprf
from vir.domain.clock import Clock
from vir.domain.errors import InvalidElement
from vir.domain.ratelimit import LimitKind
from vir.keyholder.bearer import Person
from vir.keyholder.epochs import KeyStore
from vir.services.identity import Caller
from vir.store import audit_log
from vir.store.db import Database
from vir.store.ratelimits import RateLimits


@dataclass(frozen=True)
class Evaluation:
    epoch: int
    elements: list[bytes]
    share_index: int | None  # this holder's share, in a threshold deployment
    threshold: int = 1  # how many holders' answers a client combines


class EvaluationService:
    def __init__(
        self, keys: KeyStore, db: Database, limits: RateLimits, clock: Clock, threshold: int = 1
    ) -> None:
        self._keys = keys
        self._threshold = threshold
        self._db = db
        self._limits = limits
        self._clock = clock

    def evaluate(self, caller: Caller | Person, blinded: Sequence[bytes]) -> Evaluation:
        """``k·B`` for each element, under the served epoch.

        The whole batch is validated before any key operation (InvalidElement names the
        first bad index). The organisation's buckets (per second and per hour, shared by
        every instance on this database) pay one token per element, in the transaction
        that writes the audit entry; an organisation this instance already saw without
        tokens is refused before any evaluation. Refusals are audited by the error path.
        """
        for index, element in enumerate(blinded):
            if not oprf.is_valid_element(element):
                raise InvalidElement(f"blinded_elements[{index}]")
        now = self._clock()
        count = len(blinded)
        for kind in (LimitKind.OPRF, LimitKind.OPRF_HOURLY):
            self._limits.precheck(kind, caller.oin, count, now)
        key = self._keys.current()
        evaluated = [oprf.evaluate(key.secret, element) for element in blinded]
        with self._db.write() as session:
            for kind in (LimitKind.OPRF, LimitKind.OPRF_HOURLY):
                self._limits.take(session, kind, caller.oin, count, now)
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.OPRF_EVALUATE,
                    Outcome.SUCCESS,
                    now,
                    organisation=caller.oin,
                    certificate=caller.certificate if isinstance(caller, Caller) else None,
                    actor=caller.actor if isinstance(caller, Person) else None,
                    objects={"elements": count, "epoch": key.epoch},
                ),
            )
        return Evaluation(key.epoch, evaluated, key.share_index, self._threshold)
