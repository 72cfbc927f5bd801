"""The migrations build exactly the schema the tables declare (no drift either way)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from support import postgres

from vir.store.migrate import upgrade
from vir.store.tables import Base


def test_migrated_schema_equals_the_declared_tables(tmp_path: Path) -> None:
    """On the suite's database (VIR_TEST_DATABASE): SQLite, or a new PostgreSQL one."""
    if postgres.on_postgresql():
        server = postgres.server()
        url = server.create_database(server.unique_name("vir_schema"))
    else:
        url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_notification_positions_number_existing_rows_per_organisation(tmp_path: Path) -> None:
    """0007 numbers the notifications already stored in seq order, per organisation, and
    starts each organisation's counter after its last one."""
    url = f"sqlite:///{tmp_path / 'positions.db'}"
    upgrade(url, "0006")
    engine = create_engine(url)
    rows = [(seq, oin) for seq, oin in enumerate(["A", "B", "A", "B", "B", "A", "C"], 1)]
    with engine.begin() as connection:
        for seq, oin in rows:
            connection.execute(
                text(
                    "INSERT INTO notifications (seq, id, oin, local_ref, type, match_id, "
                    "created_at, payload) VALUES (:seq, :id, :oin, 'r', 'match.created', 'm', "
                    "'2026-11-01 00:00:00', '{}')"
                ),
                {"seq": seq, "id": f"n{seq}", "oin": oin.ljust(20, "0")},
            )
    engine.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        positions = connection.execute(
            text("SELECT seq, substr(oin, 1, 1), position FROM notifications ORDER BY seq")
        ).all()
        counters = {
            oin: last
            for oin, last in connection.execute(
                text("SELECT substr(oin, 1, 1), last FROM notification_counters")
            )
        }
    engine.dispose()
    assert [p for _, _, p in positions] == [1, 1, 2, 2, 3, 3, 1]
    assert counters == {"A": 3, "B": 3, "C": 1}
