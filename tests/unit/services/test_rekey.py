"""The rekey on a store: every pseudonym column becomes δ times what it was, once; the
run stops and resumes anywhere; replays and wrong tokens change nothing; epochs retire."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, insert, select, text
from support import seed
from support.instore import ORGS, T0, Store, fresh_store, template

from vir.audit.actions import Action
from vir.crypto import oprf
from vir.crypto.rekey_token import RekeyToken, read_token
from vir.domain.errors import Conflict
from vir.services import rekey
from vir.store.integrity import PSEUDONYM_COLUMNS, check_pseudonyms
from vir.store.rekey import PLAN, row_key
from vir.store.tables import AuditEntryRow, Base, SignalRow

GRACE = dt.timedelta(days=30)
SIGNALS = 60


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "rekey.sqlite") as store:
        seed.seed(store.db, SIGNALS)
        yield store


def _token(from_epoch: int = 1, delta: bytes = seed.DELTA) -> RekeyToken:
    return read_token(seed.token(from_epoch, delta), seed.VERIFIER_KEY)


def _run(store: Store, **options: Any) -> rekey.RekeyResult:
    options.setdefault("workers", 0)
    options.setdefault("batch", 7)
    return rekey.run(store.db, clock=lambda: T0, grace=GRACE, **options)


def _times(delta: bytes, columns: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[Any]]:
    """What every row should hold after a rekey by ``delta``: live values times δ (keys
    that are pseudonyms too, likewise), shadows empty."""
    expected: dict[str, list[Any]] = {}
    for part in PLAN:
        keys = [c.name for c in row_key(part.table)]
        width = len(part.live)
        rows = []
        for row in columns[part.name]:
            key = tuple(
                _mul(delta, v) if name in part.live else v
                for name, v in zip(keys, row[: len(keys)], strict=True)
            )
            live = tuple(_mul(delta, v) for v in row[len(keys) : len(keys) + width])
            rows.append((key, live, (None,) * width))
        expected[part.name] = sorted(rows, key=repr)
    return expected


def _mul(delta: bytes, value: bytes | None) -> bytes | None:
    return None if value is None else oprf.scalar_mult(delta, value)


def _shape(columns: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[Any]]:
    shaped: dict[str, list[Any]] = {}
    for part in PLAN:
        keys = len(row_key(part.table))
        width = len(part.live)
        shaped[part.name] = sorted(
            (
                (row[:keys], row[keys : keys + width], row[keys + width :])
                for row in columns[part.name]
            ),
            key=repr,
        )
    return shaped


def test_every_pseudonym_column_has_a_shadow_and_nothing_else_holds_a_pseudonym() -> None:
    """The plan covers exactly the columns ``vir db check`` checks, and every other
    32-byte column is a hash, a δ or a shadow: a new pseudonym column fails here."""
    planned = {(p.name, c) for p in PLAN for c in p.live}
    checked = {(c.class_.__tablename__, c.key) for c in PSEUDONYM_COLUMNS}
    assert planned == checked
    shadows = {(p.name, c) for p in PLAN for c in p.shadow}
    others = {
        ("signals", "content_hash"),  # SHA-256 of the request without its pseudonyms
        ("audit_entries", "prev_hash"),
        ("audit_entries", "entry_hash"),
        ("checkpoints", "root_hash"),
        ("key_epochs", "delta"),
    }
    binary = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, LargeBinary) and column.type.length == 32
    }
    assert binary == planned | shadows | others


def test_a_rekey_multiplies_every_stored_pseudonym_by_delta_once(store: Store) -> None:
    before = seed.pseudonym_columns(store.db)
    assert rekey.start(store.db, _token(), T0) == rekey.Started.STARTED
    result = _run(store)
    assert result.switched and result.from_epoch == 1 and result.to_epoch == 2
    assert result.retire_after == T0 + GRACE
    after = seed.pseudonym_columns(store.db)
    assert _shape(after) == _times(seed.DELTA, before)
    assert result.converted == {
        "signals.person": SIGNALS,
        "signals.address": sum(1 for i in range(SIGNALS) if i % 7),
        "signal_parents.parent": SIGNALS,
        "archived_signals.person": SIGNALS // 10,
        "excluded_addresses.address": SIGNALS // 10,
        "matches.key": SIGNALS // 20,
    }
    assert seed.epoch_states(store.db) == [(1, "previous", False), (2, "current", True)]
    with store.db.read() as session:
        assert set(session.scalars(select(SignalRow.epoch))) == {2}
    # Once switched, a run finds nothing to do, and the token's replay is a no-op.
    assert _run(store) == rekey.RekeyResult()
    assert rekey.start(store.db, _token(), T0) == rekey.Started.DONE
    assert seed.pseudonym_columns(store.db) == after


def test_the_stored_pseudonyms_are_those_a_client_makes_under_the_new_key(store: Store) -> None:
    rekey.start(store.db, _token(), T0)
    _run(store)
    with store.db.read() as session:
        row = session.scalars(select(SignalRow).where(SignalRow.local_ref == "seed-3")).one()
    assert row.person == seed.pseudonym("person:3", 2)
    assert row.address == seed.pseudonym("address:1", 2)


def test_a_run_stopped_after_some_batches_leaves_only_right_shadows(store: Store) -> None:
    before = seed.pseudonym_columns(store.db)
    rekey.start(store.db, _token(), T0)
    result = _run(store, max_batches=3)
    assert result.batches == 3 and not result.switched and result.in_progress
    middle = seed.pseudonym_columns(store.db)
    for part in PLAN:
        keys = len(row_key(part.table))
        width = len(part.live)
        for old, now in zip(before[part.name], middle[part.name], strict=True):
            assert now[: keys + width] == old[: keys + width], "a live value changed early"
            for value, shadow in zip(now[keys : keys + width], now[keys + width :], strict=True):
                assert shadow is None or shadow == _mul(seed.DELTA, value)
    filled = sum(1 for row in middle["signals"] if row[-2] is not None)
    assert filled == 3 * 7  # three batches of seven signals
    assert seed.epoch_states(store.db) == [(1, "current", False), (2, "incoming", True)]
    # The next run carries on, with other batch sizes and worker processes.
    assert rekey.start(store.db, _token(), T0) == rekey.Started.RESUMED
    finished = _run(store, batch=11, workers=2)
    assert finished.switched
    assert finished.converted["signals.person"] == SIGNALS - filled
    assert _shape(seed.pseudonym_columns(store.db)) == _times(seed.DELTA, before)


def test_the_integrity_check_passes_after_a_rekey(store: Store) -> None:
    rekey.start(store.db, _token(), T0)
    _run(store)
    results = check_pseudonyms(store.db, oprf.is_valid_element)
    assert [r.invalid for r in results] == [0] * len(results)
    assert sum(r.checked for r in results) > SIGNALS * 2


def test_start_and_switch_are_audited_once_each_without_delta(store: Store) -> None:
    rekey.start(store.db, _token(), T0)
    rekey.start(store.db, _token(), T0)  # resumed: no second entry
    _run(store, max_batches=2)
    _run(store)
    with store.db.read() as session:
        bodies = [bytes(b) for b in session.scalars(select(AuditEntryRow.body))]
        actions = list(session.scalars(select(AuditEntryRow.action)))
    assert actions.count(Action.KEY_REKEY_STARTED) == 1
    assert actions.count(Action.KEY_REKEY_SWITCHED) == 1
    secret = seed.DELTA
    for body in bodies:
        assert secret not in body and secret.hex().encode() not in body
        assert b"delta" not in body


def test_a_token_for_another_epoch_or_with_another_delta_is_refused(store: Store) -> None:
    other = oprf.scalar_from_int(77777)
    with pytest.raises(Conflict, match="current epoch is 1"):
        rekey.start(store.db, _token(from_epoch=2), T0)
    rekey.start(store.db, _token(), T0)
    with pytest.raises(Conflict, match="in progress"):
        rekey.start(store.db, _token(delta=other), T0)
    with pytest.raises(Conflict, match="in progress"):
        rekey.start(store.db, _token(from_epoch=2, delta=seed.DELTA3), T0)
    before = seed.pseudonym_columns(store.db)
    _run(store)
    # After the switch: the old token is a no-op, one for 1 → 2 with another δ is
    # refused; neither multiplies anything.
    after = seed.pseudonym_columns(store.db)
    assert rekey.start(store.db, _token(), T0) == rekey.Started.DONE
    with pytest.raises(Conflict, match="current epoch is 2"):
        rekey.start(store.db, _token(delta=other), T0)
    assert _run(store) == rekey.RekeyResult()
    assert seed.pseudonym_columns(store.db) == after
    assert _shape(after) == _times(seed.DELTA, before)


def test_two_rekeys_in_a_row_compose(store: Store) -> None:
    before = seed.pseudonym_columns(store.db)
    rekey.start(store.db, _token(), T0)
    _run(store)
    rekey.start(store.db, _token(from_epoch=2, delta=seed.DELTA3), T0 + dt.timedelta(days=1))
    _run(store)
    both = oprf.scalar_from_int(
        int.from_bytes(seed.DELTA, "little") * int.from_bytes(seed.DELTA3, "little")
    )
    assert _shape(seed.pseudonym_columns(store.db)) == _times(both, before)
    assert seed.epoch_states(store.db) == [
        (1, "previous", False),
        (2, "previous", True),
        (3, "current", True),
    ]
    with store.db.read() as session:
        row = session.scalars(select(SignalRow).where(SignalRow.local_ref == "seed-5")).one()
    assert row.person == seed.pseudonym("person:5", 3)


def test_retire_ends_the_grace_period_and_erases_delta(store: Store) -> None:
    rekey.start(store.db, _token(), T0)
    _run(store)
    assert rekey.retire(store.db, T0 + GRACE - dt.timedelta(seconds=1)) == []
    assert seed.epoch_states(store.db) == [(1, "previous", False), (2, "current", True)]
    assert rekey.retire(store.db, T0 + GRACE) == [1]
    assert seed.epoch_states(store.db) == [(1, "retired", False), (2, "current", False)]
    assert rekey.retire(store.db, T0 + 2 * GRACE) == []
    with store.db.read() as session:
        actions = list(session.scalars(select(AuditEntryRow.action)))
    assert actions.count(Action.KEY_EPOCH_RETIRED) == 1


def test_retiring_an_epoch_retires_the_older_ones_too(store: Store) -> None:
    rekey.start(store.db, _token(), T0)
    _run(store)
    later = T0 + dt.timedelta(days=10)
    rekey.start(store.db, _token(from_epoch=2, delta=seed.DELTA3), later)
    rekey.run(store.db, clock=lambda: later, grace=dt.timedelta(days=5), workers=0)
    # Epoch 2's grace (from day 10, five days) ends before epoch 1's (thirty days).
    assert rekey.retire(store.db, later + dt.timedelta(days=6)) == [1, 2]
    assert seed.epoch_states(store.db) == [
        (1, "retired", False),
        (2, "retired", False),
        (3, "current", False),
    ]


def test_stored_values_that_are_not_elements_are_counted_and_block_the_switch(
    store: Store,
) -> None:
    bad = bytes(31) + b"\x80"  # the identity with bit 255 set: not canonical
    with store.db.write() as session:
        session.execute(
            insert(SignalRow),
            [
                {
                    "id": "ffffffff-0000-0000-0000-000000000001",
                    "oin": str(ORGS[0].oin),
                    "local_ref": "broken",
                    "epoch": 1,
                    "person": bad,
                    "address": None,
                    "remove_on": dt.date(2028, 1, 1),
                    "professional_name": "Anna de Vries",
                    "content_hash": bytes(32),
                    "created_at": T0,
                }
            ],
        )
    rekey.start(store.db, _token(), T0)
    with pytest.raises(rekey.RekeyBlocked, match=r"signals\.person: 1") as blocked:
        _run(store)
    assert blocked.value.result.invalid["signals.person"] == 1
    assert blocked.value.result.converted["signals.person"] == SIGNALS
    assert seed.epoch_states(store.db) == [(1, "current", False), (2, "incoming", True)]
    with store.db.write() as session:
        session.execute(text("DELETE FROM signals WHERE local_ref = 'broken'"))
    finished = _run(store)
    assert finished.switched and finished.converted["signals.person"] == 0


def test_a_batch_read_before_a_row_changed_does_not_write_its_shadow(store: Store) -> None:
    """The read is outside the write lock: a row deleted and stored again with another
    value in between keeps a NULL shadow (the write is conditional on the value read)."""
    from vir.store import rekey as shadows

    part = PLAN[3]  # excluded_addresses: the key is the pseudonym itself
    with store.db.read() as session:
        (row, *_) = shadows.read_todo(session, part, None, 1)
        keys = shadows.key_width(session, part)
    with store.db.write() as session:
        shadows.write_shadows(session, part, [(b"y" * 32, *row[:keys], b"x" * 32)])
    with store.db.read() as session:
        assert shadows.count_todo(session, part) == SIGNALS // 10
    with store.db.write() as session:  # with the value read, it is written
        shadows.write_shadows(session, part, [(b"y" * 32, *row)])
    with store.db.read() as session:
        assert shadows.count_todo(session, part) == SIGNALS // 10 - 1


def test_the_epochs_and_retire_commands_say_what_the_table_holds(store: Store) -> None:
    from support.clirun import run_vir

    rekey.start(store.db, _token(), T0)
    _run(store, max_batches=1)
    listed = run_vir(store.db, "keys", "epochs")
    assert listed.code == 0
    first, second = listed.out.splitlines()
    assert first.startswith("epoch 1: current (since ")  # when the database was made
    assert second == f"epoch 2: incoming (rekey started {_moment(T0)})"
    _run(store)
    listed = run_vir(store.db, "keys", "epochs")
    assert f"epoch 1: previous (accepted until {_moment(T0 + GRACE)})" in listed.out
    nothing = run_vir(store.db, "keys", "retire")
    assert nothing.code == 0 and "no key epoch is past its grace period" in nothing.out
    # Retired (here a day after its grace ended): no longer "accepted until", but when.
    retired_at = T0 + GRACE + dt.timedelta(days=1)
    assert rekey.retire(store.db, retired_at) == [1]
    retired = run_vir(store.db, "keys", "epochs")
    assert retired.out.splitlines()[0] == f"epoch 1: retired (since {_moment(retired_at)})"
    assert "accepted" not in retired.out.splitlines()[0]
    for ran in (listed, nothing, retired):
        assert seed.DELTA.hex() not in ran.out + ran.err


def _moment(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
