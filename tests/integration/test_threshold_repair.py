"""A 2-of-3 deployment loses a key holder (keys directory and database) and repairs it
from two others (``vir keyholder repair ...``): the new holder gets exactly the lost
share of every unretired epoch, serves the same epoch, and with one of the helpers
down it and the other give the same pseudonyms as before. After a rotation (epochs 1
previous, 2 current), a repaired holder helps repair another."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.service import (
    RunningService,
    keyholder_listing,
    once_served,
    run_vir,
    start_keyholders,
    stop_process,
)
from support.service import (
    start_service as start,
)

from vir.client.canonical import nl_bsn
from vir.crypto import keys

pytestmark = pytest.mark.integration

BSN = "123456782"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start(tmp_path_factory.mktemp("threshold-repair"), threshold="2-of-3")
    try:
        yield running
    finally:
        running.stop()


def _holder(service: RunningService, number: int) -> dict[str, Any]:
    holder: dict[str, Any] = keyholder_listing(service.root)[number - 1]
    return holder


def _run(service: RunningService, number: int, *args: str) -> str:
    env = service.env | _holder(service, number)["env"]
    return run_vir(service.root, env, "keyholder", *args).stdout


def _keys_dir(service: RunningService, number: int) -> Path:
    return Path(_holder(service, number)["env"]["VIR_KEYHOLDER_KEYS_DIR"])


def _shares(service: RunningService, number: int) -> dict[int, bytes]:
    ring = keys.load_oprf_keyring(_keys_dir(service, number))
    return {key.epoch: key.secret for key in ring.keys}


def _lose(service: RunningService, number: int) -> None:
    """Stop holder ``number`` and destroy its keys directory and database, then prepare a
    fresh one as an operator would: database, and the organisations that call it."""
    stop_process(service.keyholders[number - 1])
    holder = _holder(service, number)
    shutil.rmtree(holder["env"]["VIR_KEYHOLDER_KEYS_DIR"])
    database = Path(holder["env"]["VIR_KEYHOLDER_DATABASE_URL"].removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        path.unlink()
    _run(service, number, "db", "upgrade")
    _run(service, number, *service.org_add("education"))


def _repair(service: RunningService, lost: int, helpers: tuple[int, int], work: Path) -> None:
    """The five steps, each on the holder that runs it; files carried in ``work``."""
    request = work / "request.json"
    threshold = "2-of-3"
    named = ",".join(map(str, helpers))
    _run(
        service,
        lost,
        "repair",
        "request",
        "--index",
        str(lost),
        "--helpers",
        named,
        "--threshold",
        threshold,
        "--out",
        str(request),
    )
    verifiers: list[str] = []
    for helper in helpers:
        verifiers += ["--verifier-key", f"{helper}={_run(service, helper, 'key').strip()}"]
    joins = [str(work / f"join-{h}.json") for h in helpers]
    deals = [str(work / f"deal-{h}.json") for h in helpers]
    sums = [str(work / f"sum-{h}.json") for h in helpers]
    for helper, out in zip(helpers, joins, strict=True):
        _run(service, helper, "repair", "join", "--request", str(request), "--out", out)
    for helper, out in zip(helpers, deals, strict=True):
        _run(
            service,
            helper,
            "repair",
            "deal",
            "--request",
            str(request),
            "--joins",
            *joins,
            *verifiers,
            "--out",
            out,
        )
    for helper, out in zip(helpers, sums, strict=True):
        _run(
            service,
            helper,
            "repair",
            "sum",
            "--request",
            str(request),
            "--joins",
            *joins,
            "--deals",
            *deals,
            *verifiers,
            "--out",
            out,
        )
    done = _run(
        service,
        lost,
        "repair",
        "finish",
        "--request",
        str(request),
        "--joins",
        *joins,
        "--sums",
        *sums,
        *verifiers,
    )
    assert "stored its repaired share" in done


def _restart(service: RunningService, number: int) -> None:
    """Start holder ``number`` again (the only one not running); the service stops it."""
    (process,), _urls = start_keyholders(service.root, service.env, missing_only=True)
    service.keyholders[number - 1] = process


def _pseudonym(service: RunningService, epoch: int = 1) -> tuple[int, str]:
    """The BSN's pseudonym, once the key holders serve ``epoch``."""
    with service.client("education") as school:
        made = once_served(epoch, lambda: school.pseudonymise([nl_bsn(BSN)]))
    return made.epoch, made.pseudonyms[0]


def test_a_lost_holder_is_repaired_and_gives_the_same_pseudonyms(
    service: RunningService, tmp_path: Path
) -> None:
    before = _pseudonym(service)
    lost = _shares(service, 2)
    _lose(service, 2)
    _repair(service, 2, (1, 3), tmp_path)
    assert _shares(service, 2) == lost
    ring = keys.load_oprf_keyring(_keys_dir(service, 2))
    assert {key.share_index for key in ring.keys} == {2}
    assert _run(service, 2, "epochs") == _run(service, 3, "epochs")
    assert not list(_keys_dir(service, 2).glob("repair-*.box"))
    assert not list(_keys_dir(service, 1).glob("repair-*.box"))

    _restart(service, 2)
    stop_process(service.keyholders[0])  # holder 1 down: holders 2 and 3 answer
    assert _pseudonym(service) == before
    _restart(service, 1)


@pytest.mark.sqlite_only("the same steps and stores as the first test, which runs on both")
def test_after_a_rotation_a_repaired_holder_helps_repair_another(
    service: RunningService, tmp_path: Path
) -> None:
    first_token = tmp_path / "rekey-1.json"
    _run(service, 1, "rotate", "--token-out", str(first_token))
    verifier = _run(service, 1, "key").strip()
    for number in (2, 3):
        _run(
            service,
            number,
            "rotate",
            "--from-token",
            str(first_token),
            "--verifier-key",
            verifier,
            "--token-out",
            str(tmp_path / f"rekey-{number}.json"),
        )
    service.vir("keys", "rekey", "--token", str(first_token))
    for number in (1, 2, 3):
        _run(service, number, "activate")
    before = _pseudonym(service, epoch=2)
    assert before[0] == 2

    lost = _shares(service, 3)
    assert sorted(lost) == [1, 2]
    _lose(service, 3)
    _repair(service, 3, (1, 2), tmp_path)  # holder 2 is the one repaired before
    assert _shares(service, 3) == lost
    listing = _run(service, 3, "epochs")
    assert listing == _run(service, 1, "epochs")
    assert "previous" in listing and "current" in listing

    _restart(service, 3)
    stop_process(service.keyholders[0])  # holder 1 down: holders 2 and 3 answer
    assert _pseudonym(service) == before
    _restart(service, 1)
