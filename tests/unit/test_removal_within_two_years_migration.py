"""Migration 0028: stored signals whose removal date was moved past two years after they
were made (which the rule before stop 42 allowed) are brought within it; no other date
changes. On the suite's database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import text
from support import schema, seed
from support.instore import fresh_store, template

from vir.store.db import Database
from vir.store.migrate import upgrade


def test_removal_dates_past_two_years_are_lowered_and_no_other(tmp_path: Path) -> None:
    with fresh_store(template(tmp_path), tmp_path / "index.sqlite") as store:
        url = store.db.engine.url.render_as_string(hide_password=False)
        seed.seed(store.db, 12)  # made on 2026-11-22, removal 2028-01-01
        ids = [i for i, _ in _dates(store.db)]
        changed = {  # (remove_on, archive_until)
            ids[0]: (dt.date(2030, 5, 1), None),  # moved on past two years: lowered
            ids[1]: (dt.date(2028, 11, 22), None),  # exactly two years: kept
            ids[2]: (dt.date(2029, 1, 1), dt.date(2028, 6, 1)),  # 23 first: to it
            ids[3]: (dt.date(2027, 3, 1), None),  # earlier: kept
        }
        with store.db.write() as session:
            for signal, (remove_on, until) in changed.items():
                session.execute(
                    text("UPDATE signals SET remove_on = :r, archive_until = :a WHERE id = :i"),
                    {"r": remove_on, "a": until, "i": signal},
                )
        expected = dict(_dates(store.db))
        store.db.dispose()
        schema.downgrade_to(url, "0027")
        upgrade(url)
        db = Database.connect(url)
        try:
            after = dict(_dates(db))
        finally:
            db.dispose()
    expected[ids[0]] = dt.date(2028, 11, 22)
    expected[ids[2]] = dt.date(2028, 6, 1)
    assert after == expected


def _dates(db: Database) -> list[tuple[str, dt.date]]:
    with db.read() as session:
        found = session.execute(text("SELECT id, remove_on FROM signals ORDER BY id")).all()
    return [
        (str(i), r if isinstance(r, dt.date) else dt.date.fromisoformat(str(r))) for i, r in found
    ]
