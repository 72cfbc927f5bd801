"""``vir-client notifications`` and ``vir-client matches``: a back office without its own
integration reads its notifications from the command line, with the cursor kept in a
file between runs (a scheduled job), and looks up the matches of one of its signals."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from support import launch
from support.service import RunningService

from vir.client.canonical import nl_bsn
from vir.client.demo import made_up_bsn

pytestmark = pytest.mark.sqlite_only(
    "the client's reading and cursor file; the index's cursor is tested on both databases"
)


def _vir_client(service: RunningService, org: str, *args: str) -> subprocess.CompletedProcess[str]:
    return launch.run(
        [
            sys.executable,
            "-m",
            "vir.client.cli",
            "--dev-dir",
            str(service.dev),
            "--dev-org",
            org,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _scheduled(service: RunningService, cursor: Path) -> list[dict[str, Any]]:
    """One run of the scheduled job: youth care's notifications since the kept cursor."""
    return _lines(_vir_client(service, "youth_care", "notifications", "--cursor-file", str(cursor)))


def _register(service: RunningService, org: str, ref: str, bsn: str) -> None:
    with service.client(org) as client:
        made = client.pseudonymise([nl_bsn(bsn)])
        client.register_signal(
            {
                "local_ref": ref,
                "epoch": made.epoch,
                "person": made.pseudonyms[0],
                "professional": {"name": "Sanne Bakker", "email": "sanne@example.org"},
            }
        )


def _lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_scheduled_read_prints_each_notification_once(
    service: RunningService, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    bsn = made_up_bsn()
    cursor = tmp_path / "cursor"
    _scheduled(service, cursor)  # what came before this test
    assert not cursor.exists() or stat.S_IMODE(cursor.stat().st_mode) == 0o600
    before = cursor.read_text() if cursor.exists() else None

    _register(service, "youth_care", f"yc-{tag}", bsn)
    _register(service, "gp", f"gp-{tag}", bsn)
    first = _scheduled(service, cursor)
    assert [(n["type"], n["local_ref"]) for n in first] == [("match.created", f"yc-{tag}")]
    (other,) = first[0]["match"]["participants"]
    assert other["professional"]["name"] == "Sanne Bakker"
    assert cursor.read_text() != before and stat.S_IMODE(cursor.stat().st_mode) == 0o600

    # Nothing new: nothing printed, the cursor stays.
    kept = cursor.read_text()
    assert _scheduled(service, cursor) == []
    assert cursor.read_text() == kept

    # A third organisation joins: only that is new.
    _register(service, "education", f"ed-{tag}", bsn)
    joined = _scheduled(service, cursor)
    assert [(n["type"], n["local_ref"]) for n in joined] == [("match.joined", f"yc-{tag}")]

    # The same with --after: the cursor a read ends with is on stderr, and pages of one
    # give the same items as one read.
    paged = _vir_client(service, "youth_care", "notifications", "--limit", "1")
    everything = _lines(paged)
    assert [n["id"] for n in everything][-2:] == [first[0]["id"], joined[0]["id"]]
    assert "continue with --after " in paged.stderr
    after = paged.stderr.rsplit("--after ", 1)[1].split()[0]
    assert _lines(_vir_client(service, "youth_care", "notifications", "--after", after)) == []


def test_matches_of_a_signal(service: RunningService) -> None:
    tag = uuid.uuid4().hex[:8]
    bsn = made_up_bsn()
    _register(service, "youth_care", f"m-yc-{tag}", bsn)
    _register(service, "gp", f"m-gp-{tag}", bsn)
    shown = _vir_client(service, "youth_care", "matches", f"m-yc-{tag}")
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    assert answer["local_ref"] == f"m-yc-{tag}"
    ((match,),) = [answer["matches"]]
    assert (match["kind"], match["via"]) == ("person", "person")
    # Another organisation's reference is not the caller's signal.
    other = _vir_client(service, "education", "matches", f"m-yc-{tag}")
    assert other.returncode == 1 and "404" in other.stderr
