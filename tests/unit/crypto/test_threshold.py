"""t-of-n threshold OPRF (vir.crypto.threshold): t holders give k·B, t-1 give nothing."""

from __future__ import annotations

import itertools
import secrets

import pysodium
import pytest

from vir.crypto import oprf, threshold
from vir.crypto.threshold import Share
from vir.domain.errors import CryptoError

ORDER = oprf.GROUP_ORDER
SIZES = [(t, n) for n in range(2, 6) for t in range(2, n + 1)]


def _int(scalar: bytes) -> int:
    return int.from_bytes(scalar, "little")


def _blinded() -> tuple[bytes, bytes, bytes]:
    """(input, blind, blinded element) for a random input."""
    data = secrets.token_bytes(16)
    r, blinded = oprf.blind(data)
    return data, r, blinded


def _evaluations(shares: list[Share], blinded: bytes) -> list[tuple[int, bytes]]:
    return [(share.index, oprf.evaluate(share.secret, blinded)) for share in shares]


# Polynomials over the scalars, as coefficient lists (lowest degree first), written
# independently of the module under test.
def _poly_mul(a: list[int], b: list[int]) -> list[int]:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] = (out[i + j] + x * y) % ORDER
    return out


def _interpolate(points: list[tuple[int, int]]) -> list[int]:
    """Coefficients of the unique polynomial of degree < len(points) through them."""
    result = [0] * len(points)
    for i, (xi, yi) in enumerate(points):
        basis, denominator = [1], 1
        for j, (xj, _yj) in enumerate(points):
            if j != i:
                basis = _poly_mul(basis, [-xj % ORDER, 1])
                denominator = denominator * (xi - xj) % ORDER
        factor = yi * pow(denominator, -1, ORDER) % ORDER
        for d, c in enumerate(basis):
            result[d] = (result[d] + c * factor) % ORDER
    return result


def _at(coefficients: list[int], x: int) -> int:
    return sum(c * pow(x, d, ORDER) for d, c in enumerate(coefficients)) % ORDER


@pytest.mark.parametrize(("t", "n"), SIZES)
def test_every_t_subset_combines_to_the_single_key_evaluation(t: int, n: int) -> None:
    k = oprf.random_scalar()
    shares = threshold.split(k, t, n)
    assert [s.index for s in shares] == list(range(1, n + 1))
    for _ in range(2):
        data, r, blinded = _blinded()
        expected = oprf.evaluate(k, blinded)
        pseudonym = oprf.unblind(r, expected)
        assert pseudonym == oprf.scalar_mult(k, oprf.hash_to_group(data))
        for subset in itertools.combinations(shares, t):
            combined = threshold.combine(_evaluations(list(subset), blinded))
            assert combined == expected
            assert oprf.unblind(r, combined) == pseudonym
        # More than t evaluations combine to the same element.
        assert threshold.combine(_evaluations(shares, blinded)) == expected


@pytest.mark.parametrize(("t", "n"), SIZES)
def test_every_t_subset_reconstructs_the_key(t: int, n: int) -> None:
    k = oprf.random_scalar()
    shares = threshold.split(k, t, n)
    for subset in itertools.combinations(shares, t):
        assert threshold.reconstruct(subset) == k


@pytest.mark.parametrize(("t", "n"), SIZES)
def test_t_minus_1_evaluations_do_not_combine_to_the_key_evaluation(t: int, n: int) -> None:
    k = oprf.random_scalar()
    shares = threshold.split(k, t, n)
    _data, _r, blinded = _blinded()
    expected = oprf.evaluate(k, blinded)
    for subset in itertools.combinations(shares, t - 1):
        assert threshold.combine(_evaluations(list(subset), blinded)) != expected
        assert threshold.reconstruct(subset) != k


@pytest.mark.parametrize(("t", "n"), SIZES)
def test_t_minus_1_shares_are_consistent_with_every_secret(t: int, n: int) -> None:
    """For any t-1 shares and any k', one degree t-1 polynomial has f(0) = k' and
    passes through those shares; ``split`` given its coefficients deals exactly them."""
    k = oprf.random_scalar()
    shares = threshold.split(k, t, n)
    candidates = [oprf.random_scalar() for _ in range(3)] + [k, oprf.scalar_from_int(1)]
    for subset in itertools.combinations(shares, t - 1):
        points = [(s.index, _int(s.secret)) for s in subset]
        for candidate in candidates:
            coefficients = _interpolate([(0, _int(candidate)), *points])
            assert len(coefficients) == t
            assert _at(coefficients, 0) == _int(candidate)
            assert all(_at(coefficients, x) == y for x, y in points)
            drawn = iter(oprf.scalar_from_int(c) for c in coefficients[1:])
            dealt = threshold.split(candidate, t, n, rng=drawn.__next__)
            assert [dealt[s.index - 1] for s in subset] == list(subset)
            assert threshold.reconstruct(dealt) == candidate


