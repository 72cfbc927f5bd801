"""The arithmetic of a rekey: stored pseudonyms times δ, in bulk, and products of δs.

``multiply`` runs in the rekey's worker processes (``vir.services.rekey``): each is
given δ once (``init_worker``) and then batches of stored values, packed as one
``bytes`` of 32-byte elements so that a batch crosses the process boundary as a
single object. It calls libsodium directly: stored values were validated when they
arrived, and a multiplication that fails (an encoding that is not canonical, not a
point, or a product that is the identity) is reported by position instead of raising,
so one bad row is counted rather than stopping the rekey.
"""

from __future__ import annotations

import pysodium

from vir.crypto import ristretto
from vir.crypto.oprf import ELEMENT_BYTES, SCALAR_BYTES, is_canonical_scalar
from vir.domain.errors import CryptoError

# δ of the worker process this module runs in (set by ``init_worker``).
_delta: bytes | None = None
_NONE = bytes(ELEMENT_BYTES)
# p = 2^255 - 19: an encoding whose last byte is below 0x7f is below p.
_TOP_BELOW_P = 0x7F


def init_worker(delta: bytes) -> None:
    """Give this worker process δ, once, before any ``multiply``."""
    global _delta
    if not is_canonical_scalar(delta):
        raise CryptoError()
    _delta = delta


def multiply(values: bytes) -> tuple[bytes, tuple[int, ...]]:
    """δ·v for every 32-byte element v packed in ``values``, with δ from ``init_worker``."""
    if _delta is None:
        raise CryptoError()
    return multiply_by(_delta, values)


def multiply_by(delta: bytes, values: bytes) -> tuple[bytes, tuple[int, ...]]:
    """(the products packed in order, positions of values that could not be converted);
    a failed position holds 32 zero bytes in the output. 32 zero bytes in (the
    identity's encoding, never a pseudonym) stand for "no value" and come out as such."""
    if len(values) % ELEMENT_BYTES:
        raise CryptoError()
    mult = pysodium.crypto_scalarmult_ristretto255
    canonical = ristretto.is_canonical_field_element
    size = ELEMENT_BYTES
    out = []
    failed = []
    for at in range(0, len(values), size):
        element = values[at : at + size]
        top = values[at + size - 1]
        if top == 0 and element == _NONE:
            out.append(_NONE)
            continue
        # libsodium 1.0.18 ignores bit 255: the encoding rule (s < p, s even) is checked
        # here first. With the top byte below 0x7f, s < p holds by that byte alone.
        if (top < _TOP_BELOW_P and not values[at] & 1) or canonical(element):
            try:
                out.append(mult(delta, element))
                continue
            except ValueError:  # not a point, or the product is the identity
                pass
        failed.append(at // size)
        out.append(_NONE)
    return b"".join(out), tuple(failed)


def scalar_product(a: bytes, b: bytes) -> bytes:
    """a·b modulo the group order: two rekeys in a row (k'' = δ₂·δ₁·k)."""
    if not (is_canonical_scalar(a) and is_canonical_scalar(b)):
        raise CryptoError()
    return bytes(pysodium.crypto_core_ristretto255_scalar_mul(a, b))


def scalar_inverse(scalar: bytes) -> bytes:
    """1/scalar modulo the group order (δ⁻¹ turns the next epoch's pseudonyms back)."""
    if not is_canonical_scalar(scalar) or scalar == bytes(SCALAR_BYTES):
        raise CryptoError()
    try:
        return bytes(pysodium.crypto_core_ristretto255_scalar_invert(scalar))
    except ValueError:
        raise CryptoError() from None
