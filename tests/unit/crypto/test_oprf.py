"""RFC 9497 known answers and element validation for vir.crypto.oprf."""

from __future__ import annotations

import json
from pathlib import Path

import pysodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vir.crypto import oprf, ristretto
from vir.domain.errors import CryptoError

# RFC 9497 Appendix A.1.1 test vector 1, copied into tests/vectors/ (its "source" field).
VECTORS = Path(__file__).resolve().parents[2] / "vectors"
SHARED = json.loads((VECTORS / "rfc9497-ristretto255-sha512-oprf.json").read_text())
# RFC 9497 Appendix A.1.1, test vector 2 (same key, another input and blind).
VECTOR_2 = {
    "Input": "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
    "Blind": "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
    "BlindedElement": "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
    "EvaluationElement": "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
    "Output": "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4f2a6413a6bf6fa5e"
    "19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
}


_VALID = oprf.hash_to_group(b"nl-bsn:123456782")
_WITH_BIT_255 = _VALID[:31] + bytes([_VALID[31] | 0x80])


def _key() -> bytes:
    sk, _pk = oprf.derive_key_pair(bytes.fromhex(SHARED["Seed"]), bytes.fromhex(SHARED["KeyInfo"]))
    return sk


def test_derive_key_pair_matches_rfc() -> None:
    assert _key().hex() == SHARED["skSm"]


@pytest.mark.parametrize("vector", [*SHARED["vectors"], VECTOR_2])
def test_blind_evaluate_finalize_match_rfc(vector: dict[str, str]) -> None:
    data = bytes.fromhex(vector["Input"])
    r, blinded = oprf.blind(data, lambda: bytes.fromhex(vector["Blind"]))
    assert blinded.hex() == vector["BlindedElement"]
    evaluated = oprf.evaluate(_key(), blinded)
    assert evaluated.hex() == vector["EvaluationElement"]
    assert oprf.finalize(data, r, evaluated).hex() == vector["Output"]


def test_pseudonym_is_key_times_hash_to_group() -> None:
    data = b"nl-bsn:123456782"
    r, blinded = oprf.blind(data)
    n = oprf.unblind(r, oprf.evaluate(_key(), blinded))
    assert n == oprf.scalar_mult(_key(), oprf.hash_to_group(data))


@settings(max_examples=50)
@given(inputs=st.lists(st.binary(min_size=1, max_size=20), max_size=9))
def test_a_batch_unblinds_as_each_alone(inputs: list[bytes]) -> None:
    """One inversion for the batch (Montgomery's trick) gives each pseudonym exactly."""
    blinded = [oprf.blind(x) for x in inputs]
    evaluated = [oprf.evaluate(_key(), element) for _r, element in blinded]
    alone = [oprf.unblind(r, e) for (r, _b), e in zip(blinded, evaluated, strict=True)]
    assert oprf.unblind_batch([r for r, _b in blinded], evaluated) == alone
    assert alone == [oprf.scalar_mult(_key(), oprf.hash_to_group(x)) for x in inputs]


def test_a_batch_refuses_what_unblind_refuses() -> None:
    r, blinded = oprf.blind(b"x")
    evaluated = oprf.evaluate(_key(), blinded)
    for scalars, elements in [
        ([r, bytes(32)], [evaluated, evaluated]),  # a zero blind has no inverse
        ([r, b"\xff" * 32], [evaluated, evaluated]),  # not a canonical scalar
        ([r, r], [evaluated, b"\xff" * 32]),  # not an element
        ([r, r], [evaluated, bytes(32)]),  # the identity
        ([r], [evaluated, evaluated]),  # not one blind per element
    ]:
        with pytest.raises(CryptoError):
            oprf.unblind_batch(scalars, elements)


@pytest.mark.parametrize(
    "bad",
    [
        bytes(32),  # identity
        b"\xff" * 32,
        (2**255 - 19).to_bytes(32, "little"),  # p itself: non-canonical 0
        b"\x01" + bytes(31),  # 1 is negative (odd): not a valid s
        bytes(31) + b"\x80",  # the identity with bit 255 set (libsodium 1.0.18 accepts it)
        _WITH_BIT_255,  # a valid element with bit 255 set (libsodium 1.0.18 accepts it)
        bytes(31),  # short
        bytes(33),  # long
    ],
)
def test_invalid_elements_are_rejected(bad: bytes) -> None:
    assert not oprf.is_valid_element(bad)
    with pytest.raises(CryptoError) as info:
        oprf.evaluate(_key(), bad)
    assert str(info.value) == "cryptographic operation failed"


