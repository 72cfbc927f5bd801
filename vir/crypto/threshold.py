"""t-of-n threshold evaluation of the OPRF key: Shamir shares of k over ristretto255.

The dealer picks a random polynomial f of degree t-1 over the scalars (integers
modulo ``GROUP_ORDER``) with f(0) = k and gives key holder i the share k_i = f(i),
i = 1..n (``split``). A client sends the same blinded element B to t holders;
holder i answers E_i = k_i·B (``oprf.evaluate`` with its share) and its index i.
Because f(0) = Σ λ_i·f(i) for the Lagrange coefficients at zero λ_i of those t
indices (``lagrange_at_zero``), the client's ``combine`` gives Σ λ_i·E_i = k·B:
exactly the single-key evaluation, so unblinding gives the same pseudonym.

Any t-1 shares are consistent with every possible k (for each candidate there is
exactly one polynomial of degree t-1 through it and those shares), so no t-1
holders together learn anything about k or can compute a pseudonym. ``combine``
also accepts more than t evaluations: any t or more points of f give f(0).

Rotation multiplies every share by the same δ (``scale``): the results are shares
of δ·k. ``reconstruct`` gives f(0) back from t shares, for the dealer and checks;
a running deployment never needs k in one place.

Not covered here: ``combine`` cannot tell a wrong answer from a holder (that would
need per-holder public keys and DLEQ proofs, RFC 9497's VOPRF mode). Who may hold
a share, and where, is documented with the deployment, not here.

Scalars are Python integers modulo ``GROUP_ORDER`` (exact); group operations are
libsodium's. Bad indices and thresholds raise ``ValueError`` (they are
configuration, not secrets); bad elements and scalars raise the opaque
``CryptoError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pysodium

from vir.crypto import oprf
from vir.domain.errors import CryptoError

MAX_SHARES = 255  # indices 1..255 fit one byte; index 0 would be f(0), the key itself
_THRESHOLD = re.compile(r"([0-9]{1,3})-of-([0-9]{1,3})")
# A uniform rng hits a zero share with probability about n/2^252; only a broken or
# deterministic rng gets here this often.
_MAX_DRAWS = 16


def _scalar(value: bytes) -> int:
    if not oprf.is_canonical_scalar(value):
        raise CryptoError()
    return int.from_bytes(value, "little")


def _nonzero_scalar(value: bytes) -> int:
    scalar = _scalar(value)
    if scalar == 0:
        raise CryptoError()
    return scalar


def _check_index(index: object) -> int:
    if type(index) is not int or not 1 <= index <= MAX_SHARES:
        raise ValueError(f"a share index is an integer from 1 to {MAX_SHARES}")
    return index


@dataclass(frozen=True, slots=True)
class Share:
    """Key holder ``index``'s share k_i = f(index): a canonical, non-zero scalar."""

    index: int
    secret: bytes

    def __post_init__(self) -> None:
        _check_index(self.index)
        _nonzero_scalar(self.secret)

    def __repr__(self) -> str:
        # The share is key material: never in a log line, traceback or test report.
        return f"Share(index={self.index}, secret=<hidden>)"


def parse_threshold(text: str) -> tuple[int, int]:
    """``"2-of-3"`` → ``(2, 3)``.

    Accepted: 1 ≤ t ≤ n ≤ 255, with t ≥ 2 whenever n ≥ 2. "1-of-n" for n ≥ 2 is
    refused because every share would then be k itself: n copies of the key, not a
    threshold. "1-of-1" is the single-key deployment (the one share is k).
    """
    match = _THRESHOLD.fullmatch(text)
    if match is None:
        raise ValueError(f"a threshold is written as t-of-n, such as 2-of-3, not {text!r}")
    t, n = int(match[1]), int(match[2])
    if not 1 <= n <= MAX_SHARES:
        raise ValueError(f"the number of key holders n must be from 1 to {MAX_SHARES}")
    if not 1 <= t <= n:
        raise ValueError("the threshold t must be from 1 to the number of key holders n")
    if t == 1 and n > 1:
        raise ValueError("1-of-n gives every key holder the whole key; use t >= 2 or 1-of-1")
    return t, n


