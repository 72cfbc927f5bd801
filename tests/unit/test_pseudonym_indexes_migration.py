"""Migration 0024: one unique index on signals (person, oin) instead of two indexes on
person; the lifecycle's index without person; ``signal_parents`` without a primary key
but with the same rule as a unique index (parent, signal_id), and an index by signal
(SQLite rebuilds the table for it). Downgrade and upgrade again keep every row, and
every other column, key, index and foreign key. The rules the old keys enforced still
hold. On the suite's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool
from support import schema, seed
from support.instore import Store, fresh_store, template

SIGNALS = 30


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store with signals and their parents, some parent shadows written (as during a
    rekey)."""
    with fresh_store(template(tmp_path), tmp_path / "index.sqlite") as store:
        seed.seed(store.db, SIGNALS)
        with store.db.write() as session:
            session.execute(
                text(
                    "UPDATE signal_parents SET parent_next = parent WHERE parent IN "
                    "(SELECT parent FROM signal_parents ORDER BY parent LIMIT 5)"
                )
            )
        yield store


@pytest.fixture
def engine(store: Store) -> Iterator[Engine]:
    engine = create_engine(_url(store), poolclass=NullPool)
    yield engine
    engine.dispose()


def _url(store: Store) -> str:
    return store.db.engine.url.render_as_string(hide_password=False)


def _indexes(found: dict[str, Any], table: str) -> dict[str, tuple[list[str], bool]]:
    """A table's indexes by name: (columns, unique); not PostgreSQL's own index of a
    constraint."""
    return {
        i["name"]: (i["column_names"], bool(i["unique"]))
        for i in found[table]["indexes"]
        if not i.get("duplicates_constraint")
    }


def _state(engine: Engine) -> tuple[dict[str, Any], dict[str, Any]]:
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            schema.sqlite_is_sound(connection)
        return schema.schema(connection), schema.rows(connection)


def test_the_indexes_change_and_back_keeping_every_row(store: Store, engine: Engine) -> None:
    schema.downgrade_to(_url(store), "0025")  # what 0024 made (0026 changed organisations)
    head_schema, head_rows = _state(engine)
    assert len(head_rows["signal_parents"]) == SIGNALS
    signals, parents = _indexes(head_schema, "signals"), _indexes(head_schema, "signal_parents")
    assert signals["uq_signals_person_oin"] == (["person", "oin"], True)
    assert signals["ix_signals_remove_on_id"] == (["remove_on", "id"], False)
    gone = {"ix_signals_person", "uq_signals_oin_person", "ix_signals_remove_on_id_person"}
    assert not gone & set(signals)
    assert parents == {
        "uq_signal_parents_parent_signal": (["parent", "signal_id"], True),
        "ix_signal_parents_signal_id": (["signal_id"], False),
    }
    assert head_schema["signal_parents"]["primary_key"]["constrained_columns"] == []
    columns = head_schema["signal_parents"]["columns"]
    assert [(name, nullable) for name, _type, nullable in columns] == [
        ("signal_id", False),
        ("parent", False),
        ("parent_next", True),
    ]

    schema.downgrade_to(_url(store), "0023")
    old_schema, old_rows = _state(engine)
    assert old_rows == head_rows
    assert old_schema["signal_parents"]["primary_key"]["constrained_columns"] == [
        "signal_id",
        "parent",
    ]
    assert _indexes(old_schema, "signal_parents") == {
        "ix_signal_parents_parent": (["parent"], False)
    }
    old_signals = _indexes(old_schema, "signals")
    assert old_signals["ix_signals_person"] == (["person"], False)
    assert old_signals["uq_signals_oin_person"] == (["oin", "person"], True)
    assert old_signals["ix_signals_remove_on_id_person"] == (["remove_on", "id", "person"], False)
    assert not {"uq_signals_person_oin", "ix_signals_remove_on_id"} & set(old_signals)
    changed = {"signals", "signal_parents"}
    assert {t: s for t, s in old_schema.items() if t not in changed} == {
        t: s for t, s in head_schema.items() if t not in changed
    }
    assert (
        old_schema["signal_parents"]["foreign_keys"]
        == (head_schema["signal_parents"]["foreign_keys"])
    )

    schema.upgrade_to(_url(store), "0025")
    assert _state(engine) == (head_schema, head_rows)


def _one_parent(connection: Connection) -> Any:
    return connection.execute(text("SELECT signal_id, parent FROM signal_parents LIMIT 1")).one()


def test_a_parent_declared_twice_for_one_signal_is_refused(engine: Engine) -> None:
    with engine.connect() as connection:
        row = _one_parent(connection)
    refused = pytest.raises(IntegrityError, match=r"uq_signal_parents_parent_signal|parent")
    with engine.connect() as connection, refused, connection.begin():
        connection.execute(
            text("INSERT INTO signal_parents (signal_id, parent) VALUES (:s, :p)"),
            {"s": row.signal_id, "p": row.parent},
        )
    with engine.connect() as connection, pytest.raises(IntegrityError), connection.begin():
        connection.execute(
            text("INSERT INTO signal_parents (signal_id, parent) VALUES (:s, NULL)"),
            {"s": row.signal_id},
        )


def test_a_removed_signal_takes_its_parents_with_it(store: Store, engine: Engine) -> None:
    with engine.connect() as connection:
        row = _one_parent(connection)
    with store.db.write() as session:
        session.execute(text("DELETE FROM signals WHERE id = :s"), {"s": row.signal_id})
    with engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM signal_parents WHERE signal_id = :s"), {"s": row.signal_id}
        ).scalar()
        assert left == 0
        assert connection.execute(text("SELECT count(*) FROM signal_parents")).scalar() == (
            SIGNALS - 1
        )


def test_postgresql_identifies_replicated_rows_by_the_unique_index(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's replica identity")
    with engine.connect() as connection:
        identity = connection.execute(
            text("SELECT relreplident FROM pg_class WHERE relname = 'signal_parents'")
        ).scalar()
        index = connection.execute(
            text(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'signal_parents'::regclass AND i.indisreplident"
            )
        ).scalar()
    assert (identity, index) == ("i", "uq_signal_parents_parent_signal")