def test_split_uses_the_rng_as_the_polynomial_coefficients() -> None:
    # f(x) = 5 + 3x + 2x²: shares 10, 19, 32.
    coefficients = iter([oprf.scalar_from_int(3), oprf.scalar_from_int(2)])
    shares = threshold.split(oprf.scalar_from_int(5), 3, 3, rng=lambda: next(coefficients))
    assert [(s.index, _int(s.secret)) for s in shares] == [(1, 10), (2, 19), (3, 32)]


def test_split_draws_again_rather_than_deal_a_zero_share() -> None:
    # f(x) = 1 + (order-1)x has f(1) = 0; the second draw f(x) = 1 + x does not.
    draws = iter([oprf.scalar_from_int(ORDER - 1), oprf.scalar_from_int(1)])
    shares = threshold.split(oprf.scalar_from_int(1), 2, 3, rng=lambda: next(draws))
    assert [_int(s.secret) for s in shares] == [2, 3, 4]


def test_split_gives_up_on_an_rng_that_only_makes_zero_shares() -> None:
    with pytest.raises(CryptoError):
        threshold.split(oprf.scalar_from_int(1), 2, 3, rng=lambda: oprf.scalar_from_int(-1))


@pytest.mark.parametrize(
    "secret",
    [bytes(32), oprf.GROUP_ORDER.to_bytes(32, "little"), bytes(31), b"\xff" * 32],
    ids=["zero", "order", "short", "too-large"],
)
def test_split_refuses_a_bad_secret(secret: bytes) -> None:
    with pytest.raises(CryptoError):
        threshold.split(secret, 2, 3)


def test_split_refuses_a_non_canonical_coefficient() -> None:
    with pytest.raises(CryptoError):
        threshold.split(oprf.random_scalar(), 2, 3, rng=lambda: b"\xff" * 32)


@pytest.mark.parametrize(("t", "n"), [(0, 3), (4, 3), (2, 256), (-1, 2)])
def test_split_refuses_impossible_sizes(t: int, n: int) -> None:
    with pytest.raises(ValueError):
        threshold.split(oprf.random_scalar(), t, n)


def test_one_of_one_is_the_key_itself() -> None:
    k = oprf.random_scalar()
    (share,) = threshold.split(k, 1, 1)
    assert share.secret == k


def test_any_two_of_the_remaining_holders_combine_when_one_is_down() -> None:
    k = oprf.random_scalar()
    shares = threshold.split(k, 2, 3)
    _data, r, blinded = _blinded()
    expected = oprf.evaluate(k, blinded)
    for down in shares:
        remaining = [s for s in shares if s is not down]
        assert len(remaining) == 2
        for pair in itertools.combinations(remaining, 2):
            combined = threshold.combine(_evaluations(list(pair), blinded))
            assert combined == expected
            assert oprf.unblind(r, combined) == oprf.unblind(r, expected)


@pytest.mark.parametrize(("t", "n"), [(2, 3), (3, 5)])
def test_rotation_scales_the_combined_evaluation(t: int, n: int) -> None:
    k = oprf.random_scalar()
    delta = oprf.random_scalar()
    rotated = [threshold.scale(share, delta) for share in threshold.split(k, t, n)]
    new_key = oprf.scalar_from_int(_int(delta) * _int(k))
    assert threshold.reconstruct(rotated) == new_key
    _data, _r, blinded = _blinded()
    expected = oprf.evaluate(new_key, blinded)
    assert expected == oprf.scalar_mult(delta, oprf.evaluate(k, blinded))
    for subset in itertools.combinations(rotated, t):
        assert threshold.combine(_evaluations(list(subset), blinded)) == expected
    assert [s.index for s in rotated] == list(range(1, n + 1))


