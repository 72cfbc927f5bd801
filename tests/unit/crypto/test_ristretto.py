"""vir.crypto.ristretto: RFC 9496's test vectors, and agreement with libsodium.

The vectors are RFC 9496 (The ristretto255 and decaf448 Groups, December 2023),
Appendix A.1 "Multiples of the Generator" and Appendix A.2 "Invalid Encodings",
copied as published (https://www.rfc-editor.org/rfc/rfc9496#appendix-A); the same
lists appear in curve25519-dalek's, libsodium's and noble-curves' test suites.
"""

from __future__ import annotations

import pysodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vir.crypto import oprf, ristretto

P = ristretto.P

MULTIPLES_OF_THE_GENERATOR = ristretto.RFC_9496_GENERATOR_MULTIPLES
INVALID_ENCODINGS = ristretto.RFC_9496_BAD_ENCODINGS
BAD = [(reason, h) for reason, hexes in INVALID_ENCODINGS.items() for h in hexes]

points = (
    st.integers(min_value=1, max_value=oprf.GROUP_ORDER - 1)
    .map(oprf.scalar_from_int)
    .map(lambda k: bytes(pysodium.crypto_scalarmult_ristretto255_base(k)))
)


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def variants(encoding: bytes) -> dict[str, bytes]:
    """Other 32-byte strings a lax decoder maps to the same element (or tries to)."""
    s = int.from_bytes(encoding, "little")
    found = {"bit 255 set": _le(s | 1 << 255), "s + p": _le(s + P)}
    if s:
        found["p - s"] = _le(P - s)  # -s: the same element under a decoder that takes |s|
        found["p - s, bit 255 set"] = _le((P - s) | 1 << 255)
    return found


def _on_the_curve(point: ristretto.Point) -> bool:
    """-x² + y² = 1 + d·x²·y² (edwards25519, Z = 1) and T = X·Y."""
    x2, y2 = point.x * point.x % P, point.y * point.y % P
    return (y2 - x2 - 1 - ristretto.D * x2 % P * y2) % P == 0 and point.t == point.x * point.y % P


@pytest.mark.parametrize("index", range(len(MULTIPLES_OF_THE_GENERATOR)))
def test_multiples_of_the_generator_decode(index: int) -> None:
    encoding = bytes.fromhex(MULTIPLES_OF_THE_GENERATOR[index])
    point = ristretto.decode(encoding)
    assert point is not None and _on_the_curve(point)
    if index:  # the vector is what libsodium computes: the copy above is faithful
        base = pysodium.crypto_scalarmult_ristretto255_base(oprf.scalar_from_int(index))
        assert bytes(base) == encoding


@pytest.mark.parametrize(("reason", "encoding"), BAD, ids=[f"{r}:{h[:8]}" for r, h in BAD])
def test_rfc_invalid_encodings_are_refused(reason: str, encoding: str) -> None:
    assert ristretto.decode(bytes.fromhex(encoding)) is None
    assert not oprf.is_valid_element(bytes.fromhex(encoding))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_lengths_are_refused(length: int) -> None:
    assert ristretto.decode(bytes(length)) is None


def test_the_identity_decodes_but_is_not_a_valid_element() -> None:
    assert ristretto.decode(bytes(32)) == ristretto.Point(0, 1, 1, 0)
    assert not oprf.is_valid_element(bytes(32))
    # The identity with bit 255 set: libsodium 1.0.18 took it for the identity.
    assert ristretto.decode(bytes(31) + b"\x80") is None


@settings(max_examples=150, deadline=None)
@given(point=points)
def test_libsodium_points_are_accepted_and_their_variants_refused(point: bytes) -> None:
    decoded = ristretto.decode(point)
    assert decoded is not None and _on_the_curve(decoded)
    assert oprf.is_valid_element(point)
    for name, variant in variants(point).items():
        assert ristretto.decode(variant) is None, name
        assert not oprf.is_valid_element(variant), name


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=32, max_size=32))
def test_agrees_with_libsodium_below_bit_255(raw: bytes) -> None:
    """Where libsodium is right (bit 255 clear) the two decide alike; above it, vir refuses."""
    low = raw[:31] + bytes([raw[31] & 0x7F])
    assert ristretto.is_canonical(low) == bool(
        pysodium.crypto_core_ristretto255_is_valid_point(low)
    )
    assert not ristretto.is_canonical(raw[:31] + bytes([raw[31] | 0x80]))


def test_random_bytes_that_are_elements_are_found_too() -> None:
    """The agreement test above would pass with a decoder refusing everything: this
    one needs accepted strings, from libsodium's hash-to-group (RFC 9496 §4.3.4)."""
    for i in range(64):
        element = bytes(pysodium.crypto_core_ristretto255_from_hash(bytes([i]) * 64))
        assert ristretto.is_canonical(element)


def test_the_fast_check_agrees_with_the_reference_decoder_on_the_start_up_set() -> None:
    oprf.require_strict_backend.cache_clear()
    oprf.require_strict_backend()  # raises ConfigurationError on a disagreeing libsodium


def test_a_lax_libsodium_is_caught_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A libsodium that accepted everything (or refused everything) stops the process."""
    from vir.domain.errors import ConfigurationError

    for answer in (1, 0):
        monkeypatch.setattr(
            pysodium, "crypto_core_ristretto255_is_valid_point", lambda _e, a=answer: a
        )
        oprf.require_strict_backend.cache_clear()
        with pytest.raises(ConfigurationError, match="libsodium"):
            oprf.require_strict_backend()
    oprf.require_strict_backend.cache_clear()


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=32, max_size=32))
def test_is_valid_element_is_the_reference_decoder_less_the_identity(raw: bytes) -> None:
    assert oprf.is_valid_element(raw) == (ristretto.decode(raw) is not None and raw != bytes(32))
