"""An in-process vir store for service-level tests: a migrated database, copied per test.

On SQLite (the default) the template is a migrated file, made once per test
session, and each store a copy of it. With ``VIR_TEST_DATABASE=postgresql`` (see
``support.postgres``) the template is a migrated database made once per test
session; ``template()`` returns a small file naming it, and each store is a
database cloned from it (``CREATE DATABASE ... TEMPLATE``), put back to the
template's content when the store is closed and then reused by a later store.
"""

from __future__ import annotations

import atexit
import datetime as dt
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    MetaData,
    Table,
    create_engine,
    delete,
    insert,
    make_url,
    select,
    text,
)
from sqlalchemy.pool import NullPool
from support import postgres

from vir.domain.organisations import Category, Oin, Organisation
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.store.db import Database
from vir.store.migrate import upgrade

ORGS = [
    Organisation(Oin(f"000000090000000001{i:02d}"), name, category, "Rotterdam", "test-convenant")
    for i, (name, category) in enumerate(
        [
            ("School A", Category.EDUCATION),
            ("Huisarts B", Category.GP),
            ("Jeugdzorg C", Category.YOUTH_CARE),
            ("Politie D", Category.POLICE),
        ]
    )
]
# A second region's reporting organisations: registered by ``support.world`` (with the
# region's municipality), not in the template, so ORGS stays every store's whole list.
UTRECHT_ORGS = [
    Organisation(Oin(f"000000090000000002{i:02d}"), name, category, "Utrecht", "test-convenant")
    for i, (name, category) in enumerate(
        [
            ("School U", Category.EDUCATION),
            ("Huisarts U", Category.GP),
        ]
    )
]
T0 = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
_PG_SUFFIX = ".postgresql"
_TERMINATE_OTHERS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
# The schema's shape (tables, columns, types, indexes): a store whose schema a test
# changed is dropped rather than reused.
_SHAPE = text(
    "SELECT md5(string_agg(c.relname || '.' || a.attname || ':' || a.atttypid::text, ',' "
    "ORDER BY c.relname, a.attnum)) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped"
)


@dataclass
class Store:
    db: Database

    def caller(self, index: int) -> Caller:
        return Caller(ORGS[index], f"{index:064x}")


def _populate(url: str) -> None:
    upgrade(url)
    db = Database.connect(url)
    try:
        for org in ORGS:
            register_organisation(db, org, T0)
    finally:
        db.dispose()


class _PostgresqlStores:
    """Store databases on the test server: a migrated template, cloned on demand, and
    clones put back to the template's content after use and reused. A clone takes
    0.1-0.3 s to make; putting one back, some 20 ms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._template: str | None = None
        self._tables: list[Table] = []
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._sequences: list[tuple[str, int | None, int]] = []
        self._shape = ""
        self._idle: list[str] = []

    def template(self) -> str:
        with self._lock:
            if self._template is None:
                server = postgres.server()
                name = server.unique_name("vir_template")
                url = server.create_database(name)
                _populate(url)
                self._snapshot(url)
                self._template = name
            return self._template

    def _snapshot(self, url: str) -> None:
        engine = create_engine(url)
        try:
            metadata = MetaData()
            metadata.reflect(engine)
            self._tables = list(metadata.sorted_tables)
            with engine.connect() as conn:
                self._shape = conn.execute(_SHAPE).scalar_one()
                self._rows = {
                    t.name: [dict(r) for r in conn.execute(select(t)).mappings()]
                    for t in self._tables
                }
                self._sequences = [
                    (f"{schema}.{name}", last, start)
                    for schema, name, last, start in conn.execute(
                        text(
                            "SELECT schemaname, sequencename, last_value, start_value "
                            "FROM pg_sequences"
                        )
                    )
                ]
        finally:
            engine.dispose()

    def take(self, template_name: str) -> str:
        """A database with the template's content, not in use by any other store."""
        self.template()
        with self._lock:
            if template_name != self._template:
                raise ValueError(f"{template_name} is not this session's template")
            if self._idle:
                return self._idle.pop()
        server = postgres.server()
        return server.create_database(server.unique_name("vir_store"), template=template_name)

    def give_back(self, url: str) -> None:
        """Put ``url``'s database back to the template's content, for the next store."""
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                # Connections a test left behind would hold locks the reset waits for.
                conn.execute(_TERMINATE_OTHERS)
                reusable = conn.execute(_SHAPE).scalar_one() == self._shape
                if reusable:
                    self._reset(conn)
        finally:
            engine.dispose()
        if not reusable:
            postgres.server().drop_database(make_url(url).database or "")
            return
        with self._lock:
            self._idle.append(url)

    def _reset(self, conn: Connection) -> None:
        # DELETE, not TRUNCATE: on tables this small it is several times faster.
        for table in reversed(self._tables):
            conn.execute(delete(table))
        for table in self._tables:
            if self._rows[table.name]:
                conn.execute(insert(table), self._rows[table.name])
        for sequence, last, start in self._sequences:
            conn.execute(
                text("SELECT setval(CAST(:seq AS regclass), :value, :called)"),
                {
                    "seq": sequence,
                    "value": start if last is None else last,
                    "called": last is not None,
                },
            )


_postgresql = _PostgresqlStores()


class _SqliteTemplate:
    """The migrated SQLite template, made once per test session (migrating takes some
    0.3 s, copying the file a millisecond) in a private temporary folder removed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: Path | None = None

    def path(self) -> Path:
        with self._lock:
            if self._path is None:
                folder = Path(tempfile.mkdtemp(prefix="vir-template-"))
                atexit.register(shutil.rmtree, folder, ignore_errors=True)
                path = folder / "template.db"
                _populate(f"sqlite:///{path}")
                self._path = path
            return self._path


_sqlite = _SqliteTemplate()


def template(folder: Path) -> Path:
    """A migrated database with the test organisations, made once per session and
    copied into ``folder``; pass it to fresh_store."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder on either database
    if postgres.on_postgresql():
        path = folder / f"template{_PG_SUFFIX}"
        if not path.exists():
            path.write_text(_postgresql.template() + "\n", encoding="utf-8")
        return path
    path = folder / "template.db"
    if not path.exists():
        shutil.copy(_sqlite.path(), path)
    return path


@contextmanager
def fresh_store(template_path: Path, target: Path) -> Iterator[Store]:
    """A store of its own, copied from ``template_path``: the file ``target`` (SQLite),
    or a new database (PostgreSQL; ``target`` is then not used)."""
    if template_path.suffix == _PG_SUFFIX:
        url = _postgresql.take(template_path.read_text("utf-8").strip())
        db = Database.connect(url)
        try:
            yield Store(db)
        finally:
            db.dispose()
            _postgresql.give_back(url)
        return
    shutil.copy(template_path, target)
    db = Database.connect(f"sqlite:///{target}", durable=False)
    try:
        yield Store(db)
    finally:
        db.dispose()
