"""Known-answer tests for the reference client, independent of any service.

The reference client (tests/support/refclient.py) is only worth something as an
interoperability oracle if it is itself right. These tests check it against the
published vectors: RFC 9496 Appendix A (ristretto255), RFC 9380 Appendix K.3
(expand_message_xmd with SHA-512) and RFC 9497 Appendix A.1.1 (OPRF(ristretto255,
SHA-512), mode 0x00).

The last section runs the HTTPS client against a tiny local stub over real mutual TLS
(certificates made with the openssl command), so that the client's wire handling is
checked before any real service exists.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
from support import refclient

from vir.crypto import ristretto

# RFC 9496 Appendix A.1 (0*B ... 15*B) and A.2 (encodings DECODE must reject): the
# same published vectors vir's own decoder is held to.
GENERATOR_MULTIPLES = ristretto.RFC_9496_GENERATOR_MULTIPLES
BAD_ENCODINGS = [h for group in ristretto.RFC_9496_BAD_ENCODINGS.values() for h in group]

# RFC 9496 Appendix A.3: element derivation from 64 uniform bytes (I -> O).
FROM_UNIFORM_BYTES = [
    (
        (
            "5d1be09e3d0c82fc538112490e35701979d99e06ca3e2b5b54bffe8b4dc772c1"
            "4d98b696a1bbfb5ca32c436cc61c16563790306c79eaca7705668b47dffe5bb6"
        ),
        "3066f82a1a747d45120d1740f14358531a8f04bbffe6a819f86dfe50f44a0a46",
    ),
    (
        (
            "f116b34b8f17ceb56e8732a60d913dd10cce47a6d53bee9204be8b44f6678b27"
            "0102a56902e2488c46120e9276cfe54638286b9e4b3cdb470b542d46c2068d38"
        ),
        "f26e5b6f7d362d2d2a94c5d0e7602cb4773c95a2e5c31a64f133189fa76ed61b",
    ),
    (
        (
            "8422e1bbdaab52938b81fd602effb6f89110e1e57208ad12d9ad767e2e25510c"
            "27140775f9337088b982d83d7fcf0b2fa1edffe51952cbe7365e95c86eaf325c"
        ),
        "006ccd2a9e6867e6a2c5cea83d3302cc9de128dd2a9a57dd8ee7b9d7ffe02826",
    ),
    (
        (
            "ac22415129b61427bf464e17baee8db65940c233b98afce8d17c57beeb7876c2"
            "150d15af1cb1fb824bbd14955f2b57d08d388aab431a391cfc33d5bafb5dbbaf"
        ),
        "f8f0c87cf237953c5890aec3998169005dae3eca1fbb04548c635953c817f92a",
    ),
    (
        (
            "165d697a1ef3d5cf3c38565beefcf88c0f282b8e7dbd28544c483432f1cec767"
            "5debea8ebb4e5fe7d6f6e5db15f15587ac4d4d4a1de7191e0c1ca6664abcc413"
        ),
        "ae81e7dedf20a497e10c304a765c1767a42d6e06029758d2d7e8ef7cc4c41179",
    ),
    (
        (
            "a836e6c9a9ca9f1e8d486273ad56a78c70cf18f0ce10abb1c7172ddd605d7fd2"
            "979854f47ae1ccf204a33102095b4200e5befc0465accc263175485f0e17ea5c"
        ),
        "e2705652ff9f5e44d3e841bf1c251cf7dddb77d140870d1ab2ed64f1a9ce8628",
    ),
    (
        (
            "2cdc11eaeb95daf01189417cdddbf95952993aa9cb9c640eb5058d09702c7462"
            "2c9965a697a3b345ec24ee56335b556e677b30e6f90ac77d781064f866a3c982"
        ),
        "80bd07262511cdde4863f8a7434cef696750681cb9510eea557088f76d9e5065",
    ),
    # The RFC's last four inputs all map to the same element: they exercise the
    # masking of bit 255 and the reduction mod p of each half.
    (
        (
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
            "1200000000000000000000000000000000000000000000000000000000000000"
        ),
        "304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
    ),
    (
        (
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        ),
        "304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
    ),
    (
        (
            "0000000000000000000000000000000000000000000000000000000000000080"
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
        ),
        "304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
    ),
    (
        (
            "0000000000000000000000000000000000000000000000000000000000000000"
            "1200000000000000000000000000000000000000000000000000000000000080"
        ),
        "304282791023b73128d277bdcb5c7746ef2eac08dde9f2983379cb8e5ef0517f",
    ),
]

# RFC 9380 Appendix K.3: expand_message_xmd(SHA-512), DST below.
XMD_SHA512_DST = b"QUUX-V01-CS02-with-expander-SHA512-256"
XMD_SHA512_VECTORS = [
    (b"", 0x20, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
    (b"abc", 0x20, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
    (
        b"abcdef0123456789",
        0x20,
        "087e45a86e2939ee8b91100af1583c4938e0f5fc6c9db4b107b83346bc967f58",
    ),
    (
        b"",
        0x80,
        (
            "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921"
            "b052b62eaed99b46f72f2ef4cc96bfaf254ebbbec091e1a3b9e4fb5e5b619d2e"
            "0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7e"
            "b00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961"
        ),
    ),
]

# RFC 9497 Appendix A.1.1, test vector 2 (Batch Size 1). Seed, KeyInfo, skSm and Blind
# are those of test vector 1 (read from the vector file below).
RFC9497_VECTOR_2 = {
    "Input": "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
    "Blind": "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
    "BlindedElement": "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
    "EvaluationElement": "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
    "Output": (
        "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
        "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73"
    ),
}

# RFC 9497 Appendix A.1.1, copied into the repository (tests/vectors/; its "source" field
# cites the RFC), so a clone of the repository alone runs every test.
VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTOR_FILE = VECTOR_DIR / "rfc9497-ristretto255-sha512-oprf.json"


def _load_rfc9497() -> dict[str, Any]:
    assert VECTOR_FILE.is_file(), f"missing vector file {VECTOR_FILE}"
    data: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    return data


# --- RFC 9496 A.1 ------------------------------------------------------------


@pytest.mark.parametrize("k", range(16))
def test_generator_multiples_encode(k: int) -> None:
    assert refclient.encode(refclient.scalar_mult_base(k)).hex() == GENERATOR_MULTIPLES[k]


def test_generator_multiples_by_repeated_addition() -> None:
    acc = refclient.IDENTITY
    for expected in GENERATOR_MULTIPLES:
        assert refclient.encode(acc).hex() == expected
        acc = refclient.point_add(acc, refclient.BASE)


@pytest.mark.parametrize("k", range(16))
def test_generator_multiples_decode_round_trip(k: int) -> None:
    enc = bytes.fromhex(GENERATOR_MULTIPLES[k])
    point = refclient.decode(enc)
    assert refclient.encode(point) == enc
    assert refclient.equals(point, refclient.scalar_mult_base(k))


# --- RFC 9496 A.2 ------------------------------------------------------------


@pytest.mark.parametrize("hex_enc", BAD_ENCODINGS)
def test_bad_encodings_rejected(hex_enc: str) -> None:
    with pytest.raises(ValueError):
        refclient.decode(bytes.fromhex(hex_enc))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_length_rejected(length: int) -> None:
    with pytest.raises(ValueError):
        refclient.decode(bytes(length))


def test_identity_is_not_a_valid_oprf_element() -> None:
    # DECODE accepts the identity (A.1, 0*B), but RFC 9497 DeserializeElement must not.
    assert refclient.is_identity(refclient.decode(bytes(32)))
    with pytest.raises(ValueError):
        refclient.deserialize_element(bytes(32))


# --- RFC 9496 A.3 ------------------------------------------------------------


@pytest.mark.parametrize(("uniform_hex", "expected_hex"), FROM_UNIFORM_BYTES)
def test_from_uniform_bytes(uniform_hex: str, expected_hex: str) -> None:
    point = refclient.from_uniform_bytes(bytes.fromhex(uniform_hex))
    assert refclient.encode(point).hex() == expected_hex


# --- RFC 9380 K.3 ------------------------------------------------------------


@pytest.mark.parametrize(("msg", "length", "expected_hex"), XMD_SHA512_VECTORS)
def test_expand_message_xmd_sha512(msg: bytes, length: int, expected_hex: str) -> None:
    assert refclient.expand_message_xmd(msg, XMD_SHA512_DST, length).hex() == expected_hex


# --- RFC 9497 A.1.1 ----------------------------------------------------------


def test_rfc9497_context_string() -> None:
    assert refclient.CONTEXT_STRING == b"OPRFV1-\x00-ristretto255-SHA512"


def test_rfc9497_derive_key_pair() -> None:
    data = _load_rfc9497()
    sk, pk = refclient.derive_key_pair(bytes.fromhex(data["Seed"]), bytes.fromhex(data["KeyInfo"]))
    assert refclient.scalar_to_bytes(sk).hex() == data["skSm"]
    assert refclient.equals(pk, refclient.scalar_mult_base(sk))


def _vectors() -> list[dict[str, str]]:
    data = _load_rfc9497()
    vectors: list[dict[str, str]] = list(data["vectors"])
    return [*vectors, RFC9497_VECTOR_2]


@pytest.mark.parametrize("index", [0, 1], ids=["vector1", "vector2"])
def test_rfc9497_oprf_vector(index: int) -> None:
    data = _load_rfc9497()
    vec = _vectors()[index]
    sk = refclient.scalar_from_bytes(bytes.fromhex(data["skSm"]))
    input_ = bytes.fromhex(vec["Input"])
    blind = refclient.scalar_from_bytes(bytes.fromhex(vec["Blind"]))

    blinded = refclient.blind(input_, blind)
    assert blinded.hex() == vec["BlindedElement"]

    evaluated = refclient.evaluate(sk, blinded)
    assert evaluated.hex() == vec["EvaluationElement"]

    assert refclient.finalize(input_, blind, evaluated).hex() == vec["Output"]

    # Unblinding yields N = skS * HashToGroup(input), whatever the blind.
    expected_n = refclient.encode(refclient.scalar_mult(sk, refclient.hash_to_group(input_)))
    assert refclient.unblind(blind, evaluated) == expected_n


def test_vector_file_holds_test_vector_1() -> None:
    data = _load_rfc9497()
    assert data["vectors"][0]["Input"] == "00"
    # Vector 2 shares the key and blind of vector 1 (RFC 9497 A.1.1).
    assert data["vectors"][0]["Blind"] == RFC9497_VECTOR_2["Blind"]


# --- Properties ------------------------------------------------------------


def test_unblind_independent_of_blind() -> None:
    data = _load_rfc9497()
    sk = refclient.scalar_from_bytes(bytes.fromhex(data["skSm"]))
    input_ = b"reference client property test"
    r1 = refclient.random_blind()
    r2 = refclient.random_blind()
    while r2 == r1:
        r2 = refclient.random_blind()

    b1 = refclient.blind(input_, r1)
    b2 = refclient.blind(input_, r2)
    assert b1 != b2
    n1 = refclient.unblind(r1, refclient.evaluate(sk, b1))
    n2 = refclient.unblind(r2, refclient.evaluate(sk, b2))
    assert n1 == n2
    assert refclient.finalize(input_, r1, refclient.evaluate(sk, b1)) == refclient.finalize(
        input_, r2, refclient.evaluate(sk, b2)
    )


def test_scalar_mult_by_group_order_is_identity() -> None:
    point = refclient.hash_to_group(b"order check")
    assert refclient.is_identity(refclient.scalar_mult(refclient.L, point))
    minus_one = refclient.scalar_mult(refclient.L - 1, point)
    assert refclient.equals(minus_one, refclient.point_neg(point))


def test_encode_is_independent_of_representative() -> None:
    # Ristretto equality (RFC 9496 §4.3.3) and ENCODE ignore the coset representative:
    # adding a 4-torsion point of edwards25519 changes the point, not the element.
    point = refclient.scalar_mult_base(7)
    x, y, z, t = point
    # (x, y) -> (i*y, i*x) is addition of a point of order 4 (RFC 9496 §4.3.2 rotation).
    i = refclient.SQRT_M1
    torsioned = (i * y % refclient.P, i * x % refclient.P, z, (-t) % refclient.P)
    assert refclient.equals(point, torsioned)
    assert refclient.encode(torsioned) == refclient.encode(point)


def test_scalar_from_bytes_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        refclient.scalar_from_bytes(refclient.L.to_bytes(32, "little"))


@pytest.mark.parametrize(
    ("raw", "text"),
    [(b"", ""), (b"\x00", "AA"), (b"\xff\xfe", "__4"), (bytes(range(32)), None)],
)
def test_b64url_round_trip(raw: bytes, text: str | None) -> None:
    enc = refclient.b64url_encode(raw)
    assert "=" not in enc
    if text is not None:
        assert enc == text
    assert refclient.b64url_decode(enc) == raw


@pytest.mark.parametrize("bad", ["AA==", "A", "+/8", "AB", "a b"])
def test_b64url_rejects_non_canonical(bad: str) -> None:
    with pytest.raises(ValueError):
        refclient.b64url_decode(bad)


# --- The HTTPS client against a local mutual-TLS stub ------------------------

STUB_EPOCH = 7


@dataclass(frozen=True)
class _Pki:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(dir_: Path, name: str, cn: str, ext: str, serial: int) -> None:
    """A P-256 key and a certificate for it, signed by the test CA in dir_."""
    (dir_ / f"{name}.ext").write_text(ext, encoding="ascii")
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        cwd=dir_,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", str(serial), "-days", "1", "-sha256",
        "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=dir_,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> _Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("refclient-pki")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=refclient test CA",
        "-days", "1", "-sha256",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    common = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    common += "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    server_ext = common + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n"
    client_ext = common + "extendedKeyUsage=clientAuth\n"
    _issue(d, "server", "127.0.0.1", server_ext, serial=2)
    _issue(d, "client", "refclient test org", client_ext, serial=3)
    return _Pki(
        ca=str(d / "ca.pem"),
        server_cert=str(d / "server.pem"),
        server_key=str(d / "server.key"),
        client_cert=str(d / "client.pem"),
        client_key=str(d / "client.key"),
    )


class _StubServer(HTTPServer):
    """A one-request-at-a-time stand-in for the OPRF service (mode: how it misbehaves)."""

    sk: int
    mode: str


class _StubHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def _send(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Path", self.path)
        # Echo the client certificate's CN, which proves the client authenticated.
        peer = cast(ssl.SSLSocket, self.connection).getpeercert() or {}
        subject = cast("tuple[tuple[tuple[str, str], ...], ...]", peer.get("subject", ()))
        cn = next((v for rdn in subject for k, v in rdn if k == "commonName"), "")
        self.send_header("X-Client-CN", cn)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        server = cast(_StubServer, self.server)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != refclient.EVALUATE_PATH:
            self._send(404, {"title": "not found"})
            return
        if self.headers.get("Content-Type") != "application/json":
            self._send(415, {"title": "unsupported media type"})
            return
        try:
            doc = json.loads(body)
            blinded = [refclient.b64url_decode(e) for e in doc["blinded_elements"]]
            evaluated = [refclient.evaluate(server.sk, b) for b in blinded]
        except (ValueError, KeyError, TypeError):
            self._send(422, {"title": "invalid blinded element"})
            return
        if server.mode == "identity":
            evaluated[0] = bytes(32)
        elif server.mode == "non-canonical":
            evaluated[0] = bytes.fromhex(BAD_ENCODINGS[1])
        elif server.mode == "short":
            evaluated = evaluated[:-1]
        elif server.mode == "error":
            self._send(503, {"title": "key epoch unavailable"})
            return
        encoded = [refclient.b64url_encode(e) for e in evaluated]
        self._send(200, {"epoch": STUB_EPOCH, "evaluated_elements": encoded})


@pytest.fixture
def stub(pki: _Pki) -> Iterator[_StubServer]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no answer
    server = _StubServer(("127.0.0.1", 0), _StubHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.sk = refclient.derive_key_pair(b"\x42" * 32, b"stub key")[0]
    server.mode = "good"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _base_url(server: _StubServer) -> str:
    return f"https://127.0.0.1:{server.server_address[1]}"


def test_pseudonymise_against_stub(pki: _Pki, stub: _StubServer) -> None:
    inputs = [b"alpha", b"beta", b"alpha"]
    epoch, ns = refclient.pseudonymise(
        _base_url(stub), pki.ca, pki.client_cert, pki.client_key, inputs
    )
    assert epoch == STUB_EPOCH
    expected = [
        refclient.encode(refclient.scalar_mult(stub.sk, refclient.hash_to_group(x))) for x in inputs
    ]
    assert ns == expected
    assert ns[0] == ns[2] != ns[1]


def test_pseudonymise_with_given_blinds(pki: _Pki, stub: _StubServer) -> None:
    args = (_base_url(stub), pki.ca, pki.client_cert, pki.client_key, [b"gamma"])
    _, first = refclient.pseudonymise(*args, blinds=[12345])
    _, second = refclient.pseudonymise(*args, blinds=[refclient.L - 2])
    assert first == second


@pytest.mark.parametrize("mode", ["identity", "non-canonical", "short"])
def test_pseudonymise_rejects_bad_answers(pki: _Pki, stub: _StubServer, mode: str) -> None:
    stub.mode = mode
    with pytest.raises(ValueError):
        refclient.pseudonymise(
            _base_url(stub), pki.ca, pki.client_cert, pki.client_key, [b"x", b"y"]
        )


def test_pseudonymise_reports_non_200(pki: _Pki, stub: _StubServer) -> None:
    stub.mode = "error"
    with pytest.raises(RuntimeError, match=r"503.*key epoch unavailable"):
        refclient.pseudonymise(_base_url(stub), pki.ca, pki.client_cert, pki.client_key, [b"x"])


def test_post_raw(pki: _Pki, stub: _StubServer) -> None:
    status, headers, body = refclient.post_raw(
        _base_url(stub),
        pki.ca,
        pki.client_cert,
        pki.client_key,
        refclient.EVALUATE_PATH,
        b'{"blinded_elements": ["AAAA"]}',
    )
    assert status == 422
    assert headers["content-type"] == "application/json"
    assert headers["x-client-cn"] == "refclient test org"
    assert json.loads(body)["title"] == "invalid blinded element"

    status, _, _ = refclient.post_raw(
        _base_url(stub),
        pki.ca,
        pki.client_cert,
        pki.client_key,
        refclient.EVALUATE_PATH,
        b"{}",
        headers={"content-type": "text/plain"},
    )
    assert status == 415


def test_client_refuses_a_server_outside_its_ca(pki: _Pki, stub: _StubServer) -> None:
    # Trusting the client's own certificate as CA: the server's chain cannot verify.
    with pytest.raises(ssl.SSLCertVerificationError):
        refclient.post_raw(
            _base_url(stub), pki.client_cert, pki.client_cert, pki.client_key, "/x", b""
        )
