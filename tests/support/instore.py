"""An in-process vir store for service-level tests: a migrated SQLite file, copied per test."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vir.domain.organisations import Category, Oin, Organisation
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.store.db import make_engine, make_sessionmaker
from vir.store.migrate import upgrade

ORGS = [
    Organisation(Oin(f"000000090000000001{i:02d}"), name, category, "Rotterdam")
    for i, (name, category) in enumerate(
        [
            ("School A", Category.EDUCATION),
            ("Huisarts B", Category.GP),
            ("Jeugdzorg C", Category.YOUTH_CARE),
            ("Politie D", Category.POLICE),
        ]
    )
]
T0 = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]

    def caller(self, index: int) -> Caller:
        return Caller(ORGS[index], f"{index:064x}")


def template(folder: Path) -> Path:
    """A migrated database with the test organisations, made once."""
    path = folder / "template.db"
    if not path.exists():
        upgrade(f"sqlite:///{path}")
        engine = make_engine(f"sqlite:///{path}")
        for org in ORGS:
            register_organisation(make_sessionmaker(engine), org, T0)
        engine.dispose()
    return path


@contextmanager
def fresh_store(template_path: Path, target: Path) -> Iterator[Store]:
    shutil.copy(template_path, target)
    engine = make_engine(f"sqlite:///{target}", durable=False)
    try:
        yield Store(engine, make_sessionmaker(engine))
    finally:
        engine.dispose()
