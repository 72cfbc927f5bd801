"""The client's own sending (vir.client.transport) facing a hostile or broken server:
an impostor certificate, an answer that is not HTTP, a connection dropped mid-request.
Each is an httpx error the client's callers already handle; none repeats what the
server sent, and none leaves a connection behind to be used again."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.tls_echo import Files, Server, make_files, serving
from vir.client import VirClient, transport


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return make_files(tmp_path_factory.mktemp("transport-hostile"))


def client_for(files: Files, url: str) -> VirClient:
    return VirClient(url, files.ca, files.client_cert, files.client_key)


@pytest.fixture
def server(files: Files) -> Iterator[Server]:
    with serving(files) as running:
        yield running


def test_a_server_with_a_certificate_of_another_ca_is_refused(
    files: Files, tmp_path_factory: pytest.TempPathFactory
) -> None:
    impostor = make_files(tmp_path_factory.mktemp("impostor"))
    # The impostor's server certificate, trusting our client's CA so that only the
    # client's check can refuse it.
    with serving(impostor, client_ca=files.ca) as running:
        with client_for(files, running.url) as client:
            assert client._senders
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                client.request("GET", "/json")
        assert running.received == []


def test_an_answer_that_is_not_http_is_a_protocol_error_without_its_bytes(
    files: Files, server: Server
) -> None:
    with client_for(files, server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError) as raised:
            client.request("GET", "/garbage")
        assert "GARBAGE" not in str(raised.value)
        assert client.request("GET", "/json").json()["path"] == "/json"
    assert len(server.connections()) == 2  # the broken one was not used again


def test_a_server_that_hangs_up_without_answering(files: Files, server: Server) -> None:
    with client_for(files, server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            client.request("POST", "/hang-up", {"local_ref": "x"})
        assert client.request("GET", "/json").json()["path"] == "/json"
    assert len(server.connections()) == 2


def test_a_key_holder_url_over_plain_http_is_not_sent(files: Files) -> None:
    client = client_for(files, "https://127.0.0.1:9")
    try:
        sender = next(iter(client._senders.values()))
        with pytest.raises(httpx.UnsupportedProtocol):
            sender.send(httpx.Request("GET", "http://127.0.0.1:9/json"))
    finally:
        client.close()


def test_an_informational_answer_before_the_answer_is_skipped(files: Files, server: Server) -> None:
    with client_for(files, server.url) as client:
        response = client.request("GET", "/early-hints")
        assert response.status_code == 200 and response.json()["path"] == "/early-hints"
        assert "link" not in response.headers  # the 103's header is not the answer's


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/many-headers", "over 100 headers"),
        ("/large-header", "over 100 headers or 65536 bytes"),
        ("/large-body", "more than 1000 bytes of body"),
        ("/large-chunks", "more than 1000 bytes of body"),
        ("/truncated", "before its answer was complete"),
        ("/switch", "switched protocols"),
    ],
)
def test_an_answer_over_a_bound_or_cut_short_is_refused_and_its_connection_dropped(
    files: Files, server: Server, monkeypatch: pytest.MonkeyPatch, path: str, found: str
) -> None:
    """A server cannot make the client hold more than the bounds (here the body's set to
    1,000 bytes), nor leave it a connection in an unknown state."""
    monkeypatch.setattr(transport, "MAX_BODY", 1000)
    with client_for(files, server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match=found) as raised:
            client.request("GET", path)
        assert "bbbb" not in str(raised.value) and "yyyy" not in str(raised.value)
        assert client.request("GET", "/json").json()["path"] == "/json"
    assert len(server.connections()) == 2


def test_bytes_after_the_answer_leave_its_connection_unused(files: Files, server: Server) -> None:
    with client_for(files, server.url) as client:
        assert client.request("GET", "/more").json()["path"] == "/more"
        assert client.request("GET", "/json").json()["path"] == "/json"
    assert len(server.connections()) == 2


def test_an_answer_that_ends_where_the_server_closes_is_read_whole(
    files: Files, server: Server
) -> None:
    with client_for(files, server.url) as client:
        assert client.request("GET", "/until-close").json()["path"] == "/until-close"
        assert client.request("GET", "/json").json()["path"] == "/json"
    assert len(server.connections()) == 2


@pytest.mark.parametrize(
    "headers", [{"X-Injected": "a\r\nX-Evil: 1"}, {"X-Nul": "a\x00b"}, {"Bad Name": "x"}]
)
def test_a_header_http_cannot_carry_is_refused_before_anything_is_sent(
    files: Files, server: Server, headers: dict[str, str]
) -> None:
    """httpx makes such a request; the client's sending refuses it, naming no value."""
    with client_for(files, server.url) as client:
        sender = next(iter(client._senders.values()))
        request = client._http.build_request("GET", "/json", headers=headers)
        with pytest.raises(httpx.LocalProtocolError, match="cannot carry") as raised:
            sender.send(request)
        assert "Evil" not in str(raised.value)
    assert server.received == []
