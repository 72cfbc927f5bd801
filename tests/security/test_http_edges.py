"""HTTP-level edges of the embedded server, tried with raw sockets as an attacker would
(issue 11, point 6).

Before: an 8 MB request header was accepted; a malformed Content-Length, or
Content-Length with Transfer-Encoding, got uvicorn's plain-text 400; a chunked body over
the limit got 400 instead of 413; JSON nested 20,000 deep got a generic 400. Now the
head is bounded (``MAX_HEAD_BYTES``, ``MAX_HEADER_FIELDS``: 431), every refusal a client
can see is problem+json (RFC 9457) with its documented type and status, also those the
HTTP parser makes before the application runs, and the server keeps serving.

The index and the key holder run the same embedded server: the framing and body
checks are tried on both (``TARGETS``), each at its own endpoint and body limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from support.service import RunningService, start_service
from support.transports import RecordingTransport
from uvicorn.server import ServerState

from vir import logs
from vir.api.headers import API_VERSION
from vir.api.limits import MAX_JSON_DEPTH, BodySizeLimit
from vir.crypto import oprf
from vir.domain.encoding import b64url_encode
from vir.keyholder.settings import KeyholderSettings
from vir.server.tls import (
    MAX_HEAD_BYTES,
    MAX_HEADER_FIELDS,
    LimitedH11Protocol,
    LimitedHttpToolsProtocol,
)
from vir.settings import Settings

SIGNALS = b"/v1/signals"
EVALUATE = b"/v1/oprf/evaluate"
ELEMENT = "YJoK5owVo89pA3ZkYTB-XIuy-V5-ZVDh_6Lcmd5RgDw"
BODY = json.dumps({"blinded_elements": [ELEMENT]}).encode()
MAX_BODY = Settings.model_fields["max_body_bytes"].default  # VIR_MAX_BODY_BYTES's default
assert MAX_BODY == 64 * 1024


def _signal() -> dict[str, Any]:
    """A registration the index serves (201): a person it has not seen before."""
    person = oprf.hash_to_group(f"nl-bsn:{uuid.uuid4()}".encode())
    return {
        "local_ref": f"EDGE-{uuid.uuid4().hex[:12]}",
        "epoch": 1,
        "person": b64url_encode(person),
        "professional": {"name": "Anna de Vries", "email": "anna@huisarts.example"},
    }


@dataclass(frozen=True)
class Target:
    """A service behind the embedded server: where a JSON body goes, a body it serves
    (``served``), and its body limit. ``field`` is a list field of that body's schema."""

    name: str
    path: bytes
    served: int
    max_body: int
    field: str

    def port(self, service: RunningService) -> int:
        return service.port if self.name == "index" else service.keyholder_port

    def document(self) -> dict[str, Any]:
        return _signal() if self.name == "index" else {"blinded_elements": [ELEMENT]}

    def body(self) -> bytes:
        return json.dumps(self.document()).encode()


INDEX = Target("index", SIGNALS, 201, MAX_BODY, "parents")
KEYHOLDER = Target(
    "keyholder",
    EVALUATE,
    200,
    KeyholderSettings.model_fields["max_body_bytes"].default,
    "blinded_elements",
)
TARGETS = [INDEX, KEYHOLDER]
on_both = pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("http-edges"))
    yield running
    running.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after this answer

    def problem(self) -> dict[str, object]:
        """The problem+json document, checked for RFC 9457's members and vir's type."""
        assert self.headers["content-type"] == "application/problem+json", self
        document = json.loads(self.body)
        assert isinstance(document, dict)
        assert {"type", "title", "status", "detail"} <= document.keys()
        assert document["status"] == self.status
        assert str(document["type"]).startswith("urn:vir:problem:")
        return document


