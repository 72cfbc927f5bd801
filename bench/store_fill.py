"""Filler signals put straight into a migrated SQLite store with ``sqlite3``: the large
stores of ``bench.py`` (registration latency by store size) and ``lifecycle_bench.py``.

Signals of one organisation, each with one parent, random pseudonyms that link to
nothing (no matches); seeded, so a seed gives the same rows every time.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import uuid
from pathlib import Path

BATCH = 20_000  # rows a statement
# Registered this long ago: old enough for a removal date of up to two years after it to
# have come, for the signals that are due.
AGE = dt.timedelta(days=400)


def fill(
    db_path: Path,
    count: int,
    oin: str,
    *,
    expiring: int = 0,
    organisation: str | None = None,
    seed: int = 15,
) -> None:
    """Add ``count`` signals of ``oin``. ``expiring`` of them are due (spread evenly
    through the table, due 1..30 days ago), the others one to two years from today.
    ``organisation``: also add the organisation itself, under that name (a store made
    by ``vir db upgrade`` alone has none)."""
    rng = random.Random(seed)
    today = dt.date.today()
    created = (dt.datetime.now(dt.UTC) - AGE).strftime("%Y-%m-%d %H:%M:%S.%f")
    every = count // expiring if expiring else count + 1
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA cache_size=-262144")  # 256 MiB: the indexes of a large fill stay cached
    with db:
        if organisation is not None:
            db.execute(
                "INSERT INTO organisations (oin, name, category, region, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (oin, organisation, "gp", "Bench", created),
            )
        for start in range(0, count, BATCH):
            rows, parents = [], []
            for i in range(start, min(start + BATCH, count)):
                sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                due = i % every == 0 and i // every < expiring
                remove_on = (
                    today - dt.timedelta(days=1 + i % 30)
                    if due
                    else today + dt.timedelta(days=365 + i % 365)
                )
                rows.append(
                    (
                        sid,
                        oin,
                        f"fill-{i}",
                        1,
                        rng.randbytes(32),
                        rng.randbytes(32),
                        remove_on.isoformat(),
                        "Filler",
                        "f@example.nl",
                        None,
                        None,
                        rng.randbytes(32),
                        created,
                    )
                )
                parents.append((sid, rng.randbytes(32)))
            db.executemany(
                "INSERT INTO signals (id, oin, local_ref, epoch, person, address, remove_on, "
                "professional_name, professional_email, professional_phone, "
                "professional_function, content_hash, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.executemany("INSERT INTO signal_parents (signal_id, parent) VALUES (?,?)", parents)
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