@pytest.mark.parametrize("delta", [bytes(32), b"\xff" * 32, bytes(31)])
def test_scale_refuses_a_zero_or_non_canonical_delta(delta: bytes) -> None:
    share = threshold.split(oprf.random_scalar(), 2, 3)[0]
    with pytest.raises(CryptoError):
        threshold.scale(share, delta)


def test_lagrange_coefficients_known_answer() -> None:
    # For x = 1, 2: λ1 = 2/(2-1) = 2, λ2 = 1/(1-2) = -1.
    assert threshold.lagrange_at_zero([1, 2]) == {
        1: oprf.scalar_from_int(2),
        2: oprf.scalar_from_int(-1),
    }
    # For x = 1, 2, 3: 3, -3, 1.
    assert threshold.lagrange_at_zero([3, 1, 2]) == {
        1: oprf.scalar_from_int(3),
        2: oprf.scalar_from_int(-3),
        3: oprf.scalar_from_int(1),
    }
    assert threshold.lagrange_at_zero([7]) == {7: oprf.scalar_from_int(1)}


@pytest.mark.parametrize(
    "indices",
    [[1, 1], [2, 3, 2], [0, 1], [1, 256], [-1, 2], [], [True, 2], [1.0, 2]],
    ids=["dup", "dup3", "zero", "256", "negative", "empty", "bool", "float"],
)
def test_lagrange_refuses_bad_indices(indices: list[int]) -> None:
    with pytest.raises(ValueError):
        threshold.lagrange_at_zero(indices)


def test_combine_refuses_bad_indices() -> None:
    _data, _r, blinded = _blinded()
    element = oprf.evaluate(oprf.random_scalar(), blinded)
    for evaluations in ([(1, element), (1, element)], [(0, element)], [(256, element)], []):
        with pytest.raises(ValueError):
            threshold.combine(evaluations)


_VALID = oprf.hash_to_group(b"threshold")


@pytest.mark.parametrize(
    "bad",
    [
        bytes(32),
        _VALID[:31] + bytes([_VALID[31] | 0x80]),
        _VALID[:31],
        b"\xff" * 32,
        (int.from_bytes(_VALID, "little") + 2**255 - 19).to_bytes(32, "little"),
    ],
    ids=["identity", "bit-255", "short", "not-a-field-element", "s+p"],
)
def test_combine_refuses_an_invalid_element(bad: bytes) -> None:
    with pytest.raises(CryptoError):
        threshold.combine([(1, _VALID), (2, bad)])
    with pytest.raises(CryptoError):
        threshold.combine([(1, bad), (2, _VALID)])


def test_combine_refuses_an_identity_result() -> None:
    # λ1 = 2, λ2 = -1: 2·P - 2P is the identity.
    doubled = bytes(pysodium.crypto_core_ristretto255_add(_VALID, _VALID))
    with pytest.raises(CryptoError):
        threshold.combine([(1, _VALID), (2, doubled)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2-of-3", (2, 3)), ("1-of-1", (1, 1)), ("3-of-3", (3, 3)), ("2-of-255", (2, 255))],
)
def test_parse_threshold_accepts(text: str, expected: tuple[int, int]) -> None:
    assert threshold.parse_threshold(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "3-of-2",
        "0-of-1",
        "2of3",
        "a-of-b",
        "1-of-3",
        "2-of-256",
        "0-of-0",
        "2-of-3 ",
        "2 of 3",
        "-2-of-3",
        "2-OF-3",
        "٢-of-٣",
        "",
    ],
)
def test_parse_threshold_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"t-of-n|threshold t|key holders n|1-of-n"):
        threshold.parse_threshold(text)


def test_share_repr_hides_the_secret() -> None:
    share = threshold.split(oprf.random_scalar(), 2, 3)[1]
    for text in (repr(share), str(share), f"{share!r}", repr([share])):
        assert share.secret.hex() not in text
        assert share.secret.hex().upper() not in text
        assert repr(share.secret) not in text
        assert str(_int(share.secret)) not in text
        assert "index=2" in text


@pytest.mark.parametrize(
    ("index", "secret", "error"),
    [
        (0, oprf.scalar_from_int(1), ValueError),
        (256, oprf.scalar_from_int(1), ValueError),
        (1, bytes(32), CryptoError),
        (1, b"\xff" * 32, CryptoError),
    ],
)
def test_share_refuses_a_bad_index_or_secret(
    index: int, secret: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        Share(index, secret)
