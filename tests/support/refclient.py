"""An independent reference client for the OPRF service, written from public specs only.

This module exists to prove interoperability: it is written from the RFC texts alone,
imports nothing from ``vir`` and uses no crypto library (no libsodium, no pyca), only the
Python standard library. If this client and the service agree, they agree because both
follow the RFCs, not because they share code.

What it holds:

- ristretto255 over edwards25519 (RFC 9496 §4), with Python ints for field elements
  mod p = 2^255 - 19 and extended twisted Edwards coordinates (X : Y : Z : T);
- ``expand_message_xmd`` with SHA-512 (RFC 9380 §5.3.1);
- the OPRF protocol, mode 0x00, suite ristretto255-SHA512 (RFC 9497 §3, §4.1);
- a small mutual-TLS HTTPS client for ``POST /v1/oprf/evaluate``, which the key holder
  serves (``vir keyholder serve``): pass the key holder's base URL, not the index's.

Nothing here is constant-time: it is test code. The RFCs' ``CT_SELECT``, ``CT_ABS`` and
``CT_EQ`` become plain ``if`` statements and ``==``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
import ssl
import urllib.parse

# ---------------------------------------------------------------------------
# Field arithmetic mod p (RFC 9496 §4.1, §2.1)
# ---------------------------------------------------------------------------

P = 2**255 - 19
"""The field prime of edwards25519."""

L = 2**252 + 27742317777372353535851937790883648493
"""The order of the ristretto255 group (and of the edwards25519 prime-order subgroup)."""


def _inv(x: int) -> int:
    """The multiplicative inverse mod p (0 maps to 0, as x^(p-2) does)."""
    return pow(x, P - 2, P)


def is_negative(x: int) -> bool:
    """RFC 9496 §2.1: a field element is negative when its canonical encoding is odd."""
    return (x % P) & 1 == 1


def _abs(x: int) -> int:
    """CT_ABS: the non-negative one of x and -x."""
    x %= P
    return (P - x) % P if is_negative(x) else x


# D, the edwards25519 curve constant: -121665 / 121666 (RFC 7748 §4.1, RFC 9496 §4.1).
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555

# The constants of RFC 9496 §4.1, as the RFC lists them. Where the definition is a
# square root, the RFC fixes which of the two roots is meant; notably SQRT_AD_MINUS_ONE
# is the *negative* (odd) root, and taking the other one breaks MAP (RFC 9496 §4.3.4).
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
INVSQRT_A_MINUS_D = 54469307008909316920995813868745141605393597292927456921205312896311721017578
ONE_MINUS_D_SQ = 1159843021668779879193775521855586647937357759715417654439879720876111806838
D_MINUS_ONE_SQ = 40440834346308536858101042469323190826248399146238708352240133220865137265952

# Check each constant against its defining equation (a = -1), so a typo cannot hide.
assert (D * 121666 + 121665) % P == 0
assert SQRT_M1 * SQRT_M1 % P == P - 1
assert SQRT_AD_MINUS_ONE * SQRT_AD_MINUS_ONE % P == (-D - 1) % P  # a*d - 1
assert INVSQRT_A_MINUS_D * INVSQRT_A_MINUS_D % P * (-1 - D) % P == 1  # 1/sqrt(a - d)
assert (1 - D * D) % P == ONE_MINUS_D_SQ
assert (D - 1) * (D - 1) % P == D_MINUS_ONE_SQ


def sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    """SQRT_RATIO_M1(u, v), RFC 9496 §4.2.

    Returns (True, +sqrt(u/v)) when u/v is square, (True, 0) when u is zero,
    (False, 0) when v is zero and u is not, and (False, +sqrt(SQRT_M1 * u/v))
    otherwise. The root returned is always the non-negative one.
    """
    u %= P
    v %= P
    v3 = (v * v % P) * v % P
    v7 = (v3 * v3 % P) * v % P
    r = (u * v3 % P) * pow(u * v7 % P, (P - 5) // 8, P) % P
    check = v * (r * r % P) % P

    correct_sign_sqrt = check == u
    flipped_sign_sqrt = check == (-u) % P
    flipped_sign_sqrt_i = check == (-u * SQRT_M1) % P

    if flipped_sign_sqrt or flipped_sign_sqrt_i:
        r = SQRT_M1 * r % P
    r = _abs(r)

    was_square = correct_sign_sqrt or flipped_sign_sqrt
    return was_square, r


def _fe_from_bytes(b: bytes) -> int:
    return int.from_bytes(b, "little")


def _fe_to_bytes(x: int) -> bytes:
    return (x % P).to_bytes(32, "little")


# ---------------------------------------------------------------------------
# edwards25519 points in extended coordinates (RFC 8032 §5.1.4)
# ---------------------------------------------------------------------------

Point = tuple[int, int, int, int]
"""An edwards25519 point (X, Y, Z, T) with x = X/Z, y = Y/Z and x*y = T/Z."""

IDENTITY: Point = (0, 1, 1, 0)


def _base_point() -> Point:
    """The edwards25519 base point B (RFC 8032 §5.1): y = 4/5, x non-negative.

    The ristretto255 generator is the image of this point (RFC 9496 §4.4).
    """
    y = 4 * _inv(5) % P
    # x^2 = (y^2 - 1) / (d*y^2 + 1), from -x^2 + y^2 = 1 + d*x^2*y^2.
    ok, x = sqrt_ratio_m1((y * y - 1) % P, (D * y * y + 1) % P)
    assert ok
    return (x, y, 1, x * y % P)


def point_add(p1: Point, p2: Point) -> Point:
    """Point addition for a = -1 ("add-2008-hwcd-3", RFC 8032 §5.1.4).

    The formula is complete on edwards25519, so it also doubles and handles the identity.
    """
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * 2 * D * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_neg(p1: Point) -> Point:
    x, y, z, t = p1
    return ((-x) % P, y, z, (-t) % P)


def scalar_mult(k: int, p1: Point) -> Point:
    """k * p1 by left-to-right double-and-add. k is reduced mod L first."""
    k %= L
    acc = IDENTITY
    for i in reversed(range(k.bit_length())):
        acc = point_add(acc, acc)
        if (k >> i) & 1:
            acc = point_add(acc, p1)
    return acc


BASE: Point = _base_point()
"""The ristretto255 generator (the edwards25519 base point)."""


def scalar_mult_base(k: int) -> Point:
    return scalar_mult(k, BASE)


# ---------------------------------------------------------------------------
# ristretto255 (RFC 9496 §4.3)
# ---------------------------------------------------------------------------


def decode(s_bytes: bytes) -> Point:
    """ristretto255 DECODE, RFC 9496 §4.3.1. Raises ValueError on any invalid encoding.

    Rejected: wrong length, non-canonical field encodings (s >= p, including any
    encoding with the top bit set), negative s, non-square x^2, negative t = x*y,
    and y = 0.
    """
    if len(s_bytes) != 32:
        raise ValueError("ristretto255 encoding must be 32 bytes")
    s = _fe_from_bytes(s_bytes)
    # "If the resulting value is >= p, decoding fails": no masking of bit 255 here.
    if s >= P:
        raise ValueError("non-canonical field encoding")
    if is_negative(s):
        raise ValueError("negative field element")

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

    if not was_square:
        raise ValueError("invalid encoding: x^2 is not square")
    if is_negative(t):
        raise ValueError("invalid encoding: negative xy")
    if y == 0:
        raise ValueError("invalid encoding: y = 0")
    return (x, y, 1, t)


def encode(p1: Point) -> bytes:
    """ristretto255 ENCODE, RFC 9496 §4.3.2."""
    x0, y0, z0, t0 = p1
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P

    # Ignore was_square since this is always square.
    _, invsqrt = sqrt_ratio_m1(1, u1 * (u2 * u2 % P) % P)

    den1 = invsqrt * u1 % P
    den2 = invsqrt * u2 % P
    z_inv = den1 * den2 % P * t0 % P

    ix0 = x0 * SQRT_M1 % P
    iy0 = y0 * SQRT_M1 % P
    enchanted_denominator = den1 * INVSQRT_A_MINUS_D % P

    rotate = is_negative(t0 * z_inv)

    if rotate:
        x, y, den_inv = iy0, ix0, enchanted_denominator
    else:
        x, y, den_inv = x0, y0, den2
    z = z0

    if is_negative(x * z_inv):
        y = (-y) % P

    s = _abs(den_inv * (z - y))
    return _fe_to_bytes(s)


def equals(p1: Point, p2: Point) -> bool:
    """ristretto255 equality, RFC 9496 §4.3.3: x1*y2 == y1*x2 or y1*y2 == x1*x2."""
    x1, y1, _, _ = p1
    x2, y2, _, _ = p2
    return (x1 * y2 - y1 * x2) % P == 0 or (y1 * y2 - x1 * x2) % P == 0


def is_identity(p1: Point) -> bool:
    return equals(p1, IDENTITY)


def _map(t: int) -> Point:
    """MAP(t), the Elligator-based map of RFC 9496 §4.3.4 (returns a completed point)."""
    r = SQRT_M1 * t % P * t % P
    u = (r + 1) * ONE_MINUS_D_SQ % P
    v = (-1 - r * D) * (r + D) % P

    was_square, s = sqrt_ratio_m1(u, v)
    s_prime = (-_abs(s * t)) % P
    if not was_square:
        s = s_prime
    c = P - 1 if was_square else r

    n = (c * (r - 1) % P * D_MINUS_ONE_SQ - v) % P

    w0 = 2 * s * v % P
    w1 = n * SQRT_AD_MINUS_ONE % P
    w2 = (1 - s * s) % P
    w3 = (1 + s * s) % P
    return (w0 * w3 % P, w2 * w1 % P, w1 * w3 % P, w0 * w2 % P)


def from_uniform_bytes(b: bytes) -> Point:
    """The one-way map from 64 uniformly random bytes, RFC 9496 §4.3.4.

    Each half is read little-endian with bit 255 masked off, reduced mod p, mapped
    with MAP, and the two points are added.
    """
    if len(b) != 64:
        raise ValueError("from_uniform_bytes needs exactly 64 bytes")
    mask = (1 << 255) - 1
    r0 = (_fe_from_bytes(b[:32]) & mask) % P
    r1 = (_fe_from_bytes(b[32:]) & mask) % P
    return point_add(_map(r0), _map(r1))


# ---------------------------------------------------------------------------
# Scalars (RFC 9497 §4.1: SerializeScalar is 32 bytes little-endian)
# ---------------------------------------------------------------------------


def scalar_to_bytes(k: int) -> bytes:
    return (k % L).to_bytes(32, "little")


def scalar_from_bytes(b: bytes) -> int:
    """DeserializeScalar, RFC 9497 §4.1: 32 bytes little-endian, must be < L."""
    if len(b) != 32:
        raise ValueError("scalar must be 32 bytes")
    k = int.from_bytes(b, "little")
    if k >= L:
        raise ValueError("non-canonical scalar")
    return k


def scalar_inverse(k: int) -> int:
    if k % L == 0:
        raise ValueError("zero scalar has no inverse")
    return pow(k, L - 2, L)


# ---------------------------------------------------------------------------
# expand_message_xmd (RFC 9380 §5.3.1) with SHA-512
# ---------------------------------------------------------------------------

_B_IN_BYTES = 64  # SHA-512 output size
_S_IN_BYTES = 128  # SHA-512 block size


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """expand_message_xmd(msg, DST, len_in_bytes) with H = SHA-512, RFC 9380 §5.3.1."""
    ell = -(-len_in_bytes // _B_IN_BYTES)  # ceil
    if ell > 255 or len_in_bytes > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd: parameters out of range")
    dst_prime = dst + bytes([len(dst)])
    z_pad = bytes(_S_IN_BYTES)
    l_i_b_str = len_in_bytes.to_bytes(2, "big")
    msg_prime = z_pad + msg + l_i_b_str + b"\x00" + dst_prime

    b_0 = hashlib.sha512(msg_prime).digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    uniform = b_i
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b_0, b_i, strict=True))
        b_i = hashlib.sha512(mixed + bytes([i]) + dst_prime).digest()
        uniform += b_i
    return uniform[:len_in_bytes]


# ---------------------------------------------------------------------------
# OPRF(ristretto255, SHA-512), mode 0x00 (RFC 9497)
# ---------------------------------------------------------------------------

MODE_OPRF = 0x00
# RFC 9497 §3.1: contextString = "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier.
CONTEXT_STRING = b"OPRFV1-" + bytes([MODE_OPRF]) + b"-ristretto255-SHA512"


def _i2osp(n: int, length: int) -> bytes:
    return n.to_bytes(length, "big")


def hash_to_group(msg: bytes) -> Point:
    """HashToGroup for ristretto255-SHA512, RFC 9497 §4.1."""
    dst = b"HashToGroup-" + CONTEXT_STRING
    return from_uniform_bytes(expand_message_xmd(msg, dst, 64))


def hash_to_scalar(msg: bytes, dst: bytes | None = None) -> int:
    """HashToScalar for ristretto255-SHA512, RFC 9497 §4.1 (default DST unless given)."""
    if dst is None:
        dst = b"HashToScalar-" + CONTEXT_STRING
    return int.from_bytes(expand_message_xmd(msg, dst, 64), "little") % L


def derive_key_pair(seed: bytes, info: bytes) -> tuple[int, Point]:
    """DeriveKeyPair(seed, info), RFC 9497 §3.2.1. Returns (skS, pkS)."""
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes (Ns)")
    derive_input = seed + _i2osp(len(info), 2) + info
    dst = b"DeriveKeyPair" + CONTEXT_STRING
    counter = 0
    sk = 0
    while sk == 0:
        if counter > 255:
            raise ValueError("DeriveKeyPairError")
        sk = hash_to_scalar(derive_input + _i2osp(counter, 1), dst)
        counter += 1
    return sk, scalar_mult_base(sk)


def deserialize_element(b: bytes) -> Point:
    """DeserializeElement, RFC 9497 §4.1: a valid ristretto255 encoding, not the identity."""
    p1 = decode(b)
    if is_identity(p1):
        raise ValueError("identity element")
    return p1


def blind(input_: bytes, blind_scalar: int) -> bytes:
    """Blind(input) with a given blind, RFC 9497 §3.3.1. Returns the blinded element."""
    if not 0 < blind_scalar < L:
        raise ValueError("blind must be in [1, L)")
    input_element = hash_to_group(input_)
    if is_identity(input_element):
        raise ValueError("InvalidInputError")
    return encode(scalar_mult(blind_scalar, input_element))


def random_blind() -> int:
    """A uniformly random non-zero scalar (RFC 9497 §3.3.1 RandomScalar)."""
    return 1 + secrets.randbelow(L - 1)


def evaluate(sk: int, blinded_element: bytes) -> bytes:
    """BlindEvaluate(skS, blindedElement), RFC 9497 §3.3.1 (server side; for the KAT only)."""
    return encode(scalar_mult(sk, deserialize_element(blinded_element)))


def unblind(blind_scalar: int, evaluated_element: bytes) -> bytes:
    """N = blind^-1 * evaluatedElement, the first step of Finalize (RFC 9497 §3.3.1)."""
    return encode(scalar_mult(scalar_inverse(blind_scalar), deserialize_element(evaluated_element)))


def finalize(input_: bytes, blind_scalar: int, evaluated_element: bytes) -> bytes:
    """Finalize(input, blind, evaluatedElement), RFC 9497 §3.3.1."""
    unblinded_element = unblind(blind_scalar, evaluated_element)
    hash_input = (
        _i2osp(len(input_), 2)
        + input_
        + _i2osp(len(unblinded_element), 2)
        + unblinded_element
        + b"Finalize"
    )
    return hashlib.sha512(hash_input).digest()


# ---------------------------------------------------------------------------
# base64url without padding (RFC 4648 §5)
# ---------------------------------------------------------------------------

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    """Strict unpadded base64url: rejects padding, other alphabets and non-canonical tails."""
    if not isinstance(s, str) or _B64URL_RE.fullmatch(s) is None or len(s) % 4 == 1:
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if b64url_encode(raw) != s:
        raise ValueError("non-canonical base64url")
    return raw


# ---------------------------------------------------------------------------
# The HTTPS client (mutual TLS)
# ---------------------------------------------------------------------------

EVALUATE_PATH = "/v1/oprf/evaluate"


class ResponseError(ValueError):
    """The service answered 200 with a body that does not follow the API contract."""


def _tls_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    # Server authentication against our CA (hostname checked), client certificate for mTLS.
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def post_raw(
    base_url: str,
    ca_file: str,
    cert_file: str,
    key_file: str,
    path: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """POST body to base_url + path over mutual TLS.

    Returns (status, headers with lower-cased names, body). Repeated headers are joined
    with ", ". Content-Type defaults to application/json unless given in headers.
    """
    url = urllib.parse.urlsplit(base_url)
    if url.scheme != "https" or url.hostname is None:
        raise ValueError(f"base_url must be an https URL, got {base_url!r}")
    send_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if headers:
        lowered = {k.lower() for k in headers}
        send_headers = {k: v for k, v in send_headers.items() if k.lower() not in lowered}
        send_headers.update(headers)

    conn = http.client.HTTPSConnection(
        url.hostname,
        url.port,
        context=_tls_context(ca_file, cert_file, key_file),
        timeout=timeout,
    )
    try:
        conn.request("POST", url.path.rstrip("/") + path, body=body, headers=send_headers)
        resp = conn.getresponse()
        resp_body = resp.read()
        resp_headers: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            resp_headers[key] = f"{resp_headers[key]}, {value}" if key in resp_headers else value
        return resp.status, resp_headers, resp_body
    finally:
        conn.close()


def pseudonymise(
    base_url: str,
    ca_file: str,
    cert_file: str,
    key_file: str,
    inputs: list[bytes],
    blinds: list[int] | None = None,
    *,
    timeout: float = 30.0,
) -> tuple[int, list[bytes]]:
    """Run the OPRF against a key holder (``base_url``): blind, POST /v1/oprf/evaluate,
    check, unblind.

    Returns (epoch, [N, ...]) where each N = skS * HashToGroup(input), as its 32-byte
    ristretto255 encoding, in the order of inputs. Blinds are random non-zero scalars
    unless given. Raises RuntimeError on a non-200 answer (with status and body), and
    ValueError on a malformed answer (ResponseError: also a threshold key holder's share,
    which alone is not the pseudonym) or an invalid element.
    """
    if blinds is None:
        blinds = [random_blind() for _ in inputs]
    if len(blinds) != len(inputs):
        raise ValueError("need exactly one blind per input")

    blinded = [blind(x, r) for x, r in zip(inputs, blinds, strict=True)]
    body = json.dumps({"blinded_elements": [b64url_encode(b) for b in blinded]}).encode()

    status, _, resp_body = post_raw(
        base_url, ca_file, cert_file, key_file, EVALUATE_PATH, body, timeout=timeout
    )
    if status != 200:
        raise RuntimeError(
            f"POST {EVALUATE_PATH} returned {status}: {resp_body.decode('utf-8', 'replace')}"
        )

    try:
        doc = json.loads(resp_body)
    except json.JSONDecodeError as exc:
        raise ResponseError(f"response is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ResponseError("response is not a JSON object")
    epoch = doc.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise ResponseError(f"epoch is not an integer: {epoch!r}")
    evaluated = doc.get("evaluated_elements")
    if not isinstance(evaluated, list) or not all(isinstance(e, str) for e in evaluated):
        raise ResponseError("evaluated_elements is not a list of strings")
    if len(evaluated) != len(inputs):
        raise ResponseError(f"expected {len(inputs)} evaluated elements, got {len(evaluated)}")
    if doc.get("share_index") is not None:
        # A threshold key holder answers with its share k_i: unblinding one answer would
        # give k_i * HashToGroup(input), not the pseudonym. This client combines nothing.
        raise ResponseError("the answer is one key holder's share (share_index), not k")

    outputs: list[bytes] = []
    for r, enc in zip(blinds, evaluated, strict=True):
        # deserialize_element (inside unblind) rejects non-canonical, invalid and identity.
        outputs.append(unblind(r, b64url_decode(enc)))
    return epoch, outputs
