"""Token-bucket rate limiting per key, with time passed in (no clock is read here)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One bucket per key: ``rate`` tokens per second refill up to ``burst``.

    ``take`` returns 0 when the cost was granted, otherwise the whole number of
    seconds after which the same request would be granted (for ``Retry-After``).
    """

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float, now: float) -> int:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self._burst, now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.updated = now
            if cost <= bucket.tokens:
                bucket.tokens -= cost
                return 0
            if cost > self._burst:
                # Can never be granted whole; tell the caller to wait for a full bucket.
                return max(1, math.ceil((self._burst - bucket.tokens) / self._rate))
            return max(1, math.ceil((cost - bucket.tokens) / self._rate))
