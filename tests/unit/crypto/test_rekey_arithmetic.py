"""The rekey's bulk multiplication (vir.crypto.rekey.multiply_by): δ·v for every valid
stored element, a position reported for every value that is not one, zeros for "no
value". Its encoding check reads a byte or two where it can: these are the encodings
at the edges of that shortcut."""

from __future__ import annotations

import pysodium
import pytest

from vir.crypto import oprf, rekey
from vir.domain.errors import CryptoError

P = 2**255 - 19


def _encoded(s: int) -> bytes:
    return s.to_bytes(32, "little")


def _valid_with_top_byte(top: int) -> bytes:
    """A valid element whose last byte is ``top`` (searched among random ones)."""
    for _ in range(100_000):
        element = bytes(pysodium.crypto_core_ristretto255_random())
        if element[31] == top:
            return element
    raise AssertionError(f"no element with last byte {top:#x} found")


def _with_bit_255(element: bytes) -> bytes:
    return element[:31] + bytes([element[31] | 0x80])


NOT_ELEMENTS = {
    "bit 255 set on the identity": bytes(31) + b"\x80",
    # libsodium 1.0.18 ignores bit 255 and would multiply this one: vir's check refuses it.
    "bit 255 set on a valid element": _with_bit_255(oprf.hash_to_group(b"c")),
    "p itself": _encoded(P),
    "p + 2 (even, >= p)": _encoded(P + 2),
    "2^255 - 2 (even, top byte 0x7f)": _encoded(2**255 - 2),
    "odd, top byte below 0x7f": _encoded(3),
    "odd, top byte 0x7f": _encoded(P - 2),
    "canonical but not a point": _encoded(2),
}


@pytest.mark.parametrize("name", sorted(NOT_ELEMENTS))
def test_a_value_that_is_not_an_element_is_reported_by_position(name: str) -> None:
    delta = oprf.random_scalar()
    good = [oprf.hash_to_group(b"a"), oprf.hash_to_group(b"b")]
    products, failed = rekey.multiply_by(delta, good[0] + NOT_ELEMENTS[name] + good[1])
    assert failed == (1,)
    assert products == (
        oprf.scalar_mult(delta, good[0]) + bytes(32) + oprf.scalar_mult(delta, good[1])
    )


def test_valid_elements_with_every_kind_of_top_byte_are_multiplied() -> None:
    """Below 0x7f the shortcut decides; at 0x7f the full check does (a valid element
    with that last byte is below p all the same)."""
    delta = oprf.random_scalar()
    elements = [_valid_with_top_byte(top) for top in (0x00, 0x01, 0x7E, 0x7F)]
    products, failed = rekey.multiply_by(delta, b"".join(elements))
    assert failed == ()
    assert products == b"".join(oprf.scalar_mult(delta, e) for e in elements)


def test_zeros_stand_for_no_value_and_come_out_as_zeros() -> None:
    delta = oprf.random_scalar()
    element = oprf.hash_to_group(b"a")
    products, failed = rekey.multiply_by(delta, bytes(32) + element)
    assert failed == ()
    assert products == bytes(32) + oprf.scalar_mult(delta, element)


def test_a_length_that_is_not_whole_elements_is_refused() -> None:
    with pytest.raises(CryptoError):
        rekey.multiply_by(oprf.random_scalar(), bytes(33))
