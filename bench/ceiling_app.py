"""The ceiling: what vir's two servers would be if they did nothing of their own.

``python ceiling_app.py keyholder DB PORT CERT KEY CA`` answers
``POST /v1/oprf/evaluate`` as vir's key holder does on the wire (the blinded elements
times a fixed key, with libsodium, on the event loop), and nothing else: no caller
identified beyond the TLS handshake, no rate limit, no audit entry, no commit.

``python ceiling_app.py index DB PORT CERT KEY CA`` answers ``POST /v1/signals`` with
one row inserted into SQLite as the baseline inserts (bench/baseline_app.py: WAL,
synchronous=FULL, a worker thread), and an answer shaped as vir's: no matching, no
audit chain, no validation beyond the body's shape; ``POST /v1/signals/batch`` inserts
a batch's rows in one transaction (what ``vir-client import`` sends).

Both over TLS with the service's certificate, asking for a client certificate from the
client CA as vir does (mutual TLS: its cost is the handshake, once per connection). The
real client (``VirClient``: blind, evaluate, unblind, register) against these two is
what servers doing none of vir's own work reach with this client, server stack and
machine: the registration figure's ceiling, next to vir and the baseline. Like the
baseline (whose per-thread connections its index uses), it imports nothing of vir.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import sqlite3
import ssl
import sys
from typing import Any

import pysodium
import uvicorn
from baseline_app import connections
from fastapi import FastAPI
from pydantic import BaseModel

INSERT = "INSERT INTO signals (local_ref, person, parents) VALUES (?, ?, ?)"
# A fixed key: the ceiling pseudonymises made-up numbers, and its pseudonyms are thrown away.
KEY = bytes(pysodium.crypto_core_ristretto255_scalar_random())


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Evaluate(BaseModel):
    blinded_elements: list[str]


class Signal(BaseModel):
    local_ref: str
    epoch: int
    person: str
    parents: list[str] = []
    professional: dict[str, Any]


class Batch(BaseModel):
    signals: list[Signal]


def keyholder_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/oprf/evaluate")
    async def evaluate(body: Evaluate) -> dict[str, Any]:
        mult = pysodium.crypto_scalarmult_ristretto255
        elements = [_encode(bytes(mult(KEY, _decode(e)))) for e in body.blinded_elements]
        return {"epoch": 1, "evaluated_elements": elements}

    return app


def index_app(path: str) -> FastAPI:
    app = FastAPI()
    connection = connections(path)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS signals (id INTEGER PRIMARY KEY, local_ref TEXT, "
            "person TEXT, parents TEXT)"
        )

    def answer(signal: Signal, row: int | None) -> dict[str, Any]:
        return {
            "signal_id": f"{row}-{secrets.token_hex(4)}",
            "local_ref": signal.local_ref,
            "remove_on": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
            "matches": [],
        }

    def values(signal: Signal) -> tuple[str, str, str]:
        return (signal.local_ref, signal.person, ",".join(signal.parents))

    @app.post("/v1/signals", status_code=201)
    def register(signal: Signal) -> dict[str, Any]:
        cursor = connection().execute(INSERT, values(signal))
        return answer(signal, cursor.lastrowid)

    @app.post("/v1/signals/batch")
    def register_batch(batch: Batch) -> dict[str, Any]:
        db = connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = [db.execute(INSERT, values(s)).lastrowid for s in batch.signals]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        results = [
            {"status": 201, **answer(s, row)} for s, row in zip(batch.signals, rows, strict=True)
        ]
        return {"results": results}

    return app


if __name__ == "__main__":
    role, db_path, port, cert, key, ca = sys.argv[1:7]
    uvicorn.run(
        keyholder_app() if role == "keyholder" else index_app(db_path),
        host="127.0.0.1",
        port=int(port),
        ssl_certfile=cert,
        ssl_keyfile=key,
        ssl_ca_certs=ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        log_level="warning",
        access_log=False,
    )
