"""The fork server behind ``support.launch``: imports vir once, then forks a process per
``python -m vir...`` command the tests run.

A vir process spends about 3 s of CPU on this 2-core machine importing its modules
before it does anything (FastAPI, SQLAlchemy, alembic, pydantic, cryptography), and the
suite starts a few hundred of them. Here they are imported once; each command is a
child forked from this process. The child is a process of its own like any other: it
takes the command's working directory, environment, umask and standard streams, runs
the module as ``python -m`` would (``runpy``, as ``__main__``) and ends as the
interpreter does (its exit code; non-daemon threads joined, ``atexit``, streams
flushed). vir reads its settings when a command runs, never at import, so importing
before the environment is set changes nothing (``tests/unit/test_launch.py`` checks
that).

Protocol, on a Unix socket, one connection per command: the client sends one line of
JSON (``module``, ``args``, ``cwd``, ``env``, ``umask``, ``new_session``) with three file
descriptors (stdin, stdout, stderr) attached; the server answers ``{"pid": N}`` when the
child is forked and ``{"returncode": R}`` when it has ended (negative: the signal that
ended it, as ``subprocess`` reports). The server ends, and stops its children, when the
process that started it closes its standard input.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import io
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
import warnings
from typing import Any

# What the tests run, imported once. A module left out here is imported by the child
# that needs it, as a fresh interpreter would: slower, never wrong.
PRELOAD = (
    "vir.cli",
    "vir.cli_keyholder",
    "vir.cli_delivery",
    "vir.server.run",
    "vir.server.devrun",
    "vir.services.devsetup",
    "vir.keyholder.devsetup",
    "vir.portal.devsetup",
    "vir.portal.app",
    "vir.devidp",
    "vir.client.cli",
    "vir.store.migrate",
    "vir.delivery.worker",
)
MESSAGE_LIMIT = 1 << 20


def _preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _address = socket.recv_fds(conn, MESSAGE_LIMIT, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(MESSAGE_LIMIT)
        if not more:
            raise ConnectionError("request cut short")
        data += more
    return json.loads(data), list(fds)


def _child(request: dict[str, Any], fds: list[int], became: int) -> int:
    """In the forked child: become the command (then say so on ``became``), run it, and
    return its exit code."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(
            number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
        )
    if request.get("new_session"):
        os.setsid()
    os.umask(int(request["umask"]))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    handlers = sys.modules.get("wsgiref.handlers")
    if handlers is not None:  # it copied the environment when imported (WSGI's environ)
        handlers.BaseHandler.os_environ = handlers.read_environ()  # type: ignore[attr-defined]
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=unbuffered
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )
    sys.argv = ["-m", *request["args"]]
    os.write(became, b"!")
    os.close(became)
    # runpy warns that the module was imported before it runs as __main__: here it was,
    # on purpose (the preload); a fresh interpreter would print no such line.
    warnings.filterwarnings(
        "ignore", message=".* found in sys.modules after import of package", category=RuntimeWarning
    )
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as end:
        if end.code is None:
            code = 0
        elif isinstance(end.code, int):
            code = end.code
        else:
            print(end.code, file=sys.stderr)
            code = 1
    except BaseException:  # what an uncaught exception does to an interpreter
        traceback.print_exc()
        code = 1
    return code


def _exit(code: int) -> None:
    """End the child as the interpreter ends (non-daemon threads joined, ``atexit``, the
    standard streams flushed), without tearing down every module and object: that takes
    over a second in a process this size and changes nothing the command does."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize calls first
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def serve(path: str) -> int:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    _preload()
    # What is imported now stays out of the collector's way: a child that collects does
    # not touch (and so copy) the pages it shares with this process.
    gc.collect()
    gc.freeze()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    running: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    print("ready", flush=True)
    while True:
        for key, _events in selector.select():
            if key.data == "parent":
                if sys.stdin.buffer.read1(1024):
                    continue
                for pid, _conn in running.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                return 0
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (ConnectionError, ValueError, OSError):
                    conn.close()
                    continue
                # The child says when it has become the command (its directory,
                # environment, umask, streams): only then is its PID handed out.
                ready, became = os.pipe()
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    conn.close()
                    os.close(ready)
                    for pidfd, (_pid, other) in running.items():
                        os.close(pidfd)
                        other.close()
                    _exit(_child(request, fds, became))
                os.close(became)
                os.read(ready, 1)  # nothing read: it died first, and the reaping says so
                os.close(ready)
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                running[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ, "child")
                _send(conn, {"pid": pid})
                continue
            pidfd = key.fd
            pid, conn = running.pop(pidfd)
            selector.unregister(pidfd)
            os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            _send(conn, {"returncode": os.waitstatus_to_exitcode(status)})
            conn.close()


def _send(conn: socket.socket, message: dict[str, int]) -> None:
    with contextlib.suppress(OSError):  # the client has gone; the child is reaped anyway
        conn.sendall(json.dumps(message).encode() + b"\n")


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
