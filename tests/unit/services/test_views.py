"""Records round-trip: the store reads back what it wrote, and a notification's stored
match reads back into the response model as the route renders the record itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from support.instore import T0
from support.world import world

from vir.api.schemas import MatchOut
from vir.domain.matching import Via
from vir.domain.signals import Professional
from vir.services.views import MatchView, Participant, match_payload
from vir.store import signals as repo
from vir.store.records import Informed, OrganisationContact

SCHOOL = OrganisationContact(
    "00000009000000000100",
    "School A",
    "education",
    Professional.stored("Carla Coördinator", "c@school.example", None, None),
)
GP = OrganisationContact("00000009000000000200", "Huisarts B", "healthcare")
ANNA = Professional("Anna de Vries", "anna@school.example", None, "mentor")
BRAM = Professional.stored("Bram Jansen", None, "010-1234567", "not-a-code-any-more")


def test_the_store_reads_back_the_signal_it_wrote(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        registered = w.register(0, "kim")
        with w.store.db.read() as session:
            assert repo.signal_by_ref(session, registered.oin, registered.local_ref) == registered
        informed = Informed(T0.date(), "both")
        with w.store.db.write() as session:
            repo.set_informed(session, registered.id, informed)
            repo.set_professional(session, registered.id, BRAM, b"h" * 32)
        with w.store.db.read() as session:
            (read,) = repo.signals_by_id(session, [registered.id])
        assert read == dataclasses.replace(
            registered, informed=informed, professional=BRAM, content_hash=b"h" * 32
        )


def test_a_stored_match_reads_back_as_the_route_renders_it() -> None:
    views = [
        MatchView(
            "m-1",
            Via.PARENT,
            active=True,
            participants=(Participant(SCHOOL, ANNA, T0), Participant(GP, BRAM, T0)),
        ),
        MatchView(
            "m-2",
            Via.PERSON,
            active=False,
            participants=(Participant(GP, BRAM, T0, archived_on=dt.date(2026, 12, 1)),),
            historical=True,
        ),
        MatchView("m-3", Via.ADDRESS, active=False, participants=()),
    ]
    for view in views:
        assert MatchOut.model_validate_json(match_payload(view)) == MatchOut.of(view)


def test_the_stored_match_keeps_the_wire_shape() -> None:
    offer = MatchView(
        "m-2",
        Via.PERSON,
        active=False,
        participants=(Participant(SCHOOL, ANNA, T0, archived_on=dt.date(2026, 12, 1)),),
        historical=True,
    )
    assert json.loads(match_payload(offer)) == {
        "id": "m-2",
        "kind": "person",
        "via": "person",
        "active": False,
        "historical": True,
        "participants": [
            {
                "organisation": {"oin": SCHOOL.oin, "name": "School A"},
                "professional": {
                    "name": "Anna de Vries",
                    "email": "anna@school.example",
                    "phone": None,
                    "function": "mentor",
                    "function_label": "Mentor",
                },
                "coordinator": {
                    "name": "Carla Coördinator",
                    "email": "c@school.example",
                    "phone": None,
                },
                "since": "2026-11-22T09:00:00.000000Z",
                "archived_on": "2026-12-01",
            }
        ],
    }
    # An ordinary match carries neither ``historical`` nor ``archived_on``, as before.
    plain = json.loads(
        match_payload(MatchView("m-1", Via.PARENT, True, (Participant(GP, BRAM, T0),)))
    )
    assert "historical" not in plain and "archived_on" not in plain["participants"][0]
    assert plain["kind"] == "household" and plain["participants"][0]["coordinator"] is None
    assert plain["participants"][0]["professional"]["function_label"] is None
