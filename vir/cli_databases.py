"""The databases a ``vir`` command opened (the index's, a key holder's), closed when the
command is done, so that no connection outlives it (a command may run in-process, from a
test or a job runner)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vir.store.db import Database

_OPENED: list[Database] = []
# The setting that names the database a command works on, for its refusals: the key
# holder's when a command shared with the index runs at the key holder.
DATABASE_SETTING: ContextVar[str] = ContextVar("database_setting", default="VIR_DATABASE_URL")


def open_database(url: str, setting: str | None = None) -> Database:
    """Sessions on the database at ``url`` (the value of ``setting``), which must exist
    (never created here: a command reading the wrong place must say so, not make an
    empty database) with its schema current (imported late: ``vir --help`` stays fast)."""
    from vir.store.db import Database
    from vir.store.migrate import require_current, require_existing

    setting = setting or DATABASE_SETTING.get()
    require_existing(url, setting)
    db = Database.connect(url)
    _OPENED.append(db)
    require_current(db.engine, setting)
    return db


def close_databases() -> None:
    while _OPENED:
        _OPENED.pop().dispose()
