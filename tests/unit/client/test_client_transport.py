"""The client's own sending (vir.client.transport) against a real HTTPS server with
mutual TLS: the same bytes on the wire as httpx sends, connections kept and dropped
when they should be, answers decoded, failures raised as httpx's."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.tls_echo import Files, Server, make_files, serving
from vir.client import VirClient, connection
from vir.client.connection import RetryPolicy


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return make_files(tmp_path_factory.mktemp("transport"))


@pytest.fixture
def server(files: Files) -> Iterator[Server]:
    with serving(files) as running:
        yield running


def client_for(
    files: Files, url: str, timeout: float = 30.0, retry: RetryPolicy | None = None
) -> VirClient:
    return VirClient(
        url, files.ca, files.client_cert, files.client_key, timeout=timeout, retry=retry
    )


def test_the_client_sends_on_its_own_connections(files: Files, server: Server) -> None:
    with client_for(files, server.url) as client:
        assert client._senders, "no proxy in the environment: the client's own sending"


def test_the_wire_is_what_httpx_sends(files: Files, server: Server) -> None:
    """The same method, target, headers and body, sent by httpx itself and by the
    client's transport."""
    body = {"local_ref": "LLN-1", "naam": "é ü", "n": [1, 2]}
    params = {"after": "AQ==", "limit": 5}
    with client_for(files, server.url) as client:
        client.request("POST", "/v1/signals", body, params=params)
        ours = client._senders
        client._senders = {}
        client.request("POST", "/v1/signals", body, params=params)
        client._senders = ours  # closed with the client
    ours, theirs = server.received
    assert (ours.method, ours.target, ours.body) == (theirs.method, theirs.target, theirs.body)
    assert ours.target == "/v1/signals?after=AQ%3D%3D&limit=5"
    assert ours.headers == theirs.headers


def test_one_connection_carries_request_after_request(files: Files, server: Server) -> None:
    with client_for(files, server.url) as client:
        answers = [client.request("GET", f"/json?n={n}").json() for n in range(5)]
    assert [a["path"] for a in answers] == [f"/json?n={n}" for n in range(5)]
    assert len(server.connections()) == 1


def test_a_connection_the_server_closes_is_not_used_again(files: Files, server: Server) -> None:
    with client_for(files, server.url) as client:
        client.request("GET", "/close")  # says Connection: close
        client.request("GET", "/bye")  # closes without saying so
        threading.Event().wait(0.3)  # the server's end of it reaches the client
        client.request("GET", "/json")
    assert len(server.connections()) == 3


@pytest.mark.parametrize("path", ["/gzip", "/chunked"])
def test_compressed_and_chunked_answers_are_read_whole(
    files: Files, server: Server, path: str
) -> None:
    with client_for(files, server.url) as client:
        assert client.request("GET", path).json()["path"] == path
        assert client.request("GET", "/json").json()["path"] == "/json"
    assert len(server.connections()) == 1


def test_a_refused_request_is_sent_again_on_the_same_connection(
    files: Files, server: Server
) -> None:
    waits: list[float] = []
    with client_for(files, server.url, retry=RetryPolicy(max_retries=2, jitter=0)) as client:
        client._sleep = waits.append  # type: ignore[assignment]
        with pytest.raises(Exception, match="429"):
            client.request("GET", "/status", params={"code": 429})
    assert len(server.received) == 3  # the first and two repeats
    assert len(server.connections()) == 1


def test_threads_share_a_client(files: Files, server: Server) -> None:
    with client_for(files, server.url) as client:
        seen: list[str] = []
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for n in range(15):
                    seen.append(client.request("GET", f"/json?t={t}&n={n}").json()["path"])
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert sorted(seen) == sorted(f"/json?t={t}&n={n}" for t in range(6) for n in range(15))
    assert len(server.connections()) <= 6


def test_nothing_listening_is_a_connect_error(files: Files) -> None:
    with serving(files) as gone:
        url = gone.url
    with client_for(files, url) as client, pytest.raises(httpx.ConnectError):
        client.request("GET", "/json")


def test_a_slow_answer_is_a_read_timeout(files: Files, server: Server) -> None:
    with client_for(files, server.url, timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        client.request("GET", "/slow")


def test_with_a_proxy_in_the_environment_httpx_sends(
    files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    with client_for(files, "https://vir.example") as client:
        assert not client._senders
    monkeypatch.setenv("NO_PROXY", "vir.example")
    with client_for(files, "https://vir.example") as client:
        assert client._senders


def test_the_paths_a_client_keeps_joined_are_bounded(
    files: Files, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path joined to the base URL is kept for the next request to it; a client that
    asks for many paths (one per local_ref) keeps at most JOINED_MOST of them (here 8)."""
    monkeypatch.setattr(connection, "JOINED_MOST", 8)
    with client_for(files, server.url) as client:
        for n in (*range(20), 3, 3):
            assert client.request("GET", f"/json/{n}").json()["path"] == f"/json/{n}"
            assert client._urls is not None and 0 < len(client._urls) <= 8
        client.request("GET", "/json/7", params={"after": "AQ=="})
    assert [r.target for r in server.received][-3:] == [
        "/json/3",
        "/json/3",
        "/json/7?after=AQ%3D%3D",
    ]