def _connect(service: RunningService, cert: bool, port: int | None = None) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=service.ca)
    if cert:
        org = service.org("gp")
        context.load_cert_chain(org.cert, org.key)
    raw = socket.create_connection(("127.0.0.1", port or service.port), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _read_answer(sock: ssl.SSLSocket, buffered: bytes = b"") -> tuple[Answer, bytes]:
    """One HTTP/1.1 response (Content-Length framed), and whatever was read past it."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed in the middle of the body")
        rest += chunk
    closed = headers.get("connection", "").lower() == "close"
    answer = Answer(int(status_line.split()[1]), headers, rest[:length], closed)
    return answer, rest[length:]


def _early(sock: ssl.SSLSocket) -> bytes | None:
    """What the server has already sent, without waiting: None when nothing (a TLS 1.3
    session ticket makes the socket readable but is no answer), b"" when it closed."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable and not sock.pending():
        return None
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except ssl.SSLWantReadError:
        return None
    finally:
        sock.settimeout(30)


def exchange(
    service: RunningService, data: bytes, *, cert: bool = False, target: Target = INDEX
) -> Answer:
    """Send ``data`` on a fresh TLS connection to ``target``, in 16 KiB pieces, and stop
    sending as soon as the server answers (as a client that reads while it writes would);
    the answer."""
    with _connect(service, cert, target.port(service)) as sock:
        early = b""
        for start in range(0, len(data), 16 * 1024):
            answered = _early(sock)
            if answered is not None:
                early = answered
                break  # the server answered before the request was complete: a refusal
            try:
                sock.sendall(data[start : start + 16 * 1024])
            except (BrokenPipeError, ConnectionResetError):
                break
        answer, _ = _read_answer(sock, early)
        return answer


def _request(
    method: bytes,
    path: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _post(body: bytes, *extra: tuple[bytes, bytes], target: Target = INDEX) -> bytes:
    headers = [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(body))]
    return _request(b"POST", target.path, [*headers, *extra], body)


def _assert_still_serving(service: RunningService, target: Target = INDEX) -> None:
    data = _request(b"GET", b"/health", [(b"Connection", b"close")])
    answer = exchange(service, data, target=target)
    assert (answer.status, json.loads(answer.body)) == (200, {"status": "ok"})


# --- Header size and count -----------------------------------------------------------------


def test_an_8_mb_header_is_refused_with_431_before_it_is_read(service: RunningService) -> None:
    data = _request(b"GET", b"/health", [(b"X-Big", b"a" * (8 * 1024 * 1024))])
    answer = exchange(service, data)
    assert answer.status == 431
    assert answer.problem()["type"] == "urn:vir:problem:headers-too-large"
    assert answer.closed
    # Refused before the app, with the headers every answer of the app carries.
    assert answer.headers["api-version"] == API_VERSION
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    _assert_still_serving(service)


def test_a_request_target_longer_than_the_head_limit_is_refused(service: RunningService) -> None:
    answer = exchange(service, _request(b"GET", b"/health?" + b"q" * MAX_HEAD_BYTES, []))
    assert answer.status == 431
    assert answer.problem()["type"] == "urn:vir:problem:headers-too-large"


def test_a_head_just_over_the_limit_is_refused_and_one_under_it_is_served(
    service: RunningService,
) -> None:
    over = _request(b"GET", b"/health", [(b"X-Pad", b"a" * MAX_HEAD_BYTES)])
    assert exchange(service, over).status == 431
    # Room for a proxy's Client-Cert header at vir.api.identity's 16 KiB cap, and more.
    under = _request(b"GET", b"/health", [(b"X-Pad", b"a" * (MAX_HEAD_BYTES - 200))])
    assert exchange(service, under).status == 200


def test_too_many_header_fields_are_refused_with_431(service: RunningService) -> None:
    # Host counts: MAX_HEADER_FIELDS fields in all are served, one more is refused.
    many = [(b"X-H%d" % i, b"v") for i in range(MAX_HEADER_FIELDS)]
    answer = exchange(service, _request(b"GET", b"/health", many))
    assert answer.status == 431
    assert "header fields" in str(answer.problem()["detail"])
    allowed = _request(b"GET", b"/health", many[: MAX_HEADER_FIELDS - 1])
    assert exchange(service, allowed).status == 200
    _assert_still_serving(service)


def test_each_request_on_a_connection_gets_the_whole_head_limit(service: RunningService) -> None:
    """The count starts again for every request: a keep-alive connection, pipelined."""
    pad = (b"X-Pad", b"a" * (MAX_HEAD_BYTES * 3 // 4))
    one = _request(b"GET", b"/health", [pad])
    with _connect(service, cert=False) as sock:
        sock.sendall(one + one + one)
        rest = b""
        for _ in range(3):
            answer, rest = _read_answer(sock, rest)
            assert answer.status == 200


def test_pipelined_answers_come_whole_and_in_order_to_a_client_that_reads_late(
    service: RunningService,
) -> None:
    """Forty requests sent at once, small and large answers alternating, read only after
    the server has had time to fill the connection's buffers: each answer whole, in the
    order asked (the server gathers each turn's writes into one, and sends large answers
    at once so that flow control holds the rest back)."""
    small = _request(b"GET", b"/health", [])
    large = _request(b"GET", b"/openapi.json", [])
    asked = [large if i % 3 == 1 else small for i in range(40)]
    with _connect(service, cert=False) as sock:
        sock.sendall(b"".join(asked))
        time.sleep(0.5)  # the server answers meanwhile, until its buffers are full
        rest = b""
        for request in asked:
            answer, rest = _read_answer(sock, rest)
            assert answer.status == 200
            if request is large:
                assert "/v1/signals" in json.loads(answer.body)["paths"]
                assert len(answer.body) > 64 * 1024  # past what one turn gathers
            else:
                assert json.loads(answer.body) == {"status": "ok"}
        assert rest == b""


def test_a_large_body_in_the_same_read_as_the_head_is_not_taken_for_header(
    service: RunningService,
) -> None:
    # The index's limit (the key holder's is under the head limit: no such body there).
    body = INDEX.body()[:-1] + b" " * (MAX_HEAD_BYTES + 1000) + b"}"  # JSON whitespace
    assert MAX_HEAD_BYTES < len(body) < MAX_BODY
    with _connect(service, cert=True) as sock:
        sock.sendall(_post(body))  # one write: head and body arrive together
        answer, _ = _read_answer(sock)
    assert answer.status == INDEX.served, answer.body


# --- Framing the parser refuses ----------------------------------------------------------------


@on_both
@pytest.mark.parametrize(
    "headers",
    [
        [(b"Content-Length", b"abc")],
        [(b"Content-Length", b"-1")],
        [(b"Content-Length", b"1, 2")],
        [(b"Content-Length", b"5"), (b"Content-Length", b"6")],
        [(b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")],
        [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"5")],
        [(b"Transfer-Encoding", b"gzip, chunked, identity")],
    ],
    ids=["letters", "negative", "list", "twice", "CL+TE", "TE+CL", "TE-not-last"],
)
def test_malformed_framing_is_a_problem_json_400(
    service: RunningService, target: Target, headers: list[tuple[bytes, bytes]]
) -> None:
    data = _request(b"POST", target.path, [(b"Content-Type", b"application/json"), *headers])
    answer = exchange(service, data + b"0\r\n\r\n", cert=True, target=target)
    assert answer.status == 400
    assert answer.problem()["type"] == "urn:vir:problem:malformed-http"
    assert answer.closed
    _assert_still_serving(service, target)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET /health HTTP/9.9\r\n\r\n",
        b"GET /health HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n",
    ],
    ids=["binary", "version", "field-name", "nul-in-value"],
)
def test_an_unparseable_request_is_a_problem_json_400(service: RunningService, data: bytes) -> None:
    answer = exchange(service, data)
    assert answer.status == 400
    assert answer.problem()["type"] == "urn:vir:problem:malformed-http"


# --- Bodies ------------------------------------------------------------------------------------


def _chunked(body: bytes, size: int = 8192) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@on_both
def test_a_chunked_body_over_the_limit_is_413(service: RunningService, target: Target) -> None:
    body = b'{"' + target.field.encode() + b'": ["' + b"A" * target.max_body + b'"]}'
    head = [(b"Content-Type", b"application/json"), (b"Transfer-Encoding", b"chunked")]
    data = _request(b"POST", target.path, head, _chunked(body))
    answer = exchange(service, data, cert=True, target=target)
    assert answer.status == 413
    assert answer.problem()["type"] == "urn:vir:problem:body-too-large"


@on_both
def test_a_chunked_body_under_the_limit_is_served(service: RunningService, target: Target) -> None:
    head = [(b"Content-Type", b"application/json"), (b"Transfer-Encoding", b"chunked")]
    data = _request(b"POST", target.path, head, _chunked(target.body(), 7))
    answer = exchange(service, data, cert=True, target=target)
    assert answer.status == target.served, answer.body


@on_both
def test_a_declared_length_over_the_limit_is_413_without_the_body(
    service: RunningService, target: Target
) -> None:
    length = b"%d" % (target.max_body + 1)
    head = [(b"Content-Type", b"application/json"), (b"Content-Length", length)]
    answer = exchange(service, _request(b"POST", target.path, head), cert=True, target=target)
    assert answer.status == 413
    assert answer.problem()["type"] == "urn:vir:problem:body-too-large"
    # One byte less is read and reaches validation (an empty body: 422, not 413).
    head = [(b"Content-Type", b"application/json"), (b"Content-Length", b"2")]
    small = exchange(service, _request(b"POST", target.path, head, b"{}"), cert=True, target=target)
    assert small.status == 422


@on_both
def test_json_nested_20000_deep_is_refused_before_it_is_parsed(
    service: RunningService, target: Target
) -> None:
    # As deep as the body limit allows, up to 20,000 (the key holder's limit is lower).
    arrays = min(20_000, target.max_body // 2 - 1)
    objects = min(10_000, (target.max_body - 1) // 6)
    assert min(arrays, objects) > 10 * MAX_JSON_DEPTH
    for deep in (b"[" * arrays + b"]" * arrays, b'{"a":' * objects + b"1" + b"}" * objects):
        assert len(deep) <= target.max_body
        answer = exchange(service, _post(deep, target=target), cert=True, target=target)
        assert answer.status == 400
        problem = answer.problem()
        assert problem["type"] == "urn:vir:problem:json-too-deep"
        assert "nest" in str(problem["detail"])
    _assert_still_serving(service, target)


@on_both
def test_nesting_at_the_limit_reaches_validation_and_one_more_does_not(
    service: RunningService, target: Target
) -> None:
    def nested(depth: int) -> bytes:
        # The object is level 1 and the array level 2: depth - 2 more levels inside.
        inner = b"[" * (depth - 2) + b"]" * (depth - 2)
        return b'{"' + target.field.encode() + b'": [' + inner + b"]}"

    def post(body: bytes) -> Answer:
        return exchange(service, _post(body, target=target), cert=True, target=target)

    at_limit = post(nested(MAX_JSON_DEPTH))
    assert at_limit.status == 422  # parsed, then refused by the schema
    assert at_limit.problem()["type"] == "urn:vir:problem:invalid-input"
    over = post(nested(MAX_JSON_DEPTH + 1))
    assert over.status == 400
    assert over.problem()["type"] == "urn:vir:problem:json-too-deep"


# --- What a body is: JSON in UTF-8 ---------------------------------------------------------
# Before: a body that is not UTF-8 got a bare 400 "There was an error parsing the body"
# (type http-400, title "Error"), and a body of another media type 422 on field "body".


def _with_type(body: bytes, media: bytes, target: Target) -> bytes:
    head = [(b"Content-Type", media), (b"Content-Length", b"%d" % len(body))]
    return _request(b"POST", target.path, head, body)


@on_both
@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{",  # a UTF-16 byte order mark: json.loads would guess UTF-16
        '{"local_ref": "x"}'.encode("utf-16"),  # JSON, but not in UTF-8
        b'{"local_ref": "\xe9"}',  # Latin-1
        b'{"local_ref": "\xed\xa0\x80"}',  # an encoded surrogate: not UTF-8 either
    ],
    ids=["ff-fe", "utf-16", "latin-1", "surrogate"],
)
def test_a_body_that_is_not_utf8_is_malformed_json(
    service: RunningService, target: Target, body: bytes
) -> None:
    answer = exchange(service, _post(body, target=target), cert=True, target=target)
    assert answer.status == 400
    problem = answer.problem()
    assert problem["type"] == "urn:vir:problem:malformed-json"
    assert problem["title"] == "Malformed JSON"
    assert "UTF-8" in str(problem["detail"])
    # The same as any other body that is no JSON.
    other = exchange(service, _post(b"{not json", target=target), cert=True, target=target)
    assert (other.status, other.problem()["type"]) == (400, problem["type"])


@on_both
@pytest.mark.parametrize(
    "media", [b"text/plain", b"application/x-www-form-urlencoded", b"application/xml"]
)
def test_a_body_of_another_media_type_is_415(
    service: RunningService, target: Target, media: bytes
) -> None:
    answer = exchange(service, _with_type(target.body(), media, target), cert=True, target=target)
    assert answer.status == 415
    problem = answer.problem()
    assert problem["type"] == "urn:vir:problem:unsupported-media-type"
    assert "application/json" in str(problem["detail"])
    _assert_still_serving(service, target)


@on_both
def test_a_body_without_a_media_type_is_415(service: RunningService, target: Target) -> None:
    """FastAPI does not parse a body that names no media type: it answered 422 "body:
    input should be a valid dictionary", as if the client had sent something else."""
    body = target.body()
    data = _request(b"POST", target.path, [(b"Content-Length", b"%d" % len(body))], body)
    answer = exchange(service, data, cert=True, target=target)
    assert answer.status == 415
    problem = answer.problem()
    assert problem["type"] == "urn:vir:problem:unsupported-media-type"
    assert "application/json" in str(problem["detail"])


@on_both
@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_no_json(
    service: RunningService, target: Target, constant: bytes
) -> None:
    """Python's json reads them; RFC 8259 has no such values: malformed JSON (400), not a
    422 about the field's type."""
    body = b'{"epoch": ' + constant + b"}"
    answer = exchange(service, _post(body, target=target), cert=True, target=target)
    assert answer.status == 400
    problem = answer.problem()
    assert problem["type"] == "urn:vir:problem:malformed-json"
    assert constant.lstrip(b"-").decode() in str(problem["detail"])


@on_both
def test_json_media_types_are_parsed(service: RunningService, target: Target) -> None:
    for media in (b"application/json; charset=utf-8", b"APPLICATION/JSON"):
        data = _with_type(target.body(), media, target)
        answer = exchange(service, data, cert=True, target=target)
        assert answer.status == target.served, (media, answer.body)
    # No body, no media type to judge: the schema says what is missing.
    empty = exchange(service, _with_type(b"", b"text/plain", target), cert=True, target=target)
    assert empty.status == 422


@on_both
def test_brackets_inside_strings_do_not_count_as_nesting(
    service: RunningService, target: Target
) -> None:
    body = json.dumps({**target.document(), "x": "[" * 5000}).encode()
    answer = exchange(service, _post(body, target=target), cert=True, target=target)
    assert answer.status == 422  # the unknown field "x", not the brackets
    problem = answer.problem()
    assert problem["type"] == "urn:vir:problem:invalid-input"
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [e["field"] for e in errors] == ["x"]


# --- Both parsers, in process: httptools (what vir serve uses) and the h11 fallback ----------


def _feed(protocol_class: type[asyncio.Protocol], data: bytes, piece: int) -> RecordingTransport:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a refused request must not reach the application")

    async def run() -> RecordingTransport:
        config = uvicorn.Config(app, log_config=None, lifespan="off")
        protocol: Any = protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        for start in range(0, len(data), piece):
            if transport.closed:
                break
            protocol.data_received(data[start : start + piece])
        return transport

    return asyncio.run(run())


PARSERS = [LimitedHttpToolsProtocol, LimitedH11Protocol]


@pytest.mark.parametrize("protocol_class", PARSERS, ids=["httptools", "h11"])
@pytest.mark.parametrize(
    ("data", "status", "slug"),
    [
        (_request(b"GET", b"/", [(b"X-Big", b"a" * (8 * 1024 * 1024))]), 431, "headers-too-large"),
        (
            _request(b"GET", b"/", [(b"X-H%d" % i, b"v") for i in range(MAX_HEADER_FIELDS)]),
            431,
            "headers-too-large",
        ),
        (_request(b"POST", b"/", [(b"Content-Length", b"abc")]), 400, "malformed-http"),
        (
            _request(
                b"POST", b"/", [(b"Content-Length", b"1"), (b"Transfer-Encoding", b"chunked")]
            ),
            400,
            "malformed-http",
        ),
    ],
    ids=["8MB-header", "too-many-fields", "bad-length", "CL+TE"],
)
def test_both_parsers_refuse_with_problem_json(
    protocol_class: type[asyncio.Protocol], data: bytes, status: int, slug: str
) -> None:
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))  # now: the request id is the moment's

    handler = Lines()
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        transport = _feed(protocol_class, data, 64 * 1024)
    finally:
        logger.removeHandler(handler)
    assert transport.closed
    head, _, body = transport.written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"] == "urn:vir:problem:" + slug
    # Every response carries X-Request-Id (docs/operations-metrics.md), in Observe's
    # format, and the refusal's log line carries the same id.
    ids = [
        v
        for n, _, v in (f.partition(b": ") for f in head.split(b"\r\n")[1:])
        if n.lower() == b"x-request-id"
    ]
    assert len(ids) == 1
    request_id = ids[0].decode()
    assert str(uuid.UUID(request_id)) == request_id
    logged = [json.loads(line) for line in lines]
    refused = [line for line in logged if line["message"].startswith("HTTP request refused")]
    assert [line["request_id"] for line in refused] == [request_id]


# --- The body check itself, for servers that pass on what vir's protocol would refuse -------


def _through_limit(
    headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]
) -> tuple[int, dict[str, Any] | None, bytes]:
    """Run one request through ``BodySizeLimit`` (64 KiB): the status, what the application
    received (None if it was not called) and the answer's body."""
    reached: dict[str, Any] = {}
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.update(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(BodySizeLimit(app, MAX_BODY)(scope, receive, send))
    return sent[0]["status"], reached or None, sent[1]["body"]


@pytest.mark.parametrize("length", [b"abc", b"-1", b" 5", b"\xd9\xa5"])
def test_a_malformed_content_length_never_reaches_the_application(length: bytes) -> None:
    status, reached, body = _through_limit([(b"content-length", length)], [])
    assert (status, reached) == (400, None)
    assert json.loads(body)["type"] == "urn:vir:problem:malformed-http"


def test_a_streamed_body_is_counted_and_handed_on_whole() -> None:
    piece = {"type": "http.request", "body": b"x" * 1024, "more_body": True}
    status, reached, body = _through_limit([], [dict(piece) for _ in range(65)])
    assert (status, reached) == (413, None)
    assert json.loads(body)["type"] == "urn:vir:problem:body-too-large"
    pieces = [dict(piece) for _ in range(3)] + [{"type": "http.request", "body": b"]"}]
    status, reached, _ = _through_limit([(b"content-type", b"application/json")], pieces)
    assert status == 200 and reached is not None
    assert (reached["body"], reached["more_body"]) == (b"x" * 3072 + b"]", False)
