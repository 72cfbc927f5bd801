"""Registrations combined (vir.services.combining): what one organisation
sends never decides another's answer, and none of it reaches another's thread."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select
from support.world import World, person, world

from vir.domain.errors import Conflict, VirError
from vir.domain.signals import Professional
from vir.services.signals import SignalRequest
from vir.store.tables import SignalRow


def _request(ref: str, who: str, name: str) -> SignalRequest:
    return SignalRequest(
        ref, 1, person(who), (), None, None, Professional(name, "anna@org.example"), None
    )


def test_a_flood_of_conflicts_changes_nothing_for_another_organisation(tmp_path: Path) -> None:
    """Organisation 0 repeats one local_ref with other content from eight threads (each a
    conflict) while organisation 1 registers forty children: every one of 1's is
    registered, every refusal goes to 0's threads, and none names 1's signals."""
    with world(tmp_path) as w:
        w.signals.register(w.caller(0), _request("HOSTILE-1", "first", "Anna de Vries"))
        refused: list[VirError] = []
        registered: list[str] = []
        lock = threading.Lock()

        def hostile(n: int) -> None:
            for i in range(10):
                try:
                    w.signals.register(
                        w.caller(0), _request("HOSTILE-1", f"other-{n}-{i}", "Piet Jansen")
                    )
                except VirError as error:
                    with lock:
                        refused.append(error)

        def honest(n: int) -> None:
            for i in range(10):
                ref = f"B-{n}-{i}"
                got = w.signals.register(w.caller(1), _request(ref, f"kind-{n}-{i}", "Kees Smit"))
                with lock:
                    registered.append(got.signal.local_ref)

        threads = [threading.Thread(target=hostile, args=(n,)) for n in range(8)]
        threads += [threading.Thread(target=honest, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(registered) == sorted(f"B-{n}-{i}" for n in range(4) for i in range(10))
        assert len(refused) == 80 and all(isinstance(e, Conflict) for e in refused)
        assert not any("B-" in str(e) for e in refused)
        assert _stored_refs(w, 1) == set(registered)
        assert _stored_refs(w, 0) == {"HOSTILE-1"}


def _stored_refs(w: World, org: int) -> set[str]:
    oin = w.caller(org).oin
    with w.store.db.read() as session:
        return set(session.scalars(select(SignalRow.local_ref).where(SignalRow.oin == oin)))
