"""A key rotation done in the wrong order, with the real services and the commands an
operator runs: what each says points at the step that is missing.

The order is rotate at the key holder, ``vir keys rekey --token`` at the index, then
activate at the key holder. A second rotate while one is incoming names the index's
rekey before activation; a ``vir-client import`` after the key holder activated
before the index took the token stops in one line saying so (not as invalid rows),
and resumes once the index has. Once retired, epoch 1 is listed with when it was
retired (not as accepted), and a registration under it is told it was retired.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import launch
from support.service import RunningService, once_served, start_service

from vir.client.canonical import nl_bsn
from vir.client.connection import ServiceError, VirClient
from vir.client.demo import made_up_bsn
from vir.crypto.rekey_token import read_token, token_file

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    # No grace period: epoch 1 can be retired right after the rekey.
    root = tmp_path_factory.mktemp("rotation-order")
    running = start_service(root, VIR_EPOCH_GRACE_DAYS="0", VIR_KEYHOLDER_EPOCH_GRACE_DAYS="0")
    try:
        yield running
    finally:
        running.stop()


def _import(service: RunningService, path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vir.client.cli", "--url", service.url]
    command += ["--dev-dir", str(service.dev), "--dev-org", "education", "import", str(path)]
    return launch.run(command, capture_output=True, text=True, timeout=120, check=False)


def _summary(stdout: str) -> dict[str, int]:
    pairs = (line.rsplit(": ", 1) for line in stdout.splitlines() if ": " in line)
    return {name: int(count) for name, count in pairs}


def test_activating_before_the_index_took_the_token_is_named_as_such(
    service: RunningService, tmp_path: Path
) -> None:
    child = nl_bsn(made_up_bsn())
    with VirClient.from_dev("education", service.dev) as school:
        old = school.pseudonymise([child])
    token = tmp_path / "rekey-2.json"
    service.keyholder("rotate", "--token-out", str(token))
    again = service.keyholder("rotate", "--token-out", str(tmp_path / "again.json"), check=False)
    assert again.returncode != 0
    assert again.stderr.strip() == (
        "vir: epoch 2 is already incoming: give its rekey token to the index "
        "(vir keys rekey --token FILE), then run vir keyholder activate "
        "(its token lost or never written: vir keyholder token --out FILE)"
    )

    service.keyholder("activate")  # too early: the index has not taken the token
    with VirClient.from_dev("education", service.dev) as school:
        once_served(2, lambda: school.pseudonymise([nl_bsn(made_up_bsn())]))
    rows = tmp_path / "signals.csv"
    lines = ["local_ref,bsn,professional_name,professional_email"]
    lines += [f"school-{i},{made_up_bsn()},Anna de Wit,a@example.nl" for i in range(3)]
    rows.write_text("\n".join(lines) + "\n", encoding="utf-8")
    early = _import(service, rows)
    assert early.returncode == 3, early.stderr
    assert early.stderr.splitlines()[0] == (
        "vir-client: the index does not accept the key holders' epoch 2 yet: the index "
        "must run vir keys rekey with the rotation's token before the key holders "
        'activate it (docs/operations.md, "Rotating the OPRF key")'
    )
    assert "row " not in early.stderr  # no row is blamed
    summary = _summary(early.stdout)
    assert (summary["registered"], summary["invalid rows"], summary["not done"]) == (0, 0, 3)

    service.vir("keys", "rekey", "--token", str(token))
    resumed = _import(service, rows)
    assert resumed.returncode == 0, resumed.stderr
    assert _summary(resumed.stdout)["registered"] == 3

    assert "retired epoch(s) 1" in service.vir("keys", "retire").stdout
    first, second = service.vir("keys", "epochs").stdout.splitlines()
    assert first.startswith("epoch 1: retired (since 20") and second.startswith("epoch 2: current")
    signal = {
        "local_ref": "school-old",
        "epoch": old.epoch,
        "person": old.pseudonyms[0],
        "professional": {"name": "Anna de Wit", "email": "a@example.nl"},
    }
    with (
        VirClient.from_dev("education", service.dev) as school,
        pytest.raises(ServiceError) as refused,
    ):
        school.register_signal(signal)
    assert refused.value.status == 422
    assert refused.value.problem["errors"] == [
        {
            "field": "epoch",
            "message": "epoch 1 was retired: pseudonyms must be made under an accepted key "
            "epoch (2)",
        }
    ]
    assert "retired epoch(s) 1" in service.keyholder("retire").stdout
    listed = service.keyholder("epochs").stdout.splitlines()
    assert listed[0].startswith("   1  retired    retired 20"), listed


def test_a_token_that_cannot_be_written_changes_nothing_or_is_written_again(
    tmp_path: Path,
) -> None:
    """rotate checks where its token goes before it makes the epoch (an existing file, a
    missing folder: a traceback after the epoch was committed, and no command could
    write its token again); ``vir keyholder token`` writes the incoming epoch's token
    again, with the rotation's own δ, and the index takes it."""
    service = start_service(tmp_path / "service")
    try:
        existing = tmp_path / "exists.json"
        existing.write_text("old\n")
        before = service.keyholder("epochs").stdout
        for out, said in [
            (existing, "already exists; vir never overwrites it"),
            (tmp_path / "no-such-folder" / "t.json", "is not a folder"),
        ]:
            refused = service.keyholder("rotate", "--token-out", str(out), check=False)
            assert refused.returncode != 0
            assert said in refused.stderr and "Traceback" not in refused.stderr
            assert service.keyholder("epochs").stdout == before
        assert existing.read_text() == "old\n"

        first = tmp_path / "rekey-2.json"
        service.keyholder("rotate", "--token-out", str(first))
        again = tmp_path / "rekey-2-again.json"
        said = service.keyholder("token", "--out", str(again)).stdout
        assert "epoch 2 is incoming" in said
        verifier = service.keyholder("key").stdout.strip()
        tokens = [read_token(token_file(p), verifier) for p in (first, again)]
        assert tokens[0].delta == tokens[1].delta
        assert (tokens[1].from_epoch, tokens[1].to_epoch) == (1, 2)
        service.vir("keys", "rekey", "--token", str(again))
        service.keyholder("activate")
        with VirClient.from_dev("education", service.dev) as school:
            once_served(2, lambda: school.pseudonymise([nl_bsn(made_up_bsn())]))
            school.register_signal(
                {
                    "local_ref": "after-rotation",
                    **_body(school.pseudonymise([nl_bsn(made_up_bsn())])),
                }
            )
    finally:
        service.stop()


def _body(made: Any) -> dict[str, Any]:
    return {
        "epoch": made.epoch,
        "person": made.pseudonyms[0],
        "professional": {"name": "Anna de Wit", "email": "a@example.nl"},
    }
