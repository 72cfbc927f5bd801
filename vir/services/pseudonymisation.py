"""Evaluating blinded elements for an organisation: rate limit, evaluate, audit."""

from __future__ import annotations

from collections.abc import Sequence

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto.evaluator import Evaluator
from vir.domain.clock import Clock
from vir.domain.ratelimit import LimitKind
from vir.services.identity import Caller
from vir.store import audit_log
from vir.store.db import Database
from vir.store.ratelimits import RateLimits


class PseudonymisationService:
    def __init__(
        self, evaluator: Evaluator, db: Database, limits: RateLimits, clock: Clock
    ) -> None:
        self._evaluator = evaluator
        self._db = db
        self._limits = limits
        self._clock = clock

    @property
    def epoch(self) -> int:
        return self._evaluator.epoch

    def evaluate(self, caller: Caller, blinded: Sequence[bytes]) -> tuple[int, list[bytes]]:
        """Returns (epoch, evaluated elements); the audit entry records only the count.

        The organisation's OPRF bucket (shared by every instance) pays one token per
        element, in the transaction that writes the audit entry. The evaluation runs
        before it, outside the database's write lock; an organisation this instance
        already saw without tokens is refused before any evaluation. Refusals (rate
        limit, invalid element) are audited by the caller's error path.
        """
        now = self._clock()
        self._limits.precheck(LimitKind.OPRF, caller.oin, len(blinded), now)
        evaluated = self._evaluator.evaluate(blinded)
        with self._db.write() as session:
            self._limits.take(session, LimitKind.OPRF, caller.oin, len(blinded), now)
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.OPRF_EVALUATE,
                    Outcome.SUCCESS,
                    now,
                    organisation=caller.oin,
                    certificate=caller.certificate,
                    objects={"elements": len(blinded), "epoch": self._evaluator.epoch},
                ),
            )
        return self._evaluator.epoch, evaluated
