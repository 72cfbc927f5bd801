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

Repair (``repair_term``, ``split_additive``, ``add_scalars``; run by
``vir.keyholder.repair``) gives a lost holder j its share f(j) back from t helpers S:
f(j) = Σ_{i∈S} λ_i^S(j)·k_i (``lagrange_at``), each term split into random additive
parts so that no one but j ever holds more than their own share. ``public_share``
K_i = k_i·G lets j check the result (``check_repaired``) without learning k_i.

Key generation (``random_polynomial``, ``commitments``, ``check_dealt``, ``group_key``,
``dealt_public_share``; run by ``vir.keyholder.dkg``) makes the shares without a dealer
who knows k: every holder deals a random polynomial f_J with Feldman commitments, and
holder i keeps k_i = Σ_J f_J(i), a share of k = Σ_J f_J(0), which nobody computes.

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


def lagrange_at(indices: Sequence[int], x: int) -> dict[int, bytes]:
    """λ_i(x) = Π_{m≠i} (x - m) / (i - m) for each index, as canonical scalars.

    With these, Σ λ_i(x)·f(i) = f(x) for every polynomial f of degree < len(indices):
    x = 0 gives the key (``lagrange_at_zero``), x = j a lost holder's share (repair).
    A λ_i(x) is zero only when x is another of the indices.
    """
    checked = [_check_index(index) for index in indices]
    if not checked:
        raise ValueError("need at least one share index")
    if len(set(checked)) != len(checked):
        raise ValueError("share indices must be distinct")
    if type(x) is not int or not 0 <= x <= MAX_SHARES:
        raise ValueError(f"a point to interpolate at is an integer from 0 to {MAX_SHARES}")
    order = oprf.GROUP_ORDER
    coefficients = {}
    for i in checked:
        numerator, denominator = 1, 1
        for m in checked:
            if m != i:
                numerator = numerator * (x - m) % order
                denominator = denominator * (i - m) % order
        # Indices are distinct and below the (prime) order, so denominator is invertible.
        coefficients[i] = oprf.scalar_from_int(numerator * pow(denominator, -1, order))
    return coefficients


def lagrange_at_zero(indices: Sequence[int]) -> dict[int, bytes]:
    """λ_i = Π_{j≠i} x_j / (x_j - x_i) for each index, as canonical scalars.

    With these, Σ λ_i·f(x_i) = f(0) for every polynomial of degree < len(indices);
    every λ_i is non-zero.
    """
    return lagrange_at(indices, 0)


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


# Share repair (``vir.keyholder.repair``): t helpers S give a lost holder j its share
# f(j) = Σ_{i∈S} λ_i^S(j)·k_i without anyone seeing another's share. Helper i splits its
# term c_i = λ_i^S(j)·k_i into t uniformly random additive parts, one per helper; each
# helper adds the parts it got and only the new holder adds those sums. Any t-1 parts of
# one term are uniformly random and independent of c_i: only all t of them reveal it.


def repair_term(share: Share, helpers: Sequence[int], target: int) -> bytes:
    """c_i = λ_i^S(j)·k_i: helper ``share.index``'s term of f(``target``) over ``helpers``."""
    _check_repair(helpers, target)
    if share.index not in helpers:
        raise ValueError("the share's holder is not one of the helpers")
    coefficient = lagrange_at(helpers, target)[share.index]
    return oprf.scalar_from_int(_scalar(coefficient) * _scalar(share.secret))


def split_additive(
    value: bytes, parts: int, rng: Callable[[], bytes] = oprf.random_scalar
) -> list[bytes]:
    """``parts`` scalars that add up to ``value`` modulo the order: the first parts-1 from
    ``rng`` (uniform), the last what remains. Any parts-1 of them are uniformly random
    whatever ``value`` is."""
    if type(parts) is not int or not 1 <= parts <= MAX_SHARES:
        raise ValueError(f"the number of parts is from 1 to {MAX_SHARES}")
    total = _scalar(value)
    drawn = [_scalar(rng()) for _ in range(parts - 1)]
    last = (total - sum(drawn)) % oprf.GROUP_ORDER
    return [oprf.scalar_from_int(d) for d in drawn] + [oprf.scalar_from_int(last)]


def add_scalars(values: Sequence[bytes]) -> bytes:
    """Σ values modulo the order (the identity of addition, zero, for none)."""
    return oprf.scalar_from_int(sum(_scalar(v) for v in values))


def repair(shares: Sequence[Share], target: int) -> Share:
    """f(``target``) from t shares in one place: the reference the two-round repair is
    tested against (a real repair never gathers shares)."""
    helpers = [share.index for share in shares]
    _check_repair(helpers, target)
    return Share(target, add_scalars([repair_term(share, helpers, target) for share in shares]))


def public_share(secret: bytes) -> bytes:
    """K = k·G for a share k: public (pseudonyms are k·H(x), never k·G), and what a
    repaired share is checked against."""
    scalar = oprf.scalar_from_int(_nonzero_scalar(secret))
    return bytes(pysodium.crypto_scalarmult_ristretto255_base(scalar))


