"""The rekey's switch and the indexes on pseudonyms: on SQLite it drops them and builds
them again after the swap (vir.store.rekey.swap_all), unique ones included. They come
back exactly as they were; and a switch whose unique index cannot be built again (two
rows would collide) is refused and leaves everything as it was, indexes included."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Index, inspect, text, update
from sqlalchemy.exc import IntegrityError
from support import schema, seed
from support.instore import ORGS, T0, Store, fresh_store, template

from vir.crypto import oprf
from vir.crypto.rekey_token import read_token
from vir.domain.errors import Conflict
from vir.services import rekey
from vir.store import rekey as shadows
from vir.store.db import Database
from vir.store.rekey import PLAN
from vir.store.tables import SignalRow

GRACE = dt.timedelta(days=30)
SIGNALS = 40
INDEXED = ("signals", "signal_parents", "archived_signals", "excluded_addresses", "matches")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "switch.sqlite") as store:
        seed.seed(store.db, SIGNALS)
        yield store


def _run(store: Store) -> rekey.RekeyResult:
    return rekey.run(store.db, clock=lambda: T0, grace=GRACE, workers=0, batch=7)


def _indexes(db: Database) -> dict[str, Any]:
    """Every index and unique constraint of the tables the rekey swaps, as the database
    describes them (on SQLite with their SQL, which names a partial index's WHERE)."""
    with db.engine.connect() as connection:
        inspector = inspect(connection)
        found: dict[str, Any] = {
            table: (
                sorted(map(schema.plain, inspector.get_indexes(table)), key=repr),
                sorted(map(schema.plain, inspector.get_unique_constraints(table)), key=repr),
                schema.plain(inspector.get_pk_constraint(table)),
            )
            for table in INDEXED
        }
        if connection.dialect.name == "sqlite":
            found["sqlite_master"] = connection.execute(
                text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
            ).all()
    return found


def _fill_every_shadow(db: Database) -> None:
    """Every shadow written as a run's passes write it: δ times the row's live value."""
    with db.write() as session:
        for part in PLAN:
            keys = shadows.key_width(session, part)
            rows = shadows.read_todo(session, part, None, 10**6)
            done = [(*(_times_delta(v) for v in row[keys:]), *row) for row in rows]
            shadows.write_shadows(session, part, done)


def _times_delta(value: bytes | None) -> bytes | None:
    return None if value is None else oprf.scalar_mult(seed.DELTA, value)


def _signal(db: Database, local_ref: str) -> Any:
    with db.read() as session:
        return session.execute(
            text("SELECT id, oin, person, person_next FROM signals WHERE local_ref = :r"),
            {"r": local_ref},
        ).one()


def _refuses_a_second_person_in_one_organisation(db: Database, local_ref: str) -> None:
    """The unique (person, oin) index is there and enforced: a copy of the signal
    ``local_ref`` under another id and local_ref is refused."""
    refused = pytest.raises(IntegrityError, match=r"uq_signals_person_oin|signals\.person")
    with db.engine.connect() as connection, refused, connection.begin():
        connection.execute(
            text(
                "INSERT INTO signals (id, oin, local_ref, epoch, person, remove_on, "
                "professional_name, content_hash, created_at) SELECT 'copy', oin, "
                "'copy', epoch, person, remove_on, professional_name, content_hash, "
                "created_at FROM signals WHERE local_ref = :r"
            ),
            {"r": local_ref},
        )


def test_a_switch_leaves_every_index_as_it_was(store: Store) -> None:
    before = _indexes(store.db)
    rekey.start(store.db, read_token(seed.token(), seed.VERIFIER_KEY), T0)
    result = _run(store)
    assert result.switched
    assert _indexes(store.db) == before
    _refuses_a_second_person_in_one_organisation(store.db, "seed-3")


def test_a_switch_that_cannot_build_a_unique_index_again_changes_nothing(store: Store) -> None:
    """Two signals of one organisation given the same shadow person: after the swap they
    would share (oin, person), so the unique index cannot be built again (SQLite; on
    PostgreSQL the swap itself meets it). The switch is refused with an error that names
    the index but no pseudonym, and everything is as before: the epochs, every live and
    shadow value, and every index, the unique one still refusing duplicates."""
    rekey.start(store.db, read_token(seed.token(), seed.VERIFIER_KEY), T0)
    _fill_every_shadow(store.db)
    first, second = _signal(store.db, "seed-0"), _signal(store.db, "seed-4")
    assert first.oin == second.oin == str(ORGS[0].oin)
    with store.db.write() as session:
        session.execute(
            update(SignalRow)
            .where(SignalRow.id == second.id)
            .values(person_next=bytes(first.person_next))
        )
    values = seed.pseudonym_columns(store.db)
    indexes = _indexes(store.db)

    with pytest.raises(Conflict, match="the rekey's switch stopped") as failed:
        _run(store)

    message = str(failed.value)
    postgresql = store.db.engine.dialect.name == "postgresql"
    assert "two rows with the same value" in message
    assert postgresql or "uq_signals_person_oin" in message
    planted = (bytes(first.person), bytes(first.person_next), bytes(second.person))
    for value in planted:
        for shown in (value.hex(), repr(value), value.hex().upper()):
            assert shown not in message
    # The driver's error (PostgreSQL's names the duplicate values) is not chained on.
    assert failed.value.__cause__ is None and failed.value.__suppress_context__

    assert seed.epoch_states(store.db) == [(1, "current", False), (2, "incoming", True)]
    assert seed.pseudonym_columns(store.db) == values
    assert _indexes(store.db) == indexes
    _refuses_a_second_person_in_one_organisation(store.db, "seed-0")

    # With the bad shadow cleared, the next run converts it and switches.
    with store.db.write() as session:
        session.execute(update(SignalRow).where(SignalRow.id == second.id).values(person_next=None))
    finished = _run(store)
    assert finished.switched and finished.converted["signals.person"] == 1
    assert _signal(store.db, "seed-4").person == oprf.scalar_mult(seed.DELTA, second.person)
    assert _indexes(store.db) == indexes


def test_the_swap_builds_with_sorter_threads_and_gives_the_connection_back_as_it_was(
    store: Store,
) -> None:
    """On SQLite the indexes are built with one sorter thread per core and a small cache
    (vir.store.rekey.BUILD_CACHE_KIB); the connection, which serves requests after the
    switch, has its cache, its sorter threads and secure_delete back as before."""
    if store.db.engine.dialect.name != "sqlite":
        pytest.skip("the swap sets SQLite's pragmas only")
    rekey.start(store.db, read_token(seed.token(), seed.VERIFIER_KEY), T0)
    _fill_every_shadow(store.db)
    pragmas = ("cache_size", "threads", "secure_delete")
    seen_building: list[tuple[Any, ...]] = []
    create = Index.create

    def creating(index: Any, connection: Any, **kw: Any) -> None:
        seen_building.append(
            tuple(connection.exec_driver_sql(f"PRAGMA {p}").scalar() for p in pragmas[:2])
        )
        create(index, connection, **kw)

    with store.db.write(exclusive=True) as session:
        before = [session.execute(text(f"PRAGMA {p}")).scalar() for p in pragmas]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Index, "create", creating)
            shadows.swap_all(session, 2)
        after = [session.execute(text(f"PRAGMA {p}")).scalar() for p in pragmas]
    assert after == before
    assert seen_building
    threads = min(os.cpu_count() or 1, shadows.MAX_SORT_THREADS)
    assert set(seen_building) == {(-shadows.BUILD_CACHE_KIB, threads)}
