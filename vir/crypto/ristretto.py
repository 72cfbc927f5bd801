"""Strict ristretto255 decoding (RFC 9496 §4.3.1) in plain integer arithmetic mod 2^255-19.

vir decides for itself which 32-byte strings are group elements, whatever libsodium
version is installed: libsodium 1.0.18's ``crypto_core_ristretto255_is_valid_point``
ignores bit 255, so ``s | 2^255`` passes as a second encoding of the element ``s``.
Pseudonyms are compared as bytes (unique indexes, match keys, erasure by person), so
an element with two accepted encodings is two people to vir.

Two levels. ``is_canonical_field_element`` is the encoding rule (s < p, which covers
bit 255, and s not negative): cheap, and the part libsodium versions disagree on;
``vir.crypto.oprf.is_valid_element`` applies it, then lets libsodium check the curve
equation. ``decode`` is the whole of §4.3.1 in Python, the reference: 100-300 µs an
element here (one field exponentiation), too slow for every request, used by ``vir db
check``, by the tests, and at start-up (``oprf.require_strict_backend``), where it and
libsodium must agree on RFC 9496's own bad encodings (``RFC_9496_BAD_ENCODINGS``).

Not constant-time: the only secret here is the element itself, which the caller
already holds, and the answer is a yes/no that the caller gets anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

ENCODING_BYTES = 32
# The field prime and the constants of RFC 9496 §4.1.
P = 2**255 - 19
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_SQRT_EXPONENT = (P - 5) // 8


@dataclass(frozen=True, slots=True)
class Point:
    """Extended Edwards coordinates (X : Y : Z : T) of a decoded element; Z = 1."""

    x: int
    y: int
    z: int
    t: int


def is_negative(value: int) -> bool:
    """IS_NEGATIVE of RFC 9496 §4.1: the least significant bit of the reduced value."""
    return (value % P) & 1 == 1


def _abs(value: int) -> int:
    """CT_ABS: the non-negative one of ``value`` and ``-value``."""
    value %= P
    return P - value if value & 1 else value


def sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    """SQRT_RATIO_M1 of RFC 9496 §4.2: (was_square, the non-negative sqrt of u/v or i·u/v)."""
    v3 = v * v % P * v % P
    v7 = v3 * v3 % P * v % P
    r = u * v3 % P * pow(u * v7 % P, _SQRT_EXPONENT, P) % P
    check = v * r % P * r % P
    correct_sign = check == u % P
    flipped_sign = check == -u % P
    flipped_sign_i = check == -u * SQRT_M1 % P
    if flipped_sign or flipped_sign_i:
        r = r * SQRT_M1 % P
    return correct_sign or flipped_sign, _abs(r)


def is_canonical_field_element(encoded: bytes) -> bool:
    """32 bytes whose little-endian integer s is < p (so bit 255 is clear) and even
    (not negative): the encoding half of RFC 9496 §4.3.1, without the curve check."""
    if len(encoded) != ENCODING_BYTES:
        return False
    s = int.from_bytes(encoded, "little")
    return s < P and not s & 1


def decode(encoded: bytes) -> Point | None:
    """The element ``encoded`` stands for, or None unless it is a canonical encoding.

    RFC 9496 §4.3.1: ``s`` is the little-endian integer of all 32 bytes, so bit 255
    makes ``s >= p`` and is refused, as is every other ``s >= p`` and a negative ``s``.
    The identity (all zero bytes) decodes; refusing it is the caller's policy.
    """
    if len(encoded) != ENCODING_BYTES:
        return None
    s = int.from_bytes(encoded, "little")
    if s >= P or is_negative(s):
        return None
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 % P * u1) - u2_sqr) % P
    was_square, invsqrt = sqrt_ratio_m1(1, v * u2_sqr % P)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x % P * v % P
    x = _abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square or is_negative(t) or y == 0:
        return None
    return Point(x, y, 1, t)


def is_canonical(encoded: bytes) -> bool:
    """True when ``encoded`` is the canonical encoding of a ristretto255 element."""
    return decode(encoded) is not None


# RFC 9496 Appendix A.1: B·0 (the identity), B·1 (the generator), ..., B·15.
RFC_9496_GENERATOR_MULTIPLES = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
    "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
    "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
    "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
    "e882b131016b52c1d3337080187cf768423efccbb517bb495ab812c4160ff44e",
    "f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df403",
    "44f53520926ec81fbd5a387845beb7df85a96a24ece18738bdcfa6a7822a176d",
    "903293d8f2287ebe10e2374dc1a53e0bc887e592699f02d077d5263cdd55601c",
    "02622ace8f7303a31cafc63f8fc48fdc16e1c8c8d234b2f0d6685282a9076031",
    "20706fd788b2720a1ed2a5dad4952b01f413bcf0e7564de8cdc816689e2db95f",
    "bce83f8ba5dd2fa572864c24ba1810f9522bc6004afe95877ac73241cafdab42",
    "e4549ee16b9aa03099ca208c67adafcafa4c3f3e4e5303de6026e3ca8ff84460",
    "aa52e000df2e16f55fb1032fc33bc42742dad6bd5a8fc0be0167436c5948501f",
    "46376b80f409b29dc2b5f6f0c52591990896e5716f41477cd30085ab7f10301e",
    "e0c418f7c8d9c4cdd7395b93ea124f3ad99021bb681dfc3302a9d99a2e53e64e",
]

# RFC 9496 Appendix A.2, by the reason the RFC gives for each group.
RFC_9496_BAD_ENCODINGS = {
    "non-canonical field encodings": [
        "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ],
    "negative field elements": [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
        "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
        "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
        "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
        "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
        "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
    ],
    "non-square x^2": [
        "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
        "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
        "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
        "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
        "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
        "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
        "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
        "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
    ],
    "negative xy value": [
        "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
        "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
        "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
        "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
        "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
        "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
        "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
        "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
    ],
    "s = -1, which causes y = 0": [
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ],
}
