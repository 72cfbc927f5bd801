"""Evaluating blinded elements for an organisation: rate limit, evaluate, audit."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from vir.audit.chain import Outcome
from vir.crypto.evaluator import Evaluator
from vir.domain.clock import Clock
from vir.domain.errors import RateLimited
from vir.domain.ratelimit import TokenBuckets
from vir.services.identity import Caller
from vir.store import audit_log
from vir.store.db import Database

ACTION_EVALUATE = "oprf.evaluate"


class PseudonymisationService:
    def __init__(
        self,
        evaluator: Evaluator,
        db: Database,
        limiter: TokenBuckets,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._evaluator = evaluator
        self._db = db
        self._limiter = limiter
        self._clock = clock
        self._monotonic = monotonic

    @property
    def epoch(self) -> int:
        return self._evaluator.epoch

    def evaluate(self, caller: Caller, blinded: Sequence[bytes]) -> tuple[int, list[bytes]]:
        """Returns (epoch, evaluated elements); the audit entry records only the count.

        Refusals (rate limit, invalid element) are audited by the caller's error path.
        """
        wait = self._limiter.take(caller.oin, len(blinded), self._monotonic())
        if wait:
            raise RateLimited(wait)
        evaluated = self._evaluator.evaluate(blinded)
        with self._db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    ACTION_EVALUATE,
                    Outcome.SUCCESS,
                    self._clock(),
                    organisation=caller.oin,
                    certificate=caller.certificate,
                    objects={"elements": len(blinded), "epoch": self._evaluator.epoch},
                ),
            )
        return self._evaluator.epoch, evaluated
