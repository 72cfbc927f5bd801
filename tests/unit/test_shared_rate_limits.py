"""Rate-limit buckets in the database (vir/store/ratelimits.py): taken inside the action's
write transaction, shared by instances, given back when the action rolls back, and
never over-granted under concurrent writers in one write group. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from support.instore import T0, Store, fresh_store, template

from vir.domain.errors import RateLimited
from vir.domain.ratelimit import Limit, LimitKind
from vir.store.db import Database
from vir.store.ratelimits import RateLimits
from vir.store.tables import RateLimitRow

KIND = LimitKind.REGISTER
OIN = "00000009000000000100"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "limits.sqlite") as store:
        yield store


def _limits(burst: float = 5, rate: float = 1) -> RateLimits:
    return RateLimits({KIND: Limit(rate, burst)})


def _take(db: Database, limits: RateLimits, cost: float = 1, now: dt.datetime = T0) -> None:
    with db.write() as session:
        limits.take(session, KIND, OIN, cost, now)


def _tokens(db: Database) -> float:
    """The stored tokens; -1 when there is no bucket."""
    with db.read() as session:
        tokens = session.scalar(select(RateLimitRow.tokens))
    return -1.0 if tokens is None else float(tokens)


def test_two_instances_share_one_bucket(store: Store) -> None:
    url = store.db.engine.url.render_as_string(hide_password=False)
    other = Database.connect(url)
    try:
        first, second = _limits(), _limits()
        for n in range(5):
            _take(store.db if n % 2 else other, first if n % 2 else second)
        with pytest.raises(RateLimited) as refused:
            _take(store.db, first)
        assert refused.value.retry_after == 1
        with pytest.raises(RateLimited):
            _take(other, second)
        _take(other, second, now=T0 + dt.timedelta(seconds=1))  # refilled
    finally:
        other.dispose()


def test_an_action_that_rolls_back_gives_its_tokens_back(store: Store) -> None:
    limits = _limits(burst=3)
    with pytest.raises(RuntimeError), store.db.write() as session:
        limits.take(session, KIND, OIN, 3, T0)
        raise RuntimeError("the action failed after taking")
    _take(store.db, limits, cost=3)
    assert _tokens(store.db) == 0


def test_precheck_refuses_only_what_the_database_would(store: Store) -> None:
    limits = _limits(burst=2)
    limits.precheck(KIND, OIN, 1, T0)  # never seen: the database decides
    _take(store.db, limits, cost=2)
    limits.precheck(KIND, OIN, 1, T0)  # seen before this take: it might still pay
    with pytest.raises(RateLimited):
        _take(store.db, limits)
    with pytest.raises(RateLimited):
        limits.precheck(KIND, OIN, 1, T0)  # now surely not, and no database asked
    limits.precheck(KIND, OIN, 1, T0 + dt.timedelta(seconds=1))
    _limits(burst=2).precheck(KIND, OIN, 1, T0)  # another instance has not seen it


def test_concurrent_writers_are_granted_exactly_the_burst(store: Store) -> None:
    limits = _limits(burst=50, rate=1e-9)
    granted: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(10):
            try:
                _take(store.db, limits)
            except RateLimited:
                continue
            with lock:
                granted.append(1)

    threads = [threading.Thread(target=writer) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 50
    assert _tokens(store.db) == pytest.approx(0, abs=1e-6)


def test_a_kind_without_a_limit_is_not_limited_and_not_stored(store: Store) -> None:
    limits = RateLimits({})
    for _ in range(100):
        _take(store.db, limits)
    assert _tokens(store.db) == -1
