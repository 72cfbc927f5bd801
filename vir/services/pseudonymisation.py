"""Evaluating blinded elements for an organisation: rate limit, evaluate, audit."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from vir.audit.chain import Outcome
from vir.crypto.evaluator import Evaluator
from vir.domain.clock import Clock
from vir.domain.errors import InvalidElement, RateLimited
from vir.domain.ratelimit import TokenBuckets
from vir.services.identity import Caller, reason_code
from vir.store import audit_log

ACTION_EVALUATE = "oprf.evaluate"


class PseudonymisationService:
    def __init__(
        self,
        evaluator: Evaluator,
        sessions: sessionmaker[Session],
        limiter: TokenBuckets,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._evaluator = evaluator
        self._sessions = sessions
        self._limiter = limiter
        self._clock = clock
        self._monotonic = monotonic

    def evaluate(self, caller: Caller, blinded: Sequence[bytes]) -> tuple[int, list[bytes]]:
        """Returns (epoch, evaluated elements); the audit entry records only the count."""
        wait = self._limiter.take(caller.oin, len(blinded), self._monotonic())
        if wait:
            self._record(caller, len(blinded), Outcome.REFUSED, reason_code(RateLimited(wait)))
            raise RateLimited(wait)
        try:
            evaluated = self._evaluator.evaluate(blinded)
        except InvalidElement as error:
            self._record(caller, len(blinded), Outcome.REFUSED, reason_code(error))
            raise
        self._record(caller, len(blinded), Outcome.SUCCESS, None)
        return self._evaluator.epoch, evaluated

    def _record(self, caller: Caller, count: int, outcome: str, reason: str | None) -> None:
        with self._sessions.begin() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    ACTION_EVALUATE,
                    outcome,
                    self._clock(),
                    organisation=caller.oin,
                    certificate=caller.certificate,
                    objects={"elements": count, "epoch": self._evaluator.epoch},
                    reason=reason,
                ),
            )
