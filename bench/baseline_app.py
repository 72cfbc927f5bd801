"""The baseline: a bare FastAPI endpoint that inserts one row into SQLite.

Same durability as vir (WAL, synchronous=FULL) and the same server (uvicorn
over TLS with the same certificate), so the ratio measures what vir adds:
mutual TLS identity, pseudonymisation, validation, matching and the audit chain.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Row(BaseModel):
    local_ref: str
    person: str


def connections(path: str) -> Callable[[], sqlite3.Connection]:
    """Each thread's own connection to ``path``, made on first use: WAL, a durable
    commit (``synchronous=FULL``) and autocommit (one statement, one transaction)
    unless the caller begins one. bench/ceiling_app.py's index uses it too."""
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            local.db = db
        found: sqlite3.Connection = local.db
        return found

    return connection


def make_app(path: str) -> FastAPI:
    app = FastAPI()
    connection = connections(path)

    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, local_ref TEXT, person TEXT)"
        )

    @app.post("/insert", status_code=201)
    def insert(row: Row) -> dict[str, int]:
        db = connection()
        cursor = db.execute(
            "INSERT INTO rows (local_ref, person) VALUES (?, ?)", (row.local_ref, row.person)
        )
        return {"id": int(cursor.lastrowid or 0)}

    return app


if __name__ == "__main__":
    db_path, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    uvicorn.run(
        make_app(db_path),
        host="127.0.0.1",
        port=port,
        ssl_certfile=cert,
        ssl_keyfile=key,
        log_level="warning",
        access_log=False,
    )
