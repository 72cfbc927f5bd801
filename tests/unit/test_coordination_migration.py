"""Migration 0017: every match active at the upgrade gets a coordinator by the default
rules; an ended match gets none."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from vir.store.migrate import upgrade

ORGS = {
    "00000009000000000100": "education",
    "00000009000000000101": "gp",
    "00000009000000000102": "youth_care",
    "00000009000000000103": "police",
}
# match -> its members (signal, organisation, registered at); ``ended`` has ended.
MATCHES = {
    "youth-care-first": [("a1", "100", "09:00"), ("a2", "101", "09:01"), ("a3", "102", "09:02")],
    "gp-over-school": [("b1", "100", "09:00"), ("b2", "101", "09:03")],
    "earliest-of-two-gps": [("c1", "101", "09:05"), ("c2", "101", "09:04"), ("c3", "100", "09:00")],
    "none-eligible": [("d1", "103", "09:07"), ("d2", "100", "09:06")],
    "ended": [],
}


def test_active_matches_get_their_coordinator_by_the_default_rules(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coordination.db'}"
    upgrade(url, "0016")
    engine = create_engine(url)
    with engine.begin() as connection:
        for oin, category in ORGS.items():
            connection.execute(
                text(
                    "INSERT INTO organisations (oin, name, category, region, created_at) "
                    "VALUES (:oin, :oin, :category, 'Rotterdam', '2026-11-01 00:00:00')"
                ),
                {"oin": oin, "category": category},
            )
        n = 0
        for match_id, members in MATCHES.items():
            connection.execute(
                text(
                    "INSERT INTO matches (id, via, key, created_at, ended_at) VALUES (:id, "
                    "'person', :key, '2026-11-01 10:00:00', :ended)"
                ),
                {
                    "id": match_id,
                    "key": None if not members else match_id.encode().ljust(32, b"."),
                    "ended": "2026-11-02 00:00:00" if not members else None,
                },
            )
            for signal_id, oin, at in members:
                n += 1
                connection.execute(
                    text(
                        "INSERT INTO signals (id, oin, local_ref, epoch, person, remove_on, "
                        "professional_name, content_hash, created_at) VALUES (:id, :oin, :id, "
                        "1, :p, '2027-11-01', 'Anna', :p, :at)"
                    ),
                    {
                        "id": signal_id,
                        "oin": f"000000090000000001{oin[1:]}",
                        "p": bytes([n]) * 32,
                        "at": f"2026-11-01 {at}:00.000000",
                    },
                )
                connection.execute(
                    text(
                        "INSERT INTO match_members (match_id, signal_id, joined_at) VALUES "
                        "(:m, :s, '2026-11-01 10:00:00')"
                    ),
                    {"m": match_id, "s": signal_id},
                )
    engine.dispose()

    upgrade(url)

    engine = create_engine(url)
    with engine.connect() as connection:
        found = dict(connection.execute(text("SELECT id, coordinator FROM matches")).all())
    engine.dispose()
    assert found == {
        "youth-care-first": "a3",
        "gp-over-school": "b2",
        "earliest-of-two-gps": "c2",
        "none-eligible": "d2",
        "ended": None,
    }
