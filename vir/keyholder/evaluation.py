"""Evaluating blinded elements for an organisation: rate limit and quota, evaluate, audit.

The audit entry records the organisation and the number of elements, never an
element: the key holder learns neither inputs nor pseudonyms, and its log says only
how much each organisation asked (the privacy report's evaluation flag). An
organisation asks with its client certificate (``Caller``), or one of its people
signed in to the portal asks with their access token (``Person``, vir.keyholder.bearer):
the same buckets, the same counts, with the person's pseudonymous id as the actor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import oprf, ristretto
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.errors import InvalidElement
from vir.domain.ratelimit import LimitKind
from vir.keyholder.bearer import Person
from vir.keyholder.epochs import KeyStore
from vir.services.combining import Combiner
from vir.services.identity import Caller
from vir.store import audit_log
from vir.store.db import Database
from vir.store.ratelimits import RateLimits

# The most evaluations paid for in one transaction (``account_waiting``).
ACCOUNTED_MOST = 64


@dataclass(frozen=True)
class Evaluation:
    epoch: int
    elements: list[bytes]
    share_index: int | None  # this holder's share, in a threshold deployment
    threshold: int = 1  # how many holders' answers a client combines


@dataclass(frozen=True)
class Computed:
    """An evaluation done but not yet paid for nor logged (``EvaluationService.compute``)."""

    caller: Caller | Person
    at: dt.datetime
    epoch: int
    share_index: int | None
    elements: list[bytes]


class EvaluationService:
    def __init__(
        self, keys: KeyStore, db: Database, limits: RateLimits, clock: Clock, threshold: int = 1
    ) -> None:
        self._keys = keys
        self._threshold = threshold
        self._db = db
        self._limits = limits
        self._clock = clock
        # One organisation's evaluations a batch: on PostgreSQL a bucket another instance
        # emptied meanwhile refuses the whole batch at its commit, and only the
        # organisation whose bucket it is should be refused.
        self._accounting: Combiner[str, Computed, Evaluation] = Combiner(
            self._account_each, most=ACCOUNTED_MOST
        )

    def evaluate(self, caller: Caller | Person, blinded: Sequence[bytes]) -> Evaluation:
        """``k·B`` for each element, under the served epoch: ``compute``, then
        ``account``."""
        return self.account(self.compute(caller, blinded))

    def compute(self, caller: Caller | Person, blinded: Sequence[bytes]) -> Computed:
        """The multiplications, and nothing of the database: CPU work only.

        Every element's encoding is checked before any key operation, and an organisation
        this instance already saw without tokens is refused before any evaluation;
        InvalidElement names the first bad index (an element that is canonical but not
        a point is found by the multiplication, ``oprf.evaluate_batch``).
        """
        if isinstance(caller, Caller):
            policy.require_pseudonymiser(caller)
        for index, element in enumerate(blinded):
            if not ristretto.is_canonical_field_element(element):
                raise InvalidElement(f"blinded_elements[{index}]")
        now = self._clock()
        count = len(blinded)
        for kind in (LimitKind.OPRF, LimitKind.OPRF_HOURLY):
            self._limits.precheck(kind, caller.oin, count, now)
        key = self._keys.current()
        try:
            evaluated = oprf.evaluate_batch(key.secret, blinded)
        except oprf.ElementRejected as rejected:
            raise InvalidElement(f"blinded_elements[{rejected.index}]") from None
        return Computed(caller, now, key.epoch, key.share_index, evaluated)

    def account(self, computed: Computed) -> Evaluation:
        """Pay for ``computed`` and log it, then answer it.

        The organisation's buckets (per second and per hour, shared by every instance on
        this database) pay one token per element, in the transaction that writes the
        audit entry; when another instance emptied them meanwhile, RateLimited and
        nothing is answered. Refusals are audited by the error path.
        """
        with self._db.write() as session:
            return self._pay_and_log(session, computed)

    async def account_waiting(self, computed: Computed) -> Evaluation:
        """``account`` for a caller on an event loop: an organisation's evaluations that
        arrive while others of it are paid for are paid for next, together
        (``Combiner.submit``), each as a writer of its own in one transaction
        (``Database.write_each``): one trip to a worker thread and one commit for them
        all, none of them a thread's wait."""
        return await self._accounting.submit(computed.caller.oin, computed)

    def _account_each(self, _oin: str, batch: Sequence[Computed]) -> list[Evaluation | Exception]:
        return self._db.write_each(batch, self._pay_and_log)

    def _pay_and_log(self, session: Session, computed: Computed) -> Evaluation:
        caller, now, count = computed.caller, computed.at, len(computed.elements)
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
                objects={"elements": count, "epoch": computed.epoch},
            ),
        )
        return Evaluation(computed.epoch, computed.elements, computed.share_index, self._threshold)
