"""``vir-client ... | head -1`` and ``vir ... | head -1``: once ``head`` has what it wants
and closes the pipe, the command ends quietly with status 141 (128 + SIGPIPE), as
``cat`` would. Before, ``vir-client matches GP-0001 | head -5`` ended in a
``BrokenPipeError`` traceback, and ``notifications`` printed ``[Errno 32] Broken pipe``
as if the index had failed.

Each command runs as its console script does (``sys.exit(main(...))``), in a process of
its own whose standard output is a pipe into ``head -1``; the index is a stand-in that
answers more than a pipe holds (a few MB), so that the writes go on after ``head`` left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]

# A stand-in for VirClient: the answers only, many of them.
_CLIENT = """
import sys
from vir.client import cli

class Index:
    def __enter__(self): return self
    def __exit__(self, *exc): return None
    def matches(self, local_ref):
        return [{"match_id": f"m-{n}", "partner": "x" * 40} for n in range(60_000)]
    def notifications(self, after=None, limit=100):
        page = int(after) + 1 if after else 1  # cursors: the page's number
        if page > 100:
            return [], after
        return [{"type": "match.new", "n": n, "pad": "y" * 500} for n in range(limit)], str(page)

cli._connect = lambda args: Index()
sys.exit(cli.main(sys.argv[1:]))
"""

# vir's entry point, with one command that prints more than the pipe holds.
_VIR = """
import sys
from vir import cli

def cmd_org_list(settings, args):
    for n in range(300_000):
        print(f"{n:020d}  an organisation  education  Rotterdam")
    return 0

cli.cmd_org_list = cmd_org_list
sys.exit(cli.main(sys.argv[1:]))
"""


def _into_head(program: str, *args: str) -> tuple[int, bytes, bytes]:
    """Run ``program ARGS | head -1``: the program's status and stderr, head's output."""
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    env.pop("VIR_DATABASE_URL", None)
    producer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(program), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPOSITORY,
    )
    assert producer.stdout is not None and producer.stderr is not None
    head = subprocess.Popen(["head", "-1"], stdin=producer.stdout, stdout=subprocess.PIPE)
    producer.stdout.close()  # head alone reads it now
    first, _ = head.communicate(timeout=60)
    errors = producer.stderr.read()
    producer.stderr.close()
    return producer.wait(timeout=60), errors, first


@pytest.mark.parametrize(
    "args",
    [("matches", "GP-0001"), ("notifications", "--limit", "100")],
    ids=["matches", "notifications"],
)
def test_vir_client_into_head_ends_quietly(args: tuple[str, ...]) -> None:
    code, errors, first = _into_head(_CLIENT, *args)
    assert errors == b""
    assert code == 141
    assert first.startswith(b"{")


def test_vir_into_head_ends_quietly() -> None:
    code, errors, first = _into_head(_VIR, "org", "list")
    assert errors == b""
    assert code == 141
    assert first == b"00000000000000000000  an organisation  education  Rotterdam\n"
