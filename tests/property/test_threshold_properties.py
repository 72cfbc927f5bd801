"""Properties of t-of-n threshold evaluation: any t holders give the single-key
pseudonym, t-1 do not, and t-1 shares fit every possible key."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from vir.crypto import oprf, threshold
from vir.domain.errors import CryptoError

ORDER = oprf.GROUP_ORDER
scalars = st.integers(min_value=1, max_value=ORDER - 1).map(oprf.scalar_from_int)


@st.composite
def sizes(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=2, max_value=5))
    return draw(st.integers(min_value=2, max_value=n)), n


def _dealt(k: bytes, t: int, n: int, coefficients: list[bytes]) -> list[threshold.Share]:
    drawn = iter(coefficients)
    return threshold.split(k, t, n, rng=lambda: next(drawn, None) or oprf.random_scalar())


@settings(max_examples=60, deadline=None)
@given(
    k=scalars,
    size=sizes(),
    coefficients=st.lists(scalars, min_size=4, max_size=4),
    data=st.binary(max_size=32),
    r=scalars,
)
def test_any_t_holders_give_the_single_key_pseudonym_and_t_minus_1_do_not(
    k: bytes, size: tuple[int, int], coefficients: list[bytes], data: bytes, r: bytes
) -> None:
    t, n = size
    shares = _dealt(k, t, n, coefficients)
    blind, blinded = oprf.blind(data, lambda: r)
    expected = oprf.evaluate(k, blinded)
    pseudonym = oprf.unblind(blind, expected)
    evaluations = {s.index: oprf.evaluate(s.secret, blinded) for s in shares}
    for subset in itertools.combinations(sorted(evaluations), t):
        combined = threshold.combine([(i, evaluations[i]) for i in subset])
        assert combined == expected
        assert oprf.unblind(blind, combined) == pseudonym
    for subset in itertools.combinations(sorted(evaluations), t - 1):
        try:
            wrong = threshold.combine([(i, evaluations[i]) for i in subset])
        except CryptoError:
            continue  # they combine to the identity (shares can): no pseudonym either
        assert wrong != expected


@settings(max_examples=100, deadline=None)
@given(
    k=scalars,
    other=scalars,
    size=sizes(),
    coefficients=st.lists(scalars, min_size=4, max_size=4),
    order=st.permutations(range(5)),
)
def test_t_minus_1_shares_fit_any_other_key(
    k: bytes, other: bytes, size: tuple[int, int], coefficients: list[bytes], order: list[int]
) -> None:
    """The degree t-1 polynomial through (0, k') and any t-1 shares of k exists, and
    ``split`` dealing k' with its coefficients gives those same shares: seeing them,
    every k' is as likely as k."""
    t, n = size
    shares = _dealt(k, t, n, coefficients)
    seen = sorted((shares[i] for i in order if i < n), key=lambda s: s.index)[: t - 1]
    points = [(0, int.from_bytes(other, "little"))] + [
        (s.index, int.from_bytes(s.secret, "little")) for s in seen
    ]
    # The polynomial's coefficients a_0..a_(t-1), solved from f(x_i) = y_i directly.
    solved = _vandermonde_solve(points)
    assert len(solved) == t
    values = [sum(c * x**d for d, c in enumerate(solved)) % ORDER for x in range(n + 1)]
    assert values[0] == points[0][1]
    assert all(values[x] == y for x, y in points)
    if 0 in values[1:]:
        # This polynomial gives another holder a zero share, which split never deals
        # (it draws again): the one exception, for about n in 2^252 candidates k'.
        return
    drawn = iter(oprf.scalar_from_int(c) for c in solved[1:])
    dealt = threshold.split(other, t, n, rng=lambda: next(drawn))
    assert [dealt[s.index - 1] for s in seen] == seen
    assert threshold.reconstruct(dealt) == other


def _vandermonde_solve(points: list[tuple[int, int]]) -> list[int]:
    """Coefficients c with Σ_d c_d·x^d = y at every (x, y), modulo ORDER (Gauss-Jordan)."""
    size = len(points)
    rows = [[pow(x, d, ORDER) for d in range(size)] + [y] for x, y in points]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col])
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inverse = pow(rows[col][col], -1, ORDER)
        rows[col] = [v * inverse % ORDER for v in rows[col]]
        for r in range(size):
            if r != col and rows[r][col]:
                factor = rows[r][col]
                rows[r] = [
                    (a - factor * b) % ORDER for a, b in zip(rows[r], rows[col], strict=True)
                ]
    return [row[size] for row in rows]


@settings(max_examples=40, deadline=None)
@given(k=scalars, delta=scalars, size=sizes(), data=st.binary(max_size=32))
def test_rotating_every_share_rotates_the_combined_evaluation(
    k: bytes, delta: bytes, size: tuple[int, int], data: bytes
) -> None:
    t, n = size
    rotated = [threshold.scale(s, delta) for s in threshold.split(k, t, n)]
    _blind, blinded = oprf.blind(data)
    expected = oprf.scalar_mult(delta, oprf.evaluate(k, blinded))
    for subset in itertools.combinations(rotated, t):
        evaluations = [(s.index, oprf.evaluate(s.secret, blinded)) for s in subset]
        assert threshold.combine(evaluations) == expected


@given(t=st.integers(min_value=-3, max_value=300), n=st.integers(min_value=-3, max_value=300))
def test_parse_threshold_round_trips_exactly_the_allowed_sizes(t: int, n: int) -> None:
    allowed = 1 <= t <= n <= 255 and (t >= 2 or n == 1)
    try:
        parsed = threshold.parse_threshold(f"{t}-of-{n}")
    except ValueError:
        assert not allowed
    else:
        assert allowed and parsed == (t, n)
