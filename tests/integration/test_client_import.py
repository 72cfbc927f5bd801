"""``vir-client import`` and ``vir-client sync`` against a real service (issue 15, part 4).

A ``vir serve`` and key holder of their own (sync withdraws every signal of the
organisation that its file does not hold, so no other test's signals may be there), a
CSV of made-up BSNs, and the real command in a subprocess: stopped by ``--limit``,
killed midway, resumed, with no duplicates and every row in the index in the end; a
sync that withdraws the rows taken out of the file, updates a changed contact, and
refuses a mass withdrawal without ``--force``; and one stopped by SIGTERM.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import launch
from support.service import RunningService, kill_process, start_service

from vir.client.demo import made_up_bsn

pytestmark = pytest.mark.integration

HEADER = [
    "local_ref",
    "bsn",
    "surname",
    "birth_date",
    "gender",
    "parent1_bsn",
    "postcode",
    "house_number",
    "house_number_suffix",
    "remove_on",
    "professional_name",
    "professional_email",
    "professional_phone",
    "professional_function",
]
BAD_BSN = "123456789"  # fails the 11-proof: refused by the client, never printed


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("import"))
    yield running
    running.stop()


def _bsns(count: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        found.add(made_up_bsn())
    return sorted(found)


def _rows(prefix: str, count: int, function: str) -> list[list[str]]:
    """``count`` rows of made-up young people: some with a parent, some with an address,
    one identified by surname and date of birth instead of a BSN."""
    bsns = _bsns(2 * count)
    rows = []
    for i in range(count):
        by_name = i == 1
        rows.append(
            [
                f"{prefix}-{i:04d}",
                "" if by_name else bsns[i],
                "Çelik" if by_name else "",
                "2014-05-06" if by_name else "",
                "v" if by_name else "",
                bsns[count + i] if i % 3 == 0 else "",
                "3011 AB" if i % 4 == 0 else "",
                str(i + 1) if i % 4 == 0 else "",
                "a" if i % 8 == 0 else "",
                "2027-05-01" if i % 5 == 0 else "",
                "Anna van der Berg-de Wit",
                "a.vdberg@example.nl",
                "010-1234567" if i % 2 else "",
                function,
            ]
        )
    return rows


def _write(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _command(service: RunningService, org: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vir.client.cli",
        "--url",
        service.url,
        "--dev-dir",
        str(service.dev),
        "--dev-org",
        org,
        *args,
    ]


def _run(service: RunningService, org: str, *args: str) -> subprocess.CompletedProcess[str]:
    return launch.run(
        _command(service, org, *args), capture_output=True, text=True, timeout=120, check=False
    )


def _summary(stdout: str) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in (line.rsplit(": ", 1) for line in stdout.splitlines() if ": " in line)
    }


def _evaluated(service: RunningService, org: str) -> int:
    """The elements the key holder evaluated for ``org`` so far (its audit log, chained
    or still staged: one statement, one snapshot)."""
    rows = service.keyholder_sql(
        "SELECT body FROM audit_entries WHERE action = 'oprf.evaluate' AND organisation = :oin"
        " UNION ALL SELECT body FROM audit_staged WHERE action = 'oprf.evaluate'"
        " AND organisation = :oin",
        oin=service.org(org).oin,
    )
    bodies = [json.loads(bytes(b) if not isinstance(b, str) else b) for (b,) in rows]
    return sum(int(body["objects"]["elements"]) for body in bodies)


def _active(service: RunningService, org: str) -> list[str]:
    oin = service.org(org).oin
    rows = service.sql("SELECT local_ref FROM signals WHERE oin = :oin", oin=oin)
    return sorted(r[0] for r in rows)


def _state_entries(state: Path) -> int:
    if not state.exists():
        return 0
    return max(0, len(state.read_text(encoding="utf-8").splitlines()) - 1)


def test_an_import_resumes_after_interruption_without_duplicates(
    service: RunningService, tmp_path: Path
) -> None:
    rows = _rows("imp", 400, "intern_begeleider")
    rows.insert(7, ["imp-bad", BAD_BSN, *[""] * 8, "Anna de Wit", "a@example.nl", "", ""])
    path = _write(tmp_path / "leerlingen.csv", rows, delimiter=";")
    state = tmp_path / "leerlingen.csv.vir-state"
    wanted = sorted(r[0] for r in rows if r[0] != "imp-bad")

    # A first portion: stops after 70 rows, keeps its progress.
    first = _run(service, "education", "import", str(path), "--limit", "70")
    assert first.returncode == 3, first.stderr
    assert "--limit" in first.stderr and "run the same command again" in first.stderr
    assert "import [" in first.stderr  # the progress bar
    # 70 rows sent; the bad row among the first ones was refused without being sent.
    assert (_summary(first.stdout)["registered"], _summary(first.stdout)["invalid rows"]) == (70, 1)
    assert _state_entries(state) == 70
    assert len(_active(service, "education")) == 70

    # Killed midway (as a crash or a power cut would): what the state says is stored.
    running = launch.popen(
        _command(service, "education", "import", str(path), "--quiet"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while _state_entries(state) < 70 + 40 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert running.poll() is None, "the import finished before it could be interrupted"
    kill_process(running)
    done = _state_entries(state)
    assert 70 < done < len(wanted)
    assert set(_active(service, "education")) >= {r[0] for r in rows[: done + 1] if r[1] != BAD_BSN}

    # Resumed: the rows the state holds are skipped, the rest registered, once each.
    last = _run(service, "education", "import", str(path))
    assert last.returncode == 1, last.stderr  # one row refused
    summary = _summary(last.stdout)
    assert summary["done in an earlier run"] == done
    assert summary["invalid rows"] == 1 and summary["conflicts"] == 0
    # Rows stored by the killed run after its last state write are answered 200.
    assert summary["registered"] + summary["unchanged"] == len(wanted) - done
    assert _active(service, "education") == wanted  # every row, each once
    assert not state.exists()  # the whole file went through

    # The refused row is named by its number and column, never by its value.
    assert "row 9, column bsn: the BSN fails the 11-proof" in last.stderr
    for output in (first.stdout, first.stderr, last.stdout, last.stderr):
        assert BAD_BSN not in output
        assert not any(r[1] and r[1] in output for r in rows)

    # Run again over the same file: nothing new, nothing doubled.
    again = _run(service, "education", "import", str(path), "--quiet")
    assert _summary(again.stdout)["unchanged"] == len(wanted)
    assert _active(service, "education") == wanted


def test_sync_withdraws_what_the_file_no_longer_holds(
    service: RunningService, tmp_path: Path
) -> None:
    rows = _rows("gp", 40, "huisarts")
    path = tmp_path / "patienten.csv"
    first = _run(service, "gp", "sync", str(_write(path, rows)), "--quiet")
    assert first.returncode == 0, first.stderr
    assert _summary(first.stdout)["registered"] == 40
    assert _active(service, "gp") == sorted(r[0] for r in rows)

    memory = tmp_path / "patienten.csv.vir-sync"
    assert memory.stat().st_mode & 0o777 == 0o600
    assert not any(r[1] and r[1] in memory.read_text() for r in rows)

    # The next night: three cases closed, one new, one contact changed (updated in place).
    nightly = rows[3:] + _rows("gp-new", 1, "huisarts")
    assert nightly[2][9]  # a row with its remove_on given (docs/import.md, sync)
    nightly[2][12] = "06-12345678"
    evaluated = _evaluated(service, "gp")
    second = _run(service, "gp", "sync", str(_write(path, nightly)), "--quiet")
    assert second.returncode == 0, second.stderr
    summary = _summary(second.stdout)
    assert summary == {
        "registered": 1,
        "unchanged": 36,
        "updated": 1,
        "conflicts": 0,
        "invalid rows": 0,
        "done in an earlier run": 0,
        "withdrawn": 3,
        "not done": 0,
    }
    # What the sync remembered: only the new row and the changed one were pseudonymised
    # (a young person and, for some, a parent and an address each), not the 36 others.
    changed = [nightly[2], nightly[-1]]
    identities = sum(1 + bool(r[5]) + bool(r[6]) for r in changed)
    assert _evaluated(service, "gp") - evaluated == identities
    assert _active(service, "gp") == sorted(r[0] for r in nightly)

    # Nothing changed since: nothing pseudonymised or sent; every row unchanged.
    evaluated = _evaluated(service, "gp")
    third = _run(service, "gp", "sync", str(path), "--quiet")
    assert third.returncode == 0, third.stderr
    assert _summary(third.stdout)["unchanged"] == len(nightly)
    assert _evaluated(service, "gp") == evaluated
    # A contact changed through the API since: that row is checked at the index again
    # (and the file's contact details put back), the others still not.
    with service.client("gp") as client:
        client.update_signal(
            nightly[0][0], {"professional": {"name": "Bram Ander", "phone": "010-7654321"}}
        )
    full = _run(service, "gp", "sync", str(path), "--quiet")
    summary = _summary(full.stdout)
    assert (summary["unchanged"], summary["updated"]) == (len(nightly) - 1, 1), full.stdout
    assert _evaluated(service, "gp") - evaluated == 1 + bool(nightly[0][5]) + bool(nightly[0][6])
    # --full: every row to the index once more.
    evaluated = _evaluated(service, "gp")
    full = _run(service, "gp", "sync", str(path), "--quiet", "--full")
    assert _summary(full.stdout)["unchanged"] == len(nightly), full.stdout
    assert _evaluated(service, "gp") - evaluated == sum(
        1 + bool(r[5]) + bool(r[6]) for r in nightly
    )
    # Withdrawn as closed cases (risk_ended): archived, not erased.
    oin = service.org("gp").oin
    archived = service.sql("SELECT local_ref FROM archived_signals WHERE oin = :oin", oin=oin)
    assert sorted(r[0] for r in archived) == sorted(r[0] for r in rows[:3])

    # A truncated file would withdraw most of them: refused before anything is sent.
    truncated = _write(tmp_path / "afgebroken.csv", nightly[:5])
    refused = _run(service, "gp", "sync", str(truncated), "--quiet")
    assert refused.returncode == 3
    assert "--force" in refused.stderr and "33 of the organisation's 38" in refused.stderr
    assert _active(service, "gp") == sorted(r[0] for r in nightly)

    forced = _run(service, "gp", "sync", str(truncated), "--quiet", "--force")
    assert forced.returncode == 0, forced.stderr
    assert _summary(forced.stdout)["withdrawn"] == 33
    assert _active(service, "gp") == sorted(r[0] for r in nightly[:5])
    assert json.dumps(nightly[0][1]) not in forced.stdout + forced.stderr


def test_sigterm_stops_a_run_as_ctrl_c_does(service: RunningService, tmp_path: Path) -> None:
    """``kill -TERM`` (a scheduler stopping the job): the request under way is accounted
    for, the summary printed and the state kept, exit status 143; the next run resumes."""
    rows = _rows("term", 400, "")
    path = _write(tmp_path / "jeugdzorg.csv", rows)
    state = tmp_path / "jeugdzorg.csv.vir-state"
    running = launch.popen(
        _command(service, "youth_care", "import", str(path), "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _state_entries(state) < 40 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert running.poll() is None, "the import finished before it could be terminated"
    running.terminate()
    out, err = running.communicate(timeout=60)
    assert running.returncode == 143, err
    assert "vir-client: terminated" in err and "progress kept in" in err
    first = _summary(out)
    assert first["registered"] == _state_entries(state)
    assert first["registered"] + first["not done"] == len(rows)

    last = _run(service, "youth_care", "import", str(path), "--quiet")
    assert last.returncode == 0, last.stderr
    summary = _summary(last.stdout)
    assert summary["done in an earlier run"] == first["registered"]
    assert summary["registered"] == len(rows) - first["registered"], (
        first,
        summary,
        last.stderr[-3000:],
    )
    assert not any(r[1] and r[1] in out + err + last.stdout + last.stderr for r in rows)
