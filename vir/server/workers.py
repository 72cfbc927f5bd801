"""Several server processes on one port (``VIR_KEYHOLDER_WORKERS``, ``VIR_WORKERS``).

The key holder's work is scalar multiplication in libsodium plus the Python around it
(HTTP, TLS, the audit entry), the index's the Python of a registration; one process
runs that Python on one core at a time. With
``workers`` > 1 the parent binds one listening socket per worker to the port
(SO_REUSEPORT), forks that many children, each of which keeps its own socket, builds
its own application (its own database connections, key custody and HSM session,
integrator, background jobs: nothing is shared across the fork but the sockets, and
a private folder where the workers give each other their /metrics figures,
vir.api.metrics_workers) and serves the connections the kernel hands it. What must
hold across processes already lives in the database: the rate limit and quota
buckets, the audit log.

One socket per worker, not one shared: the kernel then spreads new connections over
the workers by their addresses. On a shared socket whichever worker wakes first
accepts every connection waiting (asyncio accepts in a loop), so a burst of
keep-alive connections lands on one worker while the other idles. SO_REUSEPORT
admits only sockets of the same user to the port.

The parent does nothing but wait. SIGTERM or SIGINT is passed on to every child as
SIGTERM (each finishes its requests in flight, as one server would); when a child
stops on its own (it failed to start, or crashed), the others are stopped too and the
parent exits non-zero, so that whatever supervises the service sees one failure, not
a half-size service that still looks alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from types import FrameType

from vir.domain.errors import VirError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one port (SO_REUSEPORT), one for each worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    found: list[socket.socket] = []
    try:
        for _ in range(count):
            found.append(
                socket.create_server((host, port), family=family, backlog=2048, reuse_port=True)
            )
    except BaseException:
        for sock in found:
            sock.close()
        raise
    return found


def serve_forked(socks: list[socket.socket], serve: Callable[[socket.socket], None]) -> int:
    """Run ``serve(sock)`` for each of ``socks`` in a child process of its own; the exit
    status for the parent: 0 when every child stopped cleanly after a stop signal, else
    the first failing child's status (1 for one killed by a signal, or that stopped
    unasked). A child closes the other children's sockets (a socket left open where
    nobody accepts would be handed connections that no one answers), and the parent
    closes all of them once every child has its own."""
    children: set[int] = set()
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # Passed on as SIGTERM whatever came: systemd may send SIGTERM to every process
        # of the service, and a terminal's Ctrl-C sends SIGINT to the whole process
        # group; uvicorn stops gracefully on any number of SIGTERMs but aborts on a
        # second SIGINT.
        nonlocal stopping
        stopping = True
        _signal_all(children, signal.SIGTERM)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        for own in socks:
            pid = os.fork()
            if pid == 0:  # the child: never returns into the parent's code
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
                for other in socks:
                    if other is not own:
                        other.close()
                os._exit(_child(own, serve))
            children.add(pid)
        if stopping:  # asked to stop while the last workers were being started
            _signal_all(children, signal.SIGTERM)
        for sock in socks:
            sock.close()  # each child holds its own
        status = 0
        while children:
            try:
                pid, waited = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            children.discard(pid)
            code = os.waitstatus_to_exitcode(waited)
            if stopping and -code in STOP_SIGNALS:
                code = 0  # uvicorn stops gracefully, then dies of the signal it was sent
            elif not stopping:
                print(
                    f"vir: worker {pid} stopped (exit status {code}); stopping the others",
                    file=sys.stderr,
                    flush=True,
                )
                stopping = True
                _signal_all(children, signal.SIGTERM)
                code = code or 1
            status = status or code
        return 1 if status < 0 else status  # < 0: killed by that signal
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _child(sock: socket.socket, serve: Callable[[socket.socket], None]) -> int:
    # A worker stops on the SIGTERM the parent passes on, whatever the parent got. Once
    # uvicorn has stopped gracefully it raises the signals it caught again: a terminal's
    # Ctrl-C (SIGINT, sent to the whole process group) then became a KeyboardInterrupt
    # wherever the main thread happened to be, and in a finaliser that is a traceback in
    # the log ("Exception ignored"). Ignored here, before uvicorn takes the signal over
    # while it serves and after it gives it back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sock)
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 1
    except VirError as error:  # as vir.cli reports it: the detail, no traceback
        print(f"vir: {error.detail}", file=sys.stderr)
        return 2
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _signal_all(children: set[int], signum: int) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
