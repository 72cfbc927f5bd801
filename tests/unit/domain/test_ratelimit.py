from __future__ import annotations

import pytest

from vir.domain.ratelimit import Bucket, Limit, refill, take


def test_burst_then_refill() -> None:
    limit = Limit(rate=10, burst=64)
    bucket, wait = take(None, limit, 64, now=0.0)  # a new bucket is full
    assert wait == 0 and bucket.tokens == 0
    refused, wait = take(bucket, limit, 10, now=0.0)
    assert wait == 1 and refused == bucket  # nothing taken
    bucket, wait = take(bucket, limit, 10, now=1.0)
    assert wait == 0 and bucket.tokens == 0


def test_retry_after_is_enough_to_succeed() -> None:
    limit = Limit(rate=2, burst=10)
    bucket, _ = take(None, limit, 10, now=0.0)
    _, wait = take(bucket, limit, 7, now=0.0)
    assert wait == 4
    assert take(bucket, limit, 7, now=3.0)[1] == 1
    assert take(bucket, limit, 7, now=float(wait))[1] == 0


def test_refill_stops_at_the_burst_and_a_clock_going_back_adds_nothing() -> None:
    limit = Limit(rate=1, burst=5)
    assert refill(Bucket(0, 100.0), limit, 1000.0) == Bucket(5, 1000.0)
    assert refill(Bucket(2, 100.0), limit, 50.0) == Bucket(2, 100.0)


def test_cost_above_burst_never_passes_but_gets_a_finite_wait() -> None:
    limit = Limit(rate=1, burst=5)
    _, wait = take(None, limit, 6, now=0.0)
    assert wait >= 1
    _, wait = take(Bucket(0, 0.0), limit, 6, now=0.0)
    assert wait == 5  # the time to a full bucket


def test_per_hour() -> None:
    limit = Limit.per_hour(60, 2)
    bucket, _ = take(None, limit, 2, now=0.0)
    assert take(bucket, limit, 1, now=0.0)[1] == 60
    assert take(bucket, limit, 1, now=60.0)[1] == 0


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 5)])
def test_parameters_must_be_positive(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        Limit(rate=rate, burst=burst)
