"""The baseline: a bare FastAPI endpoint that inserts one row into SQLite.

Same durability as vir (WAL, synchronous=FULL) and the same server (uvicorn
over TLS with the same certificate), so the ratio measures what vir adds:
mutual TLS identity, pseudonymisation, validation, matching and the audit chain.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Row(BaseModel):
    local_ref: str
    person: str


def make_app(path: str) -> FastAPI:
    app = FastAPI()
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            local.db = db
        return local.db

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