_BAD = [
    bytes(32),
    b"\xff" * 32,
    (2**255 - 19).to_bytes(32, "little"),
    b"\x01" + bytes(31),
    bytes(31) + b"\x80",
    _WITH_BIT_255,
    bytes(31),
    bytes(33),
    *(bytes.fromhex(h) for group in ristretto.RFC_9496_BAD_ENCODINGS.values() for h in group),
]


@pytest.mark.parametrize("bad", _BAD)
@pytest.mark.parametrize("position", [0, 2, 4])
def test_a_batch_names_its_first_invalid_element(bad: bytes, position: int) -> None:
    good = [oprf.hash_to_group(f"nl-bsn:{n}".encode()) for n in range(5)]
    batch = [*good[:position], bad, *good[position:], bytes(32)]  # and a later bad one
    with pytest.raises(oprf.ElementRejected) as refused:
        oprf.evaluate_batch(_key(), batch)
    assert refused.value.index == position
    assert str(refused.value) == ""  # no element, no reason in its text


def test_a_batch_evaluates_as_one_element_at_a_time() -> None:
    elements = [oprf.blind(f"nl-bsn:{n}".encode())[1] for n in range(8)]
    assert oprf.evaluate_batch(_key(), elements) == [oprf.evaluate(_key(), e) for e in elements]


def _multiplies(raw: bytes) -> bool:
    """Whether ``scalar_mult`` (every multiplication but the key holder's batches:
    blind, unblind, combine, convert) takes ``raw``."""
    try:
        oprf.scalar_mult(_key(), raw)
    except CryptoError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(min_size=32, max_size=32))
def test_a_batch_refuses_exactly_what_is_valid_element_refuses(raw: bytes) -> None:
    try:
        oprf.evaluate_batch(_key(), [raw])
        accepted = True
    except oprf.ElementRejected:
        accepted = False
    assert accepted == oprf.is_valid_element(raw)
    # scalar_mult, too, leaves the curve check to the multiplication's own decoding.
    assert _multiplies(raw) == oprf.is_valid_element(raw)


@pytest.mark.parametrize("bad", _BAD)
def test_a_multiplication_refuses_every_invalid_encoding(bad: bytes) -> None:
    assert not _multiplies(bad)


@settings(max_examples=100, deadline=None)
@given(scalar=st.integers(min_value=1, max_value=oprf.GROUP_ORDER - 1))
def test_a_batch_accepts_every_point_and_refuses_its_other_encodings(scalar: int) -> None:
    point = bytes(pysodium.crypto_scalarmult_ristretto255_base(oprf.scalar_from_int(scalar)))
    s = int.from_bytes(point, "little")
    variants = [
        (s | 1 << 255).to_bytes(32, "little"),
        (s + ristretto.P).to_bytes(32, "little") if s + ristretto.P < 2**256 else bytes(32),
        (ristretto.P - s).to_bytes(32, "little"),
    ]
    assert len(oprf.evaluate_batch(_key(), [point])) == 1
    assert _multiplies(point)
    for variant in variants:
        with pytest.raises(oprf.ElementRejected):
            oprf.evaluate_batch(_key(), [variant])
        assert not _multiplies(variant)


def test_a_batch_refuses_a_key_that_is_no_scalar() -> None:
    with pytest.raises(CryptoError):
        oprf.evaluate_batch(oprf.GROUP_ORDER.to_bytes(32, "little"), [_VALID])
    with pytest.raises(CryptoError):
        oprf.evaluate_batch(bytes(32), [_VALID])


def test_element_check_does_not_rest_on_libsodiums(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a libsodium that accepts anything, non-canonical encodings are still refused."""
    monkeypatch.setattr(pysodium, "crypto_core_ristretto255_is_valid_point", lambda _e: True)
    assert oprf.is_valid_element(_VALID)
    for bad in (_WITH_BIT_255, bytes(31) + b"\x80", (2**255 - 19).to_bytes(32, "little")):
        assert not oprf.is_valid_element(bad)


def test_non_canonical_scalar_is_refused() -> None:
    with pytest.raises(CryptoError):
        oprf.scalar_mult(oprf.GROUP_ORDER.to_bytes(32, "little"), oprf.hash_to_group(b"x"))


def test_random_scalar_is_canonical_and_nonzero() -> None:
    for _ in range(50):
        s = oprf.random_scalar()
        assert oprf.is_canonical_scalar(s) and s != bytes(32)


def test_expand_message_xmd_rfc9380_vector() -> None:
    # RFC 9380 Appendix K.3, expand_message_xmd(SHA-512), msg "", len_in_bytes 0x20.
    dst = b"QUUX-V01-CS02-with-expander-SHA512-256"
    assert oprf.expand_message_xmd(b"", dst, 0x20).hex() == (
        "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"
    )