def _evaluate_polynomial(coefficients: Sequence[int], x: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):
        result = (result * x + coefficient) % oprf.GROUP_ORDER
    return result


def split(
    secret: bytes, t: int, n: int, rng: Callable[[], bytes] = oprf.random_scalar
) -> list[Share]:
    """Shares at x = 1..n of a random degree t-1 polynomial with f(0) = ``secret``.

    ``rng`` gives the coefficients of x¹..x^(t-1), in that order. A polynomial with
    a zero share is drawn again (a zero share would make that holder's evaluation
    the identity, which ``oprf.evaluate`` refuses). That excludes about n in 2^252
    polynomials, so t-1 shares still leave every key as likely as any other, up to
    that negligible difference.
    """
    if not 1 <= t <= n <= MAX_SHARES:
        raise ValueError(f"need 1 <= t <= n <= {MAX_SHARES}")
    constant = _nonzero_scalar(secret)
    for _ in range(_MAX_DRAWS):
        coefficients = [constant] + [_scalar(rng()) for _ in range(t - 1)]
        values = [_evaluate_polynomial(coefficients, x) for x in range(1, n + 1)]
        if 0 not in values:
            return [
                Share(x, oprf.scalar_from_int(value)) for x, value in enumerate(values, start=1)
            ]
    raise CryptoError()


def lagrange_at_zero(indices: Sequence[int]) -> dict[int, bytes]:
    """λ_i = Π_{j≠i} x_j / (x_j - x_i) for each index, as canonical scalars.

    With these, Σ λ_i·f(x_i) = f(0) for every polynomial of degree < len(indices).
    """
    checked = [_check_index(index) for index in indices]
    if not checked:
        raise ValueError("need at least one share index")
    if len(set(checked)) != len(checked):
        raise ValueError("share indices must be distinct")
    order = oprf.GROUP_ORDER
    coefficients = {}
    for i in checked:
        numerator, denominator = 1, 1
        for j in checked:
            if j != i:
                numerator = numerator * j % order
                denominator = denominator * (j - i) % order
        # Indices are distinct and below the (prime) order, so denominator is invertible
        # and every λ_i is non-zero.
        coefficients[i] = oprf.scalar_from_int(numerator * pow(denominator, -1, order))
    return coefficients


def combine(evaluations: Sequence[tuple[int, bytes]]) -> bytes:
    """Σ λ_i·E_i over the given (index, k_i·B) pairs: k·B when there are at least t.

    Every E_i must be a valid element (``CryptoError`` otherwise); an identity
    result is refused too. Fewer than t evaluations give a wrong element, which
    nothing here can detect: the caller asks for at least t.
    """
    coefficients = lagrange_at_zero([index for index, _element in evaluations])
    total = bytes(oprf.ELEMENT_BYTES)  # the identity
    for index, element in evaluations:
        # scalar_mult refuses an E_i that fails oprf.is_valid_element.
        term = oprf.scalar_mult(coefficients[index], element)
        total = bytes(pysodium.crypto_core_ristretto255_add(total, term))
    if not oprf.is_valid_element(total):
        raise CryptoError()
    return total


def reconstruct(shares: Sequence[Share]) -> bytes:
    """f(0) from the shares: the key itself when there are at least t of them."""
    coefficients = lagrange_at_zero([share.index for share in shares])
    total = sum(
        int.from_bytes(coefficients[share.index], "little") * _scalar(share.secret)
        for share in shares
    )
    return oprf.scalar_from_int(total)


def scale(share: Share, delta: bytes) -> Share:
    """δ·k_i: applied to every share with the same non-zero δ, gives shares of δ·k."""
    return Share(share.index, oprf.scalar_from_int(_scalar(share.secret) * _nonzero_scalar(delta)))
