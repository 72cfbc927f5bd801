from __future__ import annotations

import pytest

from vir.domain.ratelimit import TokenBuckets


def test_burst_then_refill() -> None:
    buckets = TokenBuckets(rate=10, burst=64)
    assert buckets.take("a", 64, now=0.0) == 0
    assert buckets.take("a", 10, now=0.0) == 1
    assert buckets.take("a", 10, now=1.0) == 0
    assert buckets.take("b", 64, now=1.0) == 0  # separate key, separate budget


def test_retry_after_is_enough_to_succeed() -> None:
    buckets = TokenBuckets(rate=2, burst=10)
    buckets.take("a", 10, now=0.0)
    wait = buckets.take("a", 7, now=0.0)
    assert wait == 4
    assert buckets.take("a", 7, now=float(wait)) == 0


def test_cost_above_burst_never_passes_but_gets_a_finite_wait() -> None:
    buckets = TokenBuckets(rate=1, burst=5)
    assert buckets.take("a", 6, now=0.0) >= 1


def test_parameters_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)
