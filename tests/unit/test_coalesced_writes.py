"""What one turn of the event loop writes leaves as one write: a response's head and body
are one TLS record and one system call, never later than the end of that turn, and a close
or a large response is not held back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from support.transports import RecordingTransport
from uvicorn.server import ServerState

from vir.server.tls import CoalescedWrites, LimitedH11Protocol, LimitedHttpToolsProtocol


async def _turn() -> None:
    await asyncio.sleep(0)


def test_one_turn_is_one_write_sent_at_its_end() -> None:
    async def run() -> None:
        real = RecordingTransport()
        gathered = CoalescedWrites(real, asyncio.get_running_loop())
        gathered.write(b"head\r\n\r\n")
        gathered.write(bytearray(b"bo"))
        gathered.write(memoryview(b"dy"))
        assert real.writes == []
        assert gathered.get_write_buffer_size() == 7 + 12
        await _turn()
        assert real.writes == [b"head\r\n\r\nbody"]
        gathered.write(b"next")
        await _turn()
        assert real.writes == [b"head\r\n\r\nbody", b"next"]
        await _turn()
        assert len(real.writes) == 2

    asyncio.run(run())


def test_close_sends_what_waits_first_and_abort_drops_it() -> None:
    async def run() -> None:
        real = RecordingTransport()
        gathered = CoalescedWrites(real, asyncio.get_running_loop())
        gathered.write(b"last words")
        gathered.close()
        assert (real.writes, real.closed) == ([b"last words"], True)
        await _turn()  # the turn's own send finds nothing left to send
        assert real.writes == [b"last words"]

        real = RecordingTransport()
        gathered = CoalescedWrites(real, asyncio.get_running_loop())
        gathered.write(b"never sent")
        gathered.abort()
        await _turn()
        assert (real.writes, real.aborted) == ([], True)

    asyncio.run(run())


def test_nothing_is_written_to_a_transport_that_closed_meanwhile() -> None:
    async def run() -> None:
        real = RecordingTransport()
        gathered = CoalescedWrites(real, asyncio.get_running_loop())
        gathered.write(b"too late")
        real.close()  # the peer went away before the turn ended
        await _turn()
        assert real.writes == []

    asyncio.run(run())


def test_a_large_response_is_not_gathered_past_the_limit() -> None:
    async def run() -> None:
        real = RecordingTransport()
        gathered = CoalescedWrites(real, asyncio.get_running_loop())
        piece = b"x" * (CoalescedWrites.GATHER_LIMIT // 4)
        for _ in range(9):
            gathered.write(piece)
        # Sent as soon as the limit is reached, so the transport's flow control sees it.
        assert [len(w) for w in real.writes] == [CoalescedWrites.GATHER_LIMIT] * 2
        await _turn()
        assert b"".join(real.writes) == piece * 9

    asyncio.run(run())


def test_everything_else_is_the_transport_s_own() -> None:
    async def run() -> None:
        real = RecordingTransport()
        gathered = CoalescedWrites(real, asyncio.get_running_loop())
        assert gathered.get_extra_info("peername") == ("127.0.0.1", 50000)
        assert not gathered.is_closing()

    asyncio.run(run())


@pytest.mark.parametrize(
    "protocol_class", [LimitedHttpToolsProtocol, LimitedH11Protocol], ids=["httptools", "h11"]
)
def test_a_served_response_is_one_write(protocol_class: type[asyncio.Protocol]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    async def run() -> RecordingTransport:
        config = uvicorn.Config(app, log_config=None, lifespan="off")
        config.load()
        protocol: Any = protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /health HTTP/1.1\r\nHost: vir\r\n\r\n")
        for _ in range(20):
            await _turn()
        protocol.connection_lost(None)
        return transport

    transport = asyncio.run(run())
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b'{"ok":true}'
