"""Alembic, driven from code: ``vir db upgrade`` and the start-up schema check.

Migrations run on SQLite and PostgreSQL alike. On PostgreSQL they run in one
transaction holding the database's write lock exclusively
(``vir.store.db.take_write_lock``; every other writer takes it shared), so two
instances upgrading at once run them one after the other (the second finds
nothing left to do), and no write transaction interleaves with them.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from vir.domain.errors import ConfigurationError


def _config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "vir.store:migrations")
    if url is not None:
        # ConfigParser interpolation: a '%' in the URL (an escaped password) stays literal.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(_config(url), revision)


def require_current(engine: Engine) -> None:
    """Refuse to serve on a database whose schema is not at the latest migration."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise ConfigurationError(
            f"database schema is at {current or 'nothing'}, not {head}; run: vir db upgrade"
        )
