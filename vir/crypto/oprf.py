"""RFC 9497 OPRF, mode 0x00 (base), suite ristretto255-SHA512, on libsodium.

Client side: ``blind`` → (server) ``evaluate`` → ``unblind`` gives the pseudonym
``N = k·HashToGroup(x)``; ``finalize`` is the RFC's output hash, used for the
known-answer test. Every element that arrives from outside is checked with
``is_valid_element`` (vir's own strict RFC 9496 decoder, then not the identity)
before libsodium sees it. All failures raise the opaque ``CryptoError`` (or
``InvalidElement`` for input validation at the edge), never libsodium's own message.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable, Sequence

import pysodium

from vir.crypto import ristretto
from vir.domain.errors import ConfigurationError, CryptoError

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
MODE_OPRF = 0x00
CONTEXT_STRING = b"OPRFV1-" + bytes([MODE_OPRF]) + b"-ristretto255-SHA512"
# The prime order of the ristretto255 group (RFC 9496 §4).
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
_IDENTITY = bytes(ELEMENT_BYTES)

RandomScalar = Callable[[], bytes]


class ElementRejected(Exception):
    """A batch's element at ``index`` is not a valid element (``evaluate_batch``); the
    caller turns it into its own error (the key holder: InvalidElement, 422)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 with SHA-512 (b_in_bytes = 64, s_in_bytes = 128)."""
    b_in_bytes, s_in_bytes = 64, 128
    ell = -(-length // b_in_bytes)
    if ell > 255 or length > 65535 or len(dst) > 255:
        raise CryptoError()
    dst_prime = dst + _i2osp(len(dst), 1)
    msg_prime = bytes(s_in_bytes) + msg + _i2osp(length, 2) + _i2osp(0, 1) + dst_prime
    b0 = hashlib.sha512(msg_prime).digest()
    blocks = [hashlib.sha512(b0 + _i2osp(1, 1) + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1], strict=True))
        blocks.append(hashlib.sha512(mixed + _i2osp(i, 1) + dst_prime).digest())
    return b"".join(blocks)[:length]


def hash_to_group(data: bytes) -> bytes:
    """HashToGroup of RFC 9497 §4.1: RFC 9380 hash_to_ristretto255 with the OPRF DST."""
    uniform = expand_message_xmd(data, b"HashToGroup-" + CONTEXT_STRING, 64)
    return bytes(pysodium.crypto_core_ristretto255_from_hash(uniform))


def hash_to_scalar(data: bytes, dst: bytes | None = None) -> bytes:
    """HashToScalar of RFC 9497 §4.1: 64 uniform bytes reduced modulo the group order."""
    uniform = expand_message_xmd(data, dst or b"HashToScalar-" + CONTEXT_STRING, 64)
    return bytes(pysodium.crypto_core_ristretto255_scalar_reduce(uniform))


def scalar_from_int(value: int) -> bytes:
    return (value % GROUP_ORDER).to_bytes(SCALAR_BYTES, "little")


def is_canonical_scalar(scalar: bytes) -> bool:
    return len(scalar) == SCALAR_BYTES and int.from_bytes(scalar, "little") < GROUP_ORDER


def random_scalar() -> bytes:
    """A uniformly random non-zero scalar."""
    while True:
        scalar = scalar_from_int(secrets.randbelow(GROUP_ORDER))
        if scalar != bytes(SCALAR_BYTES):
            return scalar


def is_valid_element(encoded: bytes) -> bool:
    """True for the canonical ristretto255 encoding of an element other than the identity.

    The one check for every element and pseudonym that enters vir. The encoding rule
    (s < p, bit 255 included, and s not negative) is vir's own: libsodium 1.0.18
    accepts bit 255 set, which would give every person a second pseudonym that
    compares unequal as bytes. The curve check is libsodium's, whose agreement with
    vir's reference decoder is checked at start-up (``require_strict_backend``).
    """
    # An accepted encoding is the only one of its element, so comparing bytes with the
    # identity's encoding compares elements.
    return (
        ristretto.is_canonical_field_element(encoded)
        and encoded != _IDENTITY
        and bool(pysodium.crypto_core_ristretto255_is_valid_point(encoded))
    )


@functools.cache
def require_strict_backend() -> None:
    """Refuse to run where ``is_valid_element`` and the reference decoder disagree.

    Run once per process by everything that takes elements from outside (the service,
    the client, ``vir db check``): RFC 9496's bad encodings, and bit-255, s + p and
    p - s variants of points made here, must be refused, and the points accepted.
    """
    bad = [bytes.fromhex(h) for group in ristretto.RFC_9496_BAD_ENCODINGS.values() for h in group]
    good = [
        bytes(pysodium.crypto_scalarmult_ristretto255_base(scalar_from_int(k)))
        for k in (1, 2, 7, 2**200 + 3)
    ]
    for element in good:
        s = int.from_bytes(element, "little")
        bad += [
            (s | 1 << 255).to_bytes(32, "little"),
            (s + ristretto.P).to_bytes(32, "little"),
            (ristretto.P - s).to_bytes(32, "little"),
        ]
    bad.append(bytes(31) + b"\x80")  # the identity with bit 255 set
    for element in good + bad:
        reference = ristretto.decode(element) is not None
        if is_valid_element(element) != reference or reference != (element in good):
            raise ConfigurationError(
                "this libsodium decodes ristretto255 differently from RFC 9496; "
                "install libsodium 1.0.18 or newer (scripts/ensure-libsodium.sh)"
            )


def scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """``scalar·element``; refuses what ``is_valid_element`` refuses, and an identity
    result.

    One libsodium call, as in ``evaluate_batch``: the encoding rule and the identity are
    checked here, and the curve check is the multiplication's own decoding of the
    element (the one ``crypto_core_ristretto255_is_valid_point`` makes), which fails
    on what is not a point, as it fails on an identity result.
    """
    if (
        not ristretto.is_canonical_field_element(element)
        or element == _IDENTITY
        or not is_canonical_scalar(scalar)
    ):
        raise CryptoError()
    try:
        return bytes(pysodium.crypto_scalarmult_ristretto255(scalar, element))
    except ValueError:
        raise CryptoError() from None


def scalar_product(a: bytes, b: bytes) -> bytes:
    """``a·b`` modulo the group order (a key times a rekey factor δ)."""
    if not (is_canonical_scalar(a) and is_canonical_scalar(b)):
        raise CryptoError()
    return bytes(pysodium.crypto_core_ristretto255_scalar_mul(a, b))


def scalar_invert(scalar: bytes) -> bytes:
    try:
        return bytes(pysodium.crypto_core_ristretto255_scalar_invert(scalar))
    except ValueError:
        raise CryptoError() from None


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    """DeriveKeyPair of RFC 9497 §3.2.1: (skS, pkS) from a 32-byte seed and public info."""
    if len(seed) != 32 or len(info) > 65535:
        raise CryptoError()
    derive_input = seed + _i2osp(len(info), 2) + info
    dst = b"DeriveKeyPair" + CONTEXT_STRING
    for counter in range(256):
        sk = hash_to_scalar(derive_input + _i2osp(counter, 1), dst)
        if sk != bytes(SCALAR_BYTES):
            return sk, bytes(pysodium.crypto_scalarmult_ristretto255_base(sk))
    raise CryptoError()


def blind(data: bytes, rng: RandomScalar = random_scalar) -> tuple[bytes, bytes]:
    """Blind of RFC 9497 §3.3.1: returns (blind, blindedElement)."""
    r = rng()
    if not is_canonical_scalar(r) or r == bytes(SCALAR_BYTES):
        raise CryptoError()
    input_element = hash_to_group(data)
    if input_element == _IDENTITY:
        raise CryptoError()
    return r, scalar_mult(r, input_element)


def evaluate(secret_key: bytes, blinded_element: bytes) -> bytes:
    """BlindEvaluate of RFC 9497 §3.3.1: ``k·blindedElement``."""
    return scalar_mult(secret_key, blinded_element)


def evaluate_batch(secret_key: bytes, blinded: Sequence[bytes]) -> list[bytes]:
    """``evaluate`` of every element, or ``ElementRejected`` naming the first that
    ``is_valid_element`` refuses.

    One libsodium call per element instead of two: the encoding rule and the identity
    are checked here, and the curve check is the one inside libsodium's multiplication,
    which decodes the element exactly as ``crypto_core_ristretto255_is_valid_point``
    does (ristretto255_frombytes) and fails on what is not a point. A product of a
    valid element is never the identity (prime order, k ≠ 0), so a failed
    multiplication is an invalid element. Nothing of a batch with a bad element is
    answered.
    """
    if not is_canonical_scalar(secret_key) or secret_key == bytes(SCALAR_BYTES):
        raise CryptoError()
    canonical = ristretto.is_canonical_field_element
    mult = pysodium.crypto_scalarmult_ristretto255
    evaluated = []
    for index, element in enumerate(blinded):
        if not canonical(element) or element == _IDENTITY:
            raise ElementRejected(index)
        try:
            evaluated.append(bytes(mult(secret_key, element)))
        except ValueError:
            raise ElementRejected(index) from None
    return evaluated


def unblind(blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """The pseudonym ``N = blind⁻¹·evaluatedElement = k·HashToGroup(x)`` (API-CONTRACT.md)."""
    return scalar_mult(scalar_invert(blind_scalar), evaluated_element)


def unblind_batch(blind_scalars: Sequence[bytes], evaluated: Sequence[bytes]) -> list[bytes]:
    """``unblind`` of each pair, with one scalar inversion for them all (Montgomery's
    trick: the inverse of the product, then each inverse from it by multiplications,
    which cost a hundredth of an inversion)."""
    if len(blind_scalars) != len(evaluated):
        raise CryptoError()
    return [
        scalar_mult(inverse, element)
        for inverse, element in zip(invert_all(blind_scalars), evaluated, strict=True)
    ]


def invert_all(scalars: Sequence[bytes]) -> list[bytes]:
    """The inverse of each non-zero canonical scalar, with one inversion."""
    if not all(is_canonical_scalar(s) and s != bytes(SCALAR_BYTES) for s in scalars):
        raise CryptoError()
    if not scalars:
        return []
    mul = pysodium.crypto_core_ristretto255_scalar_mul
    products = []  # products[i] = scalars[0]·…·scalars[i]
    product = scalar_from_int(1)
    for scalar in scalars:
        product = bytes(mul(product, scalar))
        products.append(product)
    inverse = scalar_invert(product)  # of all of them
    inverses = [b""] * len(scalars)
    for i in range(len(scalars) - 1, 0, -1):
        inverses[i] = bytes(mul(inverse, products[i - 1]))
        inverse = bytes(mul(inverse, scalars[i]))  # of the first i
    inverses[0] = inverse
    return inverses


def finalize(data: bytes, blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """Finalize of RFC 9497 §3.3.1: the 64-byte PRF output."""
    unblinded = unblind(blind_scalar, evaluated_element)
    return hashlib.sha512(
        _i2osp(len(data), 2) + data + _i2osp(len(unblinded), 2) + unblinded + b"Finalize"
    ).digest()
