"""A served app's start-up objects are out of the garbage collector's reach.

``vir serve`` and ``vir keyholder serve`` build the app (routes, models, schemas,
mappers: most of the process's objects) and then freeze the heap
(``vir.server.run.settled``), so that a full collection under load walks what requests
made, not everything built at start (docs/benchmarks.md, "A full collection"). Checked
in a child interpreter: freezing is for the whole process, and the test worker's heap
must stay as it is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = """
import gc, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from support.inapp import {context}
from vir.server.run import settled
with {context}(Path(sys.argv[2])) as running:
    tracked = len(gc.get_objects())
    assert settled(running.app) is running.app
    print(json.dumps({{"tracked": tracked, "after": len(gc.get_objects()),
                      "frozen": gc.get_freeze_count()}}))
"""


@pytest.mark.parametrize("context", ["in_app", "in_keyholder"])
def test_what_the_app_was_built_of_is_frozen(tmp_path: Path, context: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(context=context), str(TESTS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    counts = json.loads(done.stdout.splitlines()[-1])
    # Before: the app's objects are tracked (well over 50,000 of them); after: almost
    # all of them are in the permanent generation, and a collection walks the rest.
    assert counts["tracked"] > 50_000
    assert counts["frozen"] > 0.9 * counts["tracked"]
    assert counts["after"] < 0.05 * counts["tracked"]
