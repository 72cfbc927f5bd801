"""Alembic, driven from code: ``vir db upgrade`` and the start-up schema check.

Migrations run on SQLite and PostgreSQL alike. On PostgreSQL they run in one
transaction holding the database's write lock exclusively
(``vir.store.db.take_write_lock``; every other writer takes it shared), so two
instances upgrading at once run them one after the other (the second finds
nothing left to do), and no write transaction interleaves with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from vir.domain.errors import ConfigurationError
from vir.store.db import sqlite_file


def _config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "vir.store:migrations")
    if url is not None:
        # ConfigParser interpolation: a '%' in the URL (an escaped password) stays literal.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# What a database that cannot be reached raises: the server down or elsewhere, a refused
# login, a missing database. Its message is the driver's, which can quote the host, the
# user and even the password; it is never shown.
UNREACHABLE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def unreachable(setting: str, error: BaseException) -> ConfigurationError:
    """The one-line refusal for a database that does not answer: the setting and what to
    check, the exception's class, never the URL or the driver's message."""
    return ConfigurationError(
        f"the database in {setting} cannot be used ({type(error).__name__}): check that "
        f"its server runs and accepts connections at the host and port in {setting}, and "
        "the user, password and database name there"
    )


@contextmanager
def reaching(setting: str) -> Iterator[None]:
    """Turn a database that does not answer, inside the block, into ``unreachable``."""
    try:
        yield
    except UNREACHABLE as error:
        raise unreachable(setting, error) from None


def upgrade(url: str, revision: str = "head", setting: str = "VIR_DATABASE_URL") -> None:
    with reaching(setting):
        command.upgrade(_config(url), revision)


def require_existing(url: str, setting: str = "VIR_DATABASE_URL") -> None:
    """Refuse a SQLite database whose file does not exist, before anything opens it:
    opening creates it, empty, and a command that only reads (``vir audit verify``) would
    then report on an empty log rather than say that it looked in the wrong place. A
    relative path is relative to the current directory, hence the folder in the message.
    Creating a database is ``vir db upgrade``'s alone, at a new index's first set-up."""
    path = sqlite_file(url)
    if path is None or path.exists():
        return
    raise ConfigurationError(
        f"no database at {path.resolve()} ({setting} is {url}"
        + ("" if path.is_absolute() else f", relative to the current directory {Path.cwd()}")
        + f"): set {setting} to the index's database, or run this where it is relative to. "
        "Only when setting up a new index: vir db upgrade creates an empty one"
    )


def require_current(engine: Engine, setting: str = "VIR_DATABASE_URL") -> None:
    """Refuse to serve on a database whose schema is not at the latest migration; one with
    no schema at all is named, and not given the advice to upgrade: that would make an
    empty index of what is most likely the wrong database."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    with reaching(setting), engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        path = sqlite_file(engine.url.render_as_string(hide_password=False))
        where = path.resolve() if path is not None else engine.url.render_as_string()
        raise ConfigurationError(
            f"the database at {where} is empty (no vir schema): is the database URL "
            "setting the index's database? Only when setting up a new index: vir db upgrade"
        )
    if current != head:
        raise ConfigurationError(
            f"database schema is at {current}, not {head}; run: vir db upgrade"
        )
