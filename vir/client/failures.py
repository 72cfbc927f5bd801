"""How a ``vir-client`` command ends when it cannot do its work: one line on stderr and an
exit code, the same for every command.

A bad argument or input line (``InputError``, named by its field) exits 2, before
anything is sent; a refusal, an unreachable service or a file that cannot be read or
written exits 1. The line is the error's own text, which never holds an identity.
"""

from __future__ import annotations

import sys

import httpx

from vir.client.connection import ClientError
from vir.domain.errors import InputError

# What a command catches and hands to ``failed``.
FAILURES = (InputError, ClientError, OSError, httpx.HTTPError)


def failed(error: InputError | ClientError | OSError | httpx.HTTPError) -> int:
    """Say why on stderr; the exit code: 2 for bad input, 1 for everything else. A closed
    standard output is no failure of the command: raised again, for the entry point to
    end quietly (``closed_stdout``)."""
    if isinstance(error, BrokenPipeError):
        raise error
    if isinstance(error, InputError):
        print(f"vir-client: {error.field}: {error.detail}", file=sys.stderr)
        return 2
    print(f"vir-client: {error}", file=sys.stderr)
    return 1
