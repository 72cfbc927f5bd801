"""Run ``python -m vir...`` commands for the tests: forked from a pre-imported
interpreter (``support.zygote``), or executed afresh.

``popen`` and ``run`` take what ``subprocess.Popen`` and ``subprocess.run`` take for the
tests' commands and give back the same kinds of objects. A command of the form
``[sys.executable, "-m", "vir.<module>", ...]`` is forked from this worker's fork server,
which saves the 3 s of CPU a fresh interpreter spends importing vir (most of what the
suite's hundreds of servers and commands cost). Anything else, and every command when
``VIR_TEST_LAUNCH=exec``, runs through ``subprocess`` as before. Either way the command
is a process of its own with its own working directory, environment, standard streams
and exit code. A test that must see a fresh interpreter (its command line or initial
environment in /proc, or the entry point itself) passes ``fresh=True`` to ``popen`` or
calls ``subprocess`` directly.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

MODE_ENV = "VIR_TEST_LAUNCH"
_ZYGOTE = Path(__file__).with_name("zygote.py")
_lock = threading.Lock()
_server: tuple[subprocess.Popen[bytes], str] | None = None


def forking() -> bool:
    return os.environ.get(MODE_ENV, "fork") != "exec"


def _is_vir_module(args: Sequence[str]) -> bool:
    """Whether ``args`` is ``[sys.executable, "-m", "vir..." ...]``."""
    if len(args) < 3 or args[0] != sys.executable or args[1] != "-m":
        return False
    return str(args[2]) == "vir" or str(args[2]).startswith("vir.")


def _same_code(env: Mapping[str, str] | None) -> bool:
    """Whether a command run with ``env`` imports the vir the fork server preloaded: one
    with another ``PYTHONPATH`` (``bench`` measuring another checkout's design,
    ``harness.design_env``) would import other code, so it is executed afresh."""
    return env is None or env.get("PYTHONPATH") == os.environ.get("PYTHONPATH")


def _socket_path() -> str:
    """This process's fork server, started on first use (the PID it runs for is checked,
    so a forked child never talks to its parent's)."""
    global _server
    with _lock:
        if (
            _server is not None
            and _server[0].poll() is None
            and _server[1].endswith(f"-{os.getpid()}")
        ):
            return _server[1]
        folder = tempfile.mkdtemp(prefix="vir-zygote-")
        path = os.path.join(folder, f"s-{os.getpid()}")
        process = subprocess.Popen(
            [sys.executable, str(_ZYGOTE), path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=folder,
        )
        assert process.stdout is not None
        ready = process.stdout.readline()
        process.stdout.close()
        if ready != b"ready\n":
            raise RuntimeError("the tests' fork server did not start")
        _server = (process, path)
        atexit.register(_stop, process, folder)
        return path


def _stop(process: subprocess.Popen[bytes], folder: str) -> None:
    if process.stdin is not None:
        process.stdin.close()  # the server stops its children and ends
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(folder, ignore_errors=True)


def _fd(stream: Any, default: int) -> tuple[int, int | None]:
    """The file descriptor for ``stream`` (None, DEVNULL, PIPE, STDOUT, a file or an fd)
    and, for PIPE, the parent's end."""
    if stream is None:
        return os.dup(default), None
    if stream == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_RDWR), None
    if stream == subprocess.PIPE:
        read, write = os.pipe()
        return (read, write) if default == 0 else (write, read)
    if isinstance(stream, int):
        return os.dup(stream), None
    return os.dup(stream.fileno()), None


