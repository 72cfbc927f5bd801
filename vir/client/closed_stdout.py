"""A command whose standard output is closed before it is done (``vir-client matches
... | head -5``) ends quietly: no ``BrokenPipeError`` traceback, and the exit status a
shell reports for a process that SIGPIPE ended (141), as ``cat`` or ``grep`` would.
Python ignores SIGPIPE, so the closed pipe reaches it as that exception instead.
Used by both entry points, ``vir-client`` and ``vir``."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")

CLOSED_STDOUT = 128 + 13  # 128 + SIGPIPE


def quiet_when_stdout_closes(main: Callable[P, int]) -> Callable[P, int]:
    """``main``, returning ``CLOSED_STDOUT`` without a word when its standard output
    is closed under it."""

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            code = main(*args, **kwargs)
            sys.stdout.flush()  # what is still buffered: the pipe may be closed already
        except BrokenPipeError:
            _discard_stdout()
            return CLOSED_STDOUT
        return code

    return run


def _discard_stdout() -> None:
    """Point standard output at /dev/null: Python flushes it once more at exit, and that
    flush would fail again ("Exception ignored ... BrokenPipeError")."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
