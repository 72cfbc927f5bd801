"""A database's schema and rows as comparable values, for the migration tests: what an
upgrade and its downgrade must keep (every row, and every other column, key, index and
foreign key), on the suite's database, SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text
from sqlalchemy.sql import ClauseElement


def plain(found: Any) -> Any:
    """A reflected description as a comparable value: a partial index's WHERE (a SQL
    expression) as its text."""
    if isinstance(found, dict):
        return {k: plain(v) for k, v in found.items()}
    if isinstance(found, list):
        return [plain(v) for v in found]
    if isinstance(found, ClauseElement):
        return str(found)
    return found


def schema(connection: Connection) -> dict[str, Any]:
    """Every table's columns, keys, unique constraints, indexes and foreign keys."""
    inspector = inspect(connection)
    found: dict[str, Any] = {}
    for table in inspector.get_table_names():
        columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        found[table] = {
            "columns": columns,
            "primary_key": plain(inspector.get_pk_constraint(table)),
            "foreign_keys": sorted(map(plain, inspector.get_foreign_keys(table)), key=repr),
            "unique": sorted(map(plain, inspector.get_unique_constraints(table)), key=repr),
            "indexes": sorted(map(plain, inspector.get_indexes(table)), key=repr),
        }
    return found


def rows(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but alembic's, sorted."""
    tables = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
    return {
        t: sorted((tuple(r) for r in connection.execute(text(f'SELECT * FROM "{t}"'))), key=repr)
        for t in tables
    }


def sqlite_is_sound(connection: Connection) -> None:
    assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "vir.store:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to(url: str, revision: str) -> None:
    command.upgrade(_config(url), revision)


def downgrade_to(url: str, revision: str) -> None:
    command.downgrade(_config(url), revision)
