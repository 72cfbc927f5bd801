"""Properties of the OPRF: any blind gives the same pseudonym; inputs do not collide."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vir.crypto import oprf

KEY = oprf.random_scalar()
scalars = st.integers(min_value=1, max_value=oprf.GROUP_ORDER - 1).map(oprf.scalar_from_int)


def _pseudonym(data: bytes, blind: bytes) -> bytes:
    r, blinded = oprf.blind(data, lambda: blind)
    return oprf.unblind(r, oprf.evaluate(KEY, blinded))


@settings(max_examples=200)
@given(data=st.binary(max_size=64), r1=scalars, r2=scalars)
def test_unblinding_with_any_blind_gives_the_same_pseudonym(
    data: bytes, r1: bytes, r2: bytes
) -> None:
    assert _pseudonym(data, r1) == _pseudonym(data, r2)


@settings(max_examples=200)
@given(a=st.binary(max_size=64), b=st.binary(max_size=64), r=scalars)
def test_different_inputs_give_different_pseudonyms(a: bytes, b: bytes, r: bytes) -> None:
    if a != b:
        assert _pseudonym(a, r) != _pseudonym(b, r)


@settings(max_examples=100)
@given(data=st.binary(max_size=64), r=scalars)
def test_blinded_element_does_not_reveal_the_input_element(data: bytes, r: bytes) -> None:
    _r, blinded = oprf.blind(data, lambda: r)
    if r != oprf.scalar_from_int(1):
        assert blinded != oprf.hash_to_group(data)
    assert oprf.is_valid_element(blinded)
