"""A 2-of-3 threshold deployment rotates its key like a single key holder: every holder
multiplies its share by the same δ (the first holder's token; the others rotate with
``--from-token``), the index rekeys once, and a child registered before the rotation
matches one registered after it. While the holders' operators activate the new epoch
one by one, the clients go on pseudonymising under the epoch t holders serve."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.service import (
    SERVED_EPOCH_TTL,
    RunningService,
    keyholder_listing,
    once_served,
    run_vir,
    start_service,
)

from vir.client.canonical import nl_bsn
from vir.client.connection import ClientError, VirClient
from vir.crypto import keys, oprf, threshold
from vir.domain.encoding import b64url_encode

BSN = "123456782"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("threshold-rotation"), threshold="2-of-3")
    try:
        yield running
    finally:
        running.stop()


def _signal(ref: str, epoch: int, person: str) -> dict[str, object]:
    return {
        "local_ref": ref,
        "epoch": epoch,
        "person": person,
        "professional": {"name": "Anna de Vries", "email": "anna@example.org"},
    }


def _shares(service: RunningService, epoch: int) -> list[threshold.Share]:
    found = []
    for holder in keyholder_listing(service.root):
        ring = keys.load_oprf_keyring(Path(holder["env"]["VIR_KEYHOLDER_KEYS_DIR"]))
        key = ring.get(epoch)
        assert key is not None and key.share_index is not None
        found.append(threshold.Share(key.share_index, key.secret))
    return found


def test_every_holder_rotates_with_one_delta_and_matching_survives(
    service: RunningService, tmp_path: Path
) -> None:
    holders = keyholder_listing(service.root)
    with VirClient.from_dev("education", service.dev) as school:
        before = school.pseudonymise([nl_bsn(BSN)])
        school.register_signal(_signal("school-1", 1, before.pseudonyms[0]))
    first_token = tmp_path / "rekey-holder-1.json"
    service.keyholder("rotate", "--token-out", str(first_token))
    verifier = service.keyholder("key").stdout.strip()
    for holder in holders[1:]:
        env = service.env | holder["env"]
        out = tmp_path / f"rekey-holder-{holder['number']}.json"
        run_vir(
            service.root,
            env,
            "keyholder",
            "rotate",
            "--from-token",
            str(first_token),
            "--verifier-key",
            verifier,
            "--token-out",
            str(out),
        )
    service.vir("keys", "rekey", "--token", str(first_token))
    # The index takes the token signed by the one key in its VIR_KEYHOLDER_VERIFIER_KEY
    # (holder 1's, as vir dev init sets it up): holder 2's is refused. Configured with
    # holder 2's key instead, it takes holder 2's token: the same epochs and δ, so the
    # same rekey (done already here).
    second_token = tmp_path / "rekey-holder-2.json"
    refused = service.vir("keys", "rekey", "--token", str(second_token), check=False)
    assert refused.returncode != 0
    assert "not by the key holder's key" in refused.stderr
    assert "give the token that key holder wrote" in refused.stderr
    second_key = tmp_path / "holder-2.pub"
    holder_2 = service.env | holders[1]["env"]
    second_key.write_text(run_vir(service.root, holder_2, "keyholder", "key").stdout)
    trusting_2 = service.env | {"VIR_KEYHOLDER_VERIFIER_KEY": str(second_key)}
    taken = run_vir(service.root, trusting_2, "keys", "rekey", "--token", str(second_token))
    assert "epoch 2 is current already: this rekey is done" in taken.stdout
    run_vir(service.root, service.env | holders[0]["env"], "keyholder", "activate")

    # Holder 1 serves epoch 2, holders 2 and 3 epoch 1: asked alone, holders 1 and 2
    # cannot be combined; with all three, holder 3 is asked too and the epoch-1 answers
    # of holders 2 and 3 give the pseudonym the index converts to epoch 2.
    first_two = service.keyholder_urls[:2]
    with VirClient.from_dev("gp", service.dev, keyholders=first_two, threshold=2) as pair:
        deadline = time.monotonic() + 5 * SERVED_EPOCH_TTL
        while True:
            try:
                pair.pseudonymise([nl_bsn(BSN)])
            except ClientError as error:  # the two answer under different epochs
                assert "different" in str(error)
                break
            assert time.monotonic() < deadline, "holder 1 does not serve epoch 2"
            time.sleep(SERVED_EPOCH_TTL / 10)
    with VirClient.from_dev("youth_care", service.dev) as youth_care:
        meanwhile = youth_care.pseudonymise([nl_bsn(BSN)])
        assert meanwhile.epoch == 1 and meanwhile.pseudonyms == before.pseudonyms
        signal = _signal("youth-1", 1, meanwhile.pseudonyms[0])
        (match,) = youth_care.register_signal(signal)["matches"]
    assert match["kind"] == "person"
    for holder in holders[1:]:
        run_vir(service.root, service.env | holder["env"], "keyholder", "activate")

    # Every pair of epoch-2 shares gives δ·k, the same as scaling epoch 1's key.
    old, new = _shares(service, 1), _shares(service, 2)
    k, k2 = threshold.reconstruct(old[:2]), threshold.reconstruct(new[1:])
    assert k2 != k
    assert threshold.reconstruct([new[0], new[2]]) == k2
    point = oprf.hash_to_group(nl_bsn(BSN).encode())
    assert oprf.scalar_mult(k2, point) != oprf.scalar_mult(k, point)

    with VirClient.from_dev("gp", service.dev) as gp:
        after = once_served(2, lambda: gp.pseudonymise([nl_bsn(BSN)]))
        assert after.epoch == 2
        assert after.pseudonyms[0] == b64url_encode(oprf.scalar_mult(k2, point))
        (match,) = gp.register_signal(_signal("gp-1", 2, after.pseudonyms[0]))["matches"]
    assert match["kind"] == "person"
