"""A worker of ``vir serve`` / ``vir keyholder serve`` with several processes
(vir.server.workers) and a terminal's Ctrl-C."""

from __future__ import annotations

import signal
import socket

from vir.server import workers


def test_the_interrupt_uvicorn_raises_again_after_stopping_interrupts_nothing() -> None:
    """uvicorn, once stopped gracefully, raises the signals it caught again. A worker
    stops on the parent's SIGTERM, so a SIGINT raised again must not become a
    KeyboardInterrupt in whatever the main thread runs next: in a finaliser that was a
    traceback in the key holder's log (CI, stop 45,
    ``test_ctrl_c_at_a_terminal_stops_every_worker_cleanly``)."""
    ran_on: list[bool] = []

    def serve(_sock: socket.socket) -> None:
        signal.raise_signal(signal.SIGINT)  # as uvicorn's capture_signals does at its end
        ran_on.append(True)

    previous = signal.getsignal(signal.SIGINT)
    try:
        with socket.socket() as sock:
            assert workers._child(sock, serve) == 0
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ran_on == [True]
