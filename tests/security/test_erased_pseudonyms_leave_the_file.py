"""A pseudonym vir no longer holds is gone from the SQLite file too, not only from the
tables: SQLite zeroes what it deletes (``PRAGMA secure_delete``, set by vir on every
connection whatever the library's build default), and a rekey's switch, which frees
whole indexes of old-epoch pseudonyms without zeroing them (the faster way), zeroes
whatever of that space its new indexes did not take again. Checked on the bytes of the
database file after a full checkpoint, the way someone who copies the file would."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from support import postgres, seed
from support.instore import T0, Store, fresh_store, template

from vir.crypto.rekey_token import read_token
from vir.services import rekey
from vir.store import rekey as shadows

pytestmark = pytest.mark.skipif(postgres.on_postgresql(), reason="the SQLite file")

SIGNALS = 300


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "erase.sqlite") as store:
        seed.seed(store.db, SIGNALS)
        yield store


def _file_after_checkpoint(store: Store) -> bytes:
    with store.db.engine.connect() as connection:
        busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        assert busy == 0
    path = store.db.engine.url.database
    assert path is not None
    assert Path(path + "-wal").stat().st_size == 0
    return Path(path).read_bytes()


def _values(store: Store) -> list[bytes]:
    """Every pseudonym stored, in every column (live and shadow), as often as held."""
    return [
        bytes(v)
        for rows in seed.pseudonym_columns(store.db).values()
        for row in rows
        for v in row
        if isinstance(v, bytes | memoryview) and len(v) == 32
    ]


def test_every_connection_zeroes_what_it_deletes(store: Store) -> None:
    with store.db.read() as session:
        assert session.execute(text("PRAGMA secure_delete")).scalar() == 1


def test_a_deleted_signal_s_pseudonyms_are_not_in_the_file(store: Store) -> None:
    held = Counter(_values(store))
    with store.db.read() as session:
        candidates = session.execute(
            text("SELECT id, person, address FROM signals WHERE address IS NOT NULL")
        ).all()
    # A signal whose person and address nothing else holds (a match or another signal).
    signal_id, person, address = next(
        (i, bytes(p), bytes(a)) for i, p, a in candidates if held[bytes(p)] == held[bytes(a)] == 1
    )
    before = _file_after_checkpoint(store)
    assert [v in before for v in (person, address)] == [True, True]
    with store.db.write() as session:
        session.execute(text("DELETE FROM signals WHERE id = :i"), {"i": signal_id})
    content = _file_after_checkpoint(store)
    left = [name for name, v in (("person", person), ("address", address)) if v in content]
    assert left == []


@pytest.mark.parametrize("blob", [None, 3 * 4096], ids=["one blob", "blobs of 3 pages"])
def test_after_a_rekey_no_pseudonym_of_the_old_epoch_is_in_the_file(
    store: Store, blob: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if blob is not None:  # the free pages zeroed blob by blob, as in a large file
        monkeypatch.setattr(shadows, "ZERO_BLOB_BYTES", blob)
    old = set(_values(store))
    assert len(old) >= 2 * SIGNALS
    content = _file_after_checkpoint(store)
    assert all([value in content for value in old])
    rekey.start(store.db, read_token(seed.token(), seed.VERIFIER_KEY), T0)
    result = rekey.run(store.db, clock=lambda: T0, grace=dt.timedelta(days=30), workers=0)
    assert result.switched

    content = _file_after_checkpoint(store)
    assert [v.hex()[:8] for v in old if v in content] == []
    new = set(_values(store))
    assert new and all([value in content for value in new])
    with store.db.read() as session:
        assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