def expected_public_share(publics: Sequence[tuple[int, bytes]], target: int) -> bytes:
    """Σ λ_i^S(j)·K_i over the helpers' (index, K_i): f(j)·G when the K_i are honest."""
    helpers = [index for index, _public in publics]
    _check_repair(helpers, target)
    coefficients = lagrange_at(helpers, target)
    total = bytes(oprf.ELEMENT_BYTES)  # the identity
    for index, public in publics:
        term = oprf.scalar_mult(coefficients[index], public)
        total = bytes(pysodium.crypto_core_ristretto255_add(total, term))
    return total


def check_repaired(share: Share, publics: Sequence[tuple[int, bytes]]) -> bool:
    """Whether ``share`` is f(share.index) for the polynomial the helpers' K_i commit to."""
    return public_share(share.secret) == expected_public_share(publics, share.index)


def _check_repair(helpers: Sequence[int], target: int) -> None:
    for index in (*helpers, target):
        _check_index(index)
    if len(set(helpers)) != len(helpers):
        raise ValueError("the helpers must be distinct")
    if target in helpers:
        raise ValueError("the holder to repair cannot be one of the helpers")


# Distributed key generation (joint Feldman; run by ``vir.keyholder.dkg``): each holder I
# deals a random polynomial f_I of degree t-1, publishes C_{I,m} = a_{I,m}·G and gives
# holder J the value f_I(J). Holder J checks each against the commitments
# (``check_dealt``) and keeps k_J = Σ_I f_I(J): a share of k = Σ_I f_I(0), which nobody
# computes. K = Σ_I C_{I,0} = k·G and K_J = k_J·G are public (``group_key``,
# ``dealt_public_share``).


def random_polynomial(t: int, rng: Callable[[], bytes] = oprf.random_scalar) -> list[bytes]:
    """t coefficients a_0..a_{t-1} from ``rng``, none zero (a zero one is drawn again):
    every commitment a_m·G is then a valid element."""
    if type(t) is not int or not 1 <= t <= MAX_SHARES:
        raise ValueError(f"a threshold is from 1 to {MAX_SHARES}")
    coefficients = []
    for _ in range(t):
        for _ in range(_MAX_DRAWS):
            value = rng()
            if _scalar(value) != 0:
                coefficients.append(value)
                break
        else:
            raise CryptoError()
    return coefficients


def evaluate_polynomial(coefficients: Sequence[bytes], x: int) -> bytes:
    """f(x) for f = Σ a_m·x^m; x a share index."""
    _check_index(x)
    return oprf.scalar_from_int(_evaluate_polynomial([_scalar(a) for a in coefficients], x))


def commitments(coefficients: Sequence[bytes]) -> list[bytes]:
    """Feldman's commitments C_m = a_m·G: public, and what f(x) is checked against."""
    return [public_share(a) for a in coefficients]


def committed_value(commitments: Sequence[bytes], x: int) -> bytes:
    """Σ_m x^m·C_m: f(x)·G when the C_m commit to f. Every C_m must be a valid element."""
    if x != 0:
        _check_index(x)
    if not commitments:
        raise ValueError("need at least one commitment")
    total = bytes(oprf.ELEMENT_BYTES)  # the identity
    power = 1
    for commitment in commitments:
        if power == 1:
            if not oprf.is_valid_element(commitment):
                raise CryptoError()
            term = commitment
        else:
            term = oprf.scalar_mult(oprf.scalar_from_int(power), commitment)
        total = bytes(pysodium.crypto_core_ristretto255_add(total, term))
        power = power * x % oprf.GROUP_ORDER
        if power == 0:  # x = 0: only C_0 counts
            break
    return total


def check_dealt(value: bytes, commitments: Sequence[bytes], x: int) -> bool:
    """Whether ``value`` is f(x) for the polynomial the Feldman ``commitments`` commit to
    (False for a zero or non-canonical value, or a malformed commitment)."""
    try:
        return public_share(value) == committed_value(commitments, x)
    except CryptoError:
        return False


def add_elements(elements: Sequence[bytes]) -> bytes:
    """Σ elements (each valid); the identity for none."""
    total = bytes(oprf.ELEMENT_BYTES)
    for element in elements:
        if not oprf.is_valid_element(element):
            raise CryptoError()
        total = bytes(pysodium.crypto_core_ristretto255_add(total, element))
    return total


def group_key(dealt: Sequence[Sequence[bytes]]) -> bytes:
    """K = Σ_I C_{I,0} over every dealer's commitments: k·G."""
    return add_elements([committed_value(c, 0) for c in dealt])


def dealt_public_share(dealt: Sequence[Sequence[bytes]], index: int) -> bytes:
    """K_J = Σ_I Σ_m J^m·C_{I,m}: holder J's k_J·G."""
    return add_elements([committed_value(c, index) for c in dealt])
