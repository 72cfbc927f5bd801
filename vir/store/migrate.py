"""Alembic, driven from code: ``vir db upgrade`` and the start-up schema check."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from vir.domain.errors import ConfigurationError


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "vir.store:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(_config(url), revision)


def require_current(engine: Engine) -> None:
    """Refuse to serve on a database whose schema is not at the latest migration."""
    head = ScriptDirectory.from_config(_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise ConfigurationError(
            f"database schema is at {current or 'nothing'}, not {head}; run: vir db upgrade"
        )
