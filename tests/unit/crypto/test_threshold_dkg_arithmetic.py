"""Joint-Feldman key generation's arithmetic (``vir.crypto.threshold``): n dealers'
polynomials add up to shares of Σ f_J(0), which every t of them give back; the Feldman
commitments accept exactly the dealt values; K and every K_J follow from the
commitments alone. No files, no database."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

from vir.crypto import oprf, threshold
from vir.domain.errors import CryptoError

pytestmark = pytest.mark.sqlite_only("key generation arithmetic in memory: no database")

SETUPS = [(2, 3), (3, 5)]


def _seeded(seed: int) -> Callable[[], bytes]:
    rng = random.Random(seed)
    return lambda: oprf.scalar_from_int(rng.randrange(oprf.GROUP_ORDER))


def _generate(t: int, n: int, rng: Callable[[], bytes]) -> tuple[list[list[bytes]], bytes]:
    """Every dealer's polynomial, and k = Σ f_J(0): what nobody computes outside a test."""
    polynomials = [threshold.random_polynomial(t, rng) for _ in range(n)]
    return polynomials, threshold.add_scalars([f[0] for f in polynomials])


@pytest.mark.parametrize(("t", "n"), SETUPS)
def test_every_t_holders_give_the_sum_of_the_dealers_constants(t: int, n: int) -> None:
    polynomials, key = _generate(t, n, _seeded(t * 100 + n))
    shares = [
        threshold.Share(
            j, threshold.add_scalars([threshold.evaluate_polynomial(f, j) for f in polynomials])
        )
        for j in range(1, n + 1)
    ]
    for subset in itertools.combinations(shares, t):
        assert threshold.reconstruct(subset) == key
    for subset in itertools.combinations(shares, t - 1):
        assert threshold.reconstruct(subset) != key
    point = oprf.hash_to_group(b"someone")
    for subset in itertools.combinations(shares, t):
        evaluations = [(s.index, oprf.evaluate(s.secret, point)) for s in subset]
        assert threshold.combine(evaluations) == oprf.evaluate(key, point)


@pytest.mark.parametrize(("t", "n"), SETUPS)
def test_the_public_record_follows_from_the_commitments(t: int, n: int) -> None:
    polynomials, key = _generate(t, n, _seeded(7))
    dealt = [threshold.commitments(f) for f in polynomials]
    assert threshold.group_key(dealt) == threshold.public_share(key)
    for j in range(1, n + 1):
        k_j = threshold.add_scalars([threshold.evaluate_polynomial(f, j) for f in polynomials])
        assert threshold.dealt_public_share(dealt, j) == threshold.public_share(k_j)


def test_the_commitments_accept_the_dealt_values_and_nothing_else() -> None:
    f = threshold.random_polynomial(3, _seeded(1))
    commitments = threshold.commitments(f)
    for x in range(1, 6):
        value = threshold.evaluate_polynomial(f, x)
        assert threshold.check_dealt(value, commitments, x)
        wrong = threshold.add_scalars([value, oprf.scalar_from_int(1)])
        assert not threshold.check_dealt(wrong, commitments, x)
        assert not threshold.check_dealt(value, commitments, x % 5 + 1)
    value = threshold.evaluate_polynomial(f, 1)
    other = threshold.commitments(threshold.random_polynomial(3, _seeded(2)))
    assert not threshold.check_dealt(value, other, 1)
    assert not threshold.check_dealt(value, commitments[:2], 1), "a coefficient left out"
    assert not threshold.check_dealt(bytes(32), commitments, 1)
    assert not threshold.check_dealt(b"\xff" * 32, commitments, 1)
    assert not threshold.check_dealt(value, [bytes(32), *commitments[1:]], 1)


def test_a_polynomial_has_no_zero_coefficient() -> None:
    draws = iter([bytes(32), oprf.scalar_from_int(5), oprf.scalar_from_int(6)])
    assert threshold.random_polynomial(2, lambda: next(draws)) == [
        oprf.scalar_from_int(5),
        oprf.scalar_from_int(6),
    ]
    with pytest.raises(CryptoError):
        threshold.random_polynomial(2, lambda: bytes(32))
    with pytest.raises(ValueError, match="threshold"):
        threshold.random_polynomial(0)
