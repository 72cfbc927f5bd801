"""An in-process vir store for service-level tests: a migrated SQLite file, copied per test."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vir.domain.organisations import Category, Oin, Organisation
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.store.db import Database
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
    db: Database

    def caller(self, index: int) -> Caller:
        return Caller(ORGS[index], f"{index:064x}")


def template(folder: Path) -> Path:
    """A migrated database with the test organisations, made once."""
    path = folder / "template.db"
    if not path.exists():
        upgrade(f"sqlite:///{path}")
        db = Database.connect(f"sqlite:///{path}")
        for org in ORGS:
            register_organisation(db, org, T0)
        db.dispose()
    return path


@contextmanager
def fresh_store(template_path: Path, target: Path) -> Iterator[Store]:
    shutil.copy(template_path, target)
    db = Database.connect(f"sqlite:///{target}", durable=False)
    try:
        yield Store(db)
    finally:
        db.dispose()