def _umask() -> int:
    """This process's umask, which a child it started would inherit."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class Launched(subprocess.Popen[bytes]):
    """A forked command, with what the tests use of ``subprocess.Popen``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        text: bool = False,
        start_new_session: bool = False,
    ) -> None:
        # Popen.__init__ would start a process; only what its methods read is set here.
        self.args = list(args)
        self.returncode: int | None = None
        self._child_created = False
        self.stdin = self.stdout = self.stderr = None
        child_fds: list[int] = []
        parent_ends: list[int | None] = []
        for stream, default in ((stdin, 0), (stdout, 1), (stderr, 2)):
            if default == 2 and stderr == subprocess.STDOUT:
                child_fds.append(os.dup(child_fds[1]))
                parent_ends.append(None)
                continue
            fd, parent = _fd(stream, default)
            child_fds.append(fd)
            parent_ends.append(parent)
        request = {
            "module": args[2],
            "args": [str(a) for a in args[3:]],
            "cwd": str(cwd if cwd is not None else os.getcwd()),
            "env": dict(env if env is not None else os.environ),
            "umask": _umask(),
            "new_session": start_new_session,
        }
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._buffer = b""
        try:
            self._conn.connect(_socket_path())
            socket.send_fds(self._conn, [json.dumps(request).encode() + b"\n"], child_fds)
            self.pid = int(json.loads(self._line() or b"")["pid"])
        finally:
            for fd in child_fds:
                os.close(fd)
        encoding = "utf-8" if text else None
        mode = "w" if text else "wb"
        if parent_ends[0] is not None:
            self.stdin = open(parent_ends[0], mode, encoding=encoding)  # noqa: SIM115
        if parent_ends[1] is not None:
            self.stdout = open(parent_ends[1], mode.replace("w", "r"), encoding=encoding)  # noqa: SIM115
        if parent_ends[2] is not None:
            self.stderr = open(parent_ends[2], mode.replace("w", "r"), encoding=encoding)  # noqa: SIM115

    def _line(self, flags: int = 0) -> bytes | None:
        """The fork server's next line; None when ``flags`` say not to wait and none is
        there yet."""
        while b"\n" not in self._buffer:
            try:
                chunk = self._conn.recv(4096, flags)
            except BlockingIOError:
                return None
            if not chunk:
                raise RuntimeError("the tests' fork server went away")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _ended(self, line: bytes) -> int:
        self.returncode = int(json.loads(line)["returncode"])
        self._conn.close()
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is None:
            line = self._line(socket.MSG_DONTWAIT)
            if line is not None:
                return self._ended(line)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                line = self._line()
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
            finally:
                self._conn.settimeout(None)
            assert line is not None
            return self._ended(line)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        """Write ``input``, read stdout and stderr to the end, wait (as Popen does)."""
        results: dict[int, Any] = {}
        threads = []
        for number, stream in ((1, self.stdout), (2, self.stderr)):
            if stream is not None:

                def read(n: int = number, s: IO[Any] = stream) -> None:
                    results[n] = s.read()
                    s.close()

                threads.append(threading.Thread(target=read, daemon=True))
                threads[-1].start()
        if self.stdin is not None:
            try:
                if input:
                    self.stdin.write(input)
                self.stdin.close()
            except BrokenPipeError:
                pass
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(timeout)
        return results.get(1), results.get(2)

    def __del__(self) -> None:
        pass


def popen(args: Sequence[str], *, fresh: bool = False, **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, **kwargs)``, forked when it is a vir module (see above);
    ``fresh``: executed all the same, for a test that reads the process's command line
    or initial environment in /proc (a forked child shows its fork server's)."""
    if forking() and not fresh and _is_vir_module(args) and _same_code(kwargs.get("env")):
        return Launched(args, **kwargs)
    return subprocess.Popen(args, **kwargs)


def run(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    check: bool = False,
    capture_output: bool = True,
    text: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(args, capture_output=True, text=True, ...)``, forked when it is a
    vir module (see above)."""
    assert capture_output and text, "the tests read a command's output as text"
    if not (forking() and _is_vir_module(args) and _same_code(env)):
        return subprocess.run(
            args,
            cwd=cwd,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )
    process = Launched(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    code = process.wait()
    if check and code != 0:
        raise subprocess.CalledProcessError(code, list(args), out, err)
    return subprocess.CompletedProcess(list(args), code, out, err)
