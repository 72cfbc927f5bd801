"""Token buckets as pure arithmetic: a bucket's state in, its new state out, time passed in.

Nothing here reads a clock or keeps state between calls. Where a bucket lives is the
caller's business: ``vir.store.ratelimits`` keeps one per (kind, organisation) in the
database, shared by every app instance on it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class LimitKind(enum.StrEnum):
    """What a bucket limits, per organisation; the cost of one action is given with it."""

    OPRF = "oprf"  # blinded elements evaluated (at the key holder), per second
    OPRF_HOURLY = "oprf_hourly"  # the same, the hourly quota
    REGISTER = "register"  # signals registered
    WITHDRAW = "withdraw"  # signals withdrawn
    PRIVACY_LOOKUP = "privacy_lookup"  # a privacy officer's access requests and erasures
    CONSULTATION = "consultation"  # Veilig Thuis consultations


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` tokens per second refill a bucket of at most ``burst`` tokens."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst > 0):
            raise ValueError("rate and burst must be positive")

    @classmethod
    def per_hour(cls, count: float, burst: float) -> Limit:
        return cls(count / 3600.0, burst)


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated: float  # seconds on the caller's time scale (the same for every call)


def refill(bucket: Bucket | None, limit: Limit, now: float) -> Bucket:
    """The bucket as of ``now``: refilled for the time since it was last updated, up to
    the burst. A new bucket is full; a clock that went back refills nothing."""
    if bucket is None:
        return Bucket(limit.burst, now)
    elapsed = max(0.0, now - bucket.updated)
    return Bucket(min(limit.burst, bucket.tokens + elapsed * limit.rate), max(now, bucket.updated))


def take(bucket: Bucket | None, limit: Limit, cost: float, now: float) -> tuple[Bucket, int]:
    """Try to take ``cost`` tokens at ``now``.

    Returns the bucket after the attempt and 0 when granted; when refused, the bucket
    refilled to ``now`` (nothing taken) and the whole number of seconds (at least 1)
    after which the same request would be granted, for ``Retry-After``. A cost above
    the burst can never be granted; the wait is then the time to a full bucket.
    """
    current = refill(bucket, limit, now)
    if cost <= current.tokens:
        return Bucket(current.tokens - cost, current.updated), 0
    missing = min(cost, limit.burst) - current.tokens
    return current, max(1, math.ceil(missing / limit.rate))
