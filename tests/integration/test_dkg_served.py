"""Shares made by ``vir keyholder dkg``, served by real ``vir keyholder serve`` processes.

Three new key holders of a 2-of-3 deployment (``vir dev init``'s certificates,
settings and databases; the key it dealt is removed, so the holders hold none) make
their shares through the CLI steps, then run as real processes; the index holds holder
1's verifier key, as its operator is given it (`vir keyholder key`). Through the real
client (t = 2, the three holders' URLs) two organisations register the same made-up
child: one person match, which both see, under k = Σ f_J(0), the key no process ever
held. With holder 1 stopped, holders 2 and 3 give the same pseudonym, and a third
organisation's registration matches."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.dkg_world import generation_among
from support.service import keyholder_listing, start_keyholders, start_service, stop_process

from vir.client.canonical import nl_bsn
from vir.client.connection import VirClient
from vir.crypto import keys, oprf
from vir.domain.encoding import b64url_encode

pytestmark = pytest.mark.sqlite_only("its key holders keep SQLite databases of their own")

CHILD = nl_bsn("111222333")  # made up (it passes the 11-test)


def _signal(ref: str, pseudonym: str) -> dict[str, object]:
    return {
        "local_ref": ref,
        "epoch": 1,
        "person": pseudonym,
        "professional": {"name": "Anna de Vries", "email": "anna@example.org"},
    }


def test_generated_shares_served_by_real_key_holders_match_one_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = start_service(tmp_path / "deployment", threshold="2-of-3", keyholders=False)
    try:
        holder_env = {
            holder["number"]: {"VIR_DATABASE_URL": service.database_url, **holder["env"]}
            for holder in keyholder_listing(service.root)
        }
        # vir dev init split a key it knew; these holders generate one instead.
        for env in holder_env.values():
            keys.destroy_oprf_key(Path(env["VIR_KEYHOLDER_KEYS_DIR"]), 1)
        world = generation_among(tmp_path / "dkg", 2, holder_env, monkeypatch)
        _run, starts = world.starts()
        deals = [world.deal(j, starts) for j in world.holders]
        assert len({world.finish(j, starts, deals) for j in world.holders}) == 1
        # The index operator puts holder 1's verifier key at VIR_KEYHOLDER_VERIFIER_KEY
        # (docs/operations.md; `vir keys rekey` reads it, the running index does not).
        (service.root / "keys" / "keyholder.pub").write_text(world.ok(1, "key"))

        processes, urls = start_keyholders(service.root, service.env)
        service.keyholders += processes
        expected = b64url_encode(oprf.scalar_mult(world.key, oprf.hash_to_group(CHILD.encode())))

        def client(who: str) -> VirClient:
            return VirClient.from_dev(who, service.dev, keyholders=urls, threshold=2)

        with client("education") as school, client("youth_care") as youth_care:
            made = school.pseudonymise([CHILD])
            assert (made.epoch, made.pseudonyms) == (1, [expected])
            assert school.register_signal(_signal("school-1", expected))["matches"] == []
            assert youth_care.pseudonymise([CHILD]).pseudonyms == [expected]
            (match,) = youth_care.register_signal(_signal("youth-1", expected))["matches"]
            assert match["kind"] == "person"
            (seen,) = school.matches("school-1")
            assert seen["kind"] == "person"

        stop_process(processes[0])  # holder 1: holders 2 and 3 are t
        with client("gp") as gp:
            assert gp.pseudonymise([CHILD]).pseudonyms == [expected]
            matches = gp.register_signal(_signal("gp-1", expected))["matches"]
        assert matches and {m["kind"] for m in matches} == {"person"}
    finally:
        service.stop()
