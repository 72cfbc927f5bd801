"""Alembic environment: runs migrations on the URL set by vir.store.migrate."""

from __future__ import annotations

from alembic import context

from vir.store.db import make_engine, take_write_lock
from vir.store.tables import Base

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            # PostgreSQL: before the current revision is read, so that of two instances
            # upgrading at once the second waits and then finds the work done.
            take_write_lock(connection)
            context.run_migrations()
finally:
    engine.dispose()
