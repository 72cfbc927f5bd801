"""A key rotation end to end, with the real services and the commands an operator runs.

Organisation A (a school) registers a child under epoch 1. The key holder rotates
(epoch 2 = δ·k, a rekey token for the index), the index rewrites its stored
pseudonyms with the token, the key holder starts serving epoch 2. Organisation B (a
GP) pseudonymises the same child — now under epoch 2 — and registers: one person
match, because A's stored pseudonym was converted. A pseudonym A made under epoch 1
before the rotation is still accepted during the grace period and finds the signal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.service import RunningService, once_served, start_service

from vir.client.canonical import nl_bsn
from vir.client.connection import VirClient

BSN = "123456782"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("rotation"))
    try:
        yield running
    finally:
        running.stop()


def _client(service: RunningService, category: str) -> VirClient:
    return VirClient.from_dev(category, service.dev)


def _signal(ref: str, epoch: int, person: str, name: str) -> dict[str, object]:
    return {
        "local_ref": ref,
        "epoch": epoch,
        "person": person,
        "professional": {"name": name, "email": "p@example.org"},
    }


def test_a_child_registered_before_a_rotation_matches_one_registered_after(
    service: RunningService, tmp_path: Path
) -> None:
    with _client(service, "education") as school, _client(service, "gp") as gp:
        before = school.pseudonymise([nl_bsn(BSN)])
        assert before.epoch == 1
        school.register_signal(_signal("school-1", 1, before.pseudonyms[0], "Els Visser"))

        token = tmp_path / "rekey-2.json"
        rotated = service.keyholder("rotate", "--token-out", str(token))
        assert "epoch 2" in rotated.stdout
        assert token.stat().st_mode & 0o777 == 0o600
        # Not served yet: the index has not taken the token.
        assert gp.pseudonymise([nl_bsn(BSN)]).epoch == 1
        service.vir("keys", "rekey", "--token", str(token))
        service.keyholder("activate")

        after = once_served(2, lambda: gp.pseudonymise([nl_bsn(BSN)]))
        assert after.epoch == 2
        assert after.pseudonyms != before.pseudonyms  # k changed: another pseudonym
        answer = gp.register_signal(_signal("gp-1", 2, after.pseudonyms[0], "Dr. Bouali"))
        (match,) = answer["matches"]
        assert match["kind"] == "person"
        assert [p["organisation"]["name"] for p in match["participants"]] == [
            "Basisschool De Regenboog"
        ]
        # The school's epoch-1 pseudonym, within the grace period: the same signal.
        repeat = school.register_signal(_signal("school-1", 1, before.pseudonyms[0], "Els Visser"))
        assert repeat["signal_id"]
        assert [m["id"] for m in repeat["matches"]] == [match["id"]]

        epochs = json.loads(school.request("GET", "/v1/oprf/epochs", via=school._holders[0]).text)
        assert epochs["current"] == 2
        assert {e["epoch"]: e["state"] for e in epochs["epochs"]} == {1: "previous", 2: "current"}
