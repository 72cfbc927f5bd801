from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.instore import ORGS, T0, Store, fresh_store, template

from vir import cli_keyholder
from vir.audit.chain import AuditEvent
from vir.crypto import keys, oprf
from vir.domain.errors import ConfigurationError, Conflict, InvalidElement, RateLimited
from vir.domain.ratelimit import Limit, LimitKind
from vir.keyholder import epochs
from vir.keyholder.epochs import KeyStore
from vir.keyholder.evaluation import Computed, EvaluationService
from vir.services.identity import Caller
from vir.store.ratelimits import RateLimits
from vir.store.tables import AuditEntryRow


def test_init_creates_a_private_key_once(tmp_path: Path) -> None:
    path, created = keys.init_oprf_key(tmp_path / "k")
    assert created and path.name == "oprf-epoch-1.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o700
    before = path.read_text()
    again, created_again = keys.init_oprf_key(tmp_path / "k")
    assert (again, created_again) == (path, False)
    assert path.read_text() == before
    assert keys.load_oprf_keyring(tmp_path / "k").current.epoch == 1


def test_missing_key_names_the_folder_and_makes_a_new_one_only_for_a_new_holder(
    tmp_path: Path,
) -> None:
    """A missing OPRF key is most often a keys folder looked for in the wrong place; a
    new key would pseudonymise everyone anew, so restoring comes first (and the command
    is the key holder's, not the index's ``vir keys init`` as before)."""
    for folder in (tmp_path / "nothing", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        with pytest.raises(ConfigurationError) as missing:
            keys.load_oprf_keyring(folder)
        said = str(missing.value)
        assert "VIR_KEYHOLDER_KEYS_DIR" in said and str(folder) in said
        assert "restore the key from a backup" in said
        assert said.endswith("Only when setting up a new key holder: vir keyholder init")


def _write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "oprf-epoch-1.key"
    path.write_text(text)
    os.chmod(path, mode)
    return tmp_path


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zz",
        "00" * 32,
        "ab" * 16,
        "ff" * 32,
        # RFC 9497's published test key
        "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e",
    ],
)
def test_bad_key_material_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        keys.load_oprf_keyring(_write(tmp_path, text))
    # The message names the file and the remedy, never the content.
    assert text not in str(info.value) or text == ""


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="chmod 600"):
        keys.load_oprf_keyring(_write(tmp_path, "01" + "00" * 31, 0o640))


def test_newest_epoch_is_current_and_repr_hides_the_secret(tmp_path: Path) -> None:
    keys.init_oprf_key(tmp_path)
    second = tmp_path / "oprf-epoch-2.key"
    second.write_text("02" + "00" * 31)
    os.chmod(second, 0o600)
    ring = keys.load_oprf_keyring(tmp_path)
    assert ring.current.epoch == 2
    assert "02" + "00" * 31 not in repr(ring)
    assert "secret" not in repr(ring.current) and "02" + "00" * 31 not in repr(ring.current)


# The key holder's keys: the epoch it serves is its database's, not the newest file.


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "keyholder.db") as opened:
        yield opened


def test_the_key_store_serves_the_databases_epoch_and_hides_the_secret(
    tmp_path: Path, store: Store
) -> None:
    folder = tmp_path / "keys"
    keys.init_oprf_key(folder)
    keys.write_oprf_key(folder, 2, oprf.random_scalar())  # made, not activated
    served = KeyStore(folder, store.db)
    key = served.current()
    assert key.epoch == 1  # the database says 1: epoch 2 is not served until activated
    assert key.secret == keys.load_oprf_keyring(folder).get(1).secret  # type: ignore[union-attr]
    for shown in (repr(served), repr(key)):
        assert key.secret.hex() not in shown and "secret" not in shown


def test_the_key_store_refuses_to_start_without_the_served_epochs_key(
    tmp_path: Path, store: Store
) -> None:
    folder = tmp_path / "keys"
    keys.write_oprf_key(folder, 2, oprf.random_scalar())  # epoch 1 is served, not here
    with pytest.raises(ConfigurationError, match="no key for it"):
        KeyStore(folder, store.db)


def test_the_key_store_follows_an_activation_made_elsewhere(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "keys"
    keys.init_oprf_key(folder)
    served = KeyStore(folder, store.db, ttl=0)
    first = served.current()
    rotation = epochs.rotate(store.db, folder, T0)
    assert served.current() == first  # incoming: not served yet
    assert epochs.activate(store.db, T0, dt.timedelta(days=30)) == rotation.to_epoch
    now = served.current()  # loaded from the directory: made after this store started
    assert now.epoch == 2
    assert now.secret == oprf.scalar_product(rotation.delta, first.secret)


def _evaluation(tmp_path: Path, store: Store, burst: int = 64) -> EvaluationService:
    folder = tmp_path / "keys"
    keys.init_oprf_key(folder)
    limits = RateLimits(
        {
            LimitKind.OPRF: Limit(1.0, burst),
            LimitKind.OPRF_HOURLY: Limit.per_hour(1000, 1000),
        }
    )
    return EvaluationService(KeyStore(folder, store.db), store.db, limits, lambda: T0)


def _audit(store: Store) -> list[AuditEvent]:
    with store.db.read() as session:
        bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        return [AuditEvent.decode(bytes(b)) for b in bodies]


CALLER = Caller(ORGS[0], "a" * 64)


def test_evaluation_validates_the_whole_batch_first(tmp_path: Path, store: Store) -> None:
    service = _evaluation(tmp_path, store, burst=64)
    before = len(_audit(store))
    good = oprf.blind(b"a")[1]
    with pytest.raises(InvalidElement) as info:
        service.evaluate(CALLER, [good, good, bytes(32)])
    assert info.value.field == "blinded_elements[2]"
    assert len(_audit(store)) == before  # refused before anything was evaluated or paid
    done = service.evaluate(CALLER, [good, good])
    key = keys.load_oprf_keyring(tmp_path / "keys").get(1)
    assert key is not None
    assert (done.epoch, done.share_index) == (1, None)
    assert done.elements == [oprf.evaluate(key.secret, good)] * 2
    (entry,) = _audit(store)[before:]
    assert (entry.action, entry.organisation, entry.certificate) == (
        "oprf.evaluate",
        str(CALLER.oin),
        CALLER.certificate,
    )
    # The organisation and how many, never an element.
    assert entry.objects == {"elements": 2, "epoch": 1}
    with store.db.read() as session:
        bodies = b"".join(bytes(b) for b in session.scalars(select(AuditEntryRow.body)))
    for element in (good, *done.elements):
        assert element not in bodies and element.hex().encode() not in bodies


def test_evaluation_pays_one_token_per_element(tmp_path: Path, store: Store) -> None:
    service = _evaluation(tmp_path, store, burst=64)
    element = oprf.blind(b"a")[1]
    assert len(service.evaluate(CALLER, [element] * 64).elements) == 64
    with pytest.raises(RateLimited):
        service.evaluate(CALLER, [element])
    with store.db.read() as session:
        count = session.scalar(select(func.count()).where(AuditEntryRow.action == "oprf.evaluate"))
    assert count == 1


def test_a_second_rotation_names_the_steps_of_the_incoming_one(
    tmp_path: Path, store: Store
) -> None:
    """Rotate, give the token to the index, then activate: a rotate while one is incoming
    points at the index's rekey first, not straight at activation (which, before the
    index took the token, makes pseudonyms the index refuses)."""
    folder = tmp_path / "keys"
    keys.init_oprf_key(folder)
    epochs.rotate(store.db, folder, T0)
    with pytest.raises(Conflict) as refused:
        epochs.rotate(store.db, folder, T0)
    assert str(refused.value) == (
        "epoch 2 is already incoming: give its rekey token to the index "
        "(vir keys rekey --token FILE), then run vir keyholder activate "
        "(its token lost or never written: vir keyholder token --out FILE)"
    )


def test_a_retired_epoch_is_listed_with_when_it_was_retired(
    tmp_path: Path,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its key destroyed (here with --now, before its grace ended): the listing says when,
    not the end of a grace period that no longer applies."""
    folder = tmp_path / "keys"
    keys.init_oprf_key(folder)
    epochs.rotate(store.db, folder, T0)
    epochs.activate(store.db, T0, dt.timedelta(days=30))
    retired_at = T0 + dt.timedelta(hours=1)
    assert epochs.retire(store.db, folder, retired_at, force=True) == [1]
    first, second = epochs.listing(store.db)
    assert (first.state, first.retire_after) == ("retired", retired_at)
    assert (second.state, second.retire_after) == ("current", None)
    monkeypatch.setattr(cli_keyholder, "_database", lambda _settings: store.db)
    monkeypatch.setattr(cli_keyholder, "keyholder_settings", lambda: None)
    assert cli_keyholder.cmd_epochs(None, None) == 0  # type: ignore[arg-type]
    assert capsys.readouterr().out.splitlines() == [
        "   1  retired    retired 2026-11-22 10:00",
        "   2  current  ",
    ]


def test_evaluations_waiting_together_are_paid_together_each_its_own(
    tmp_path: Path, store: Store
) -> None:
    """``account_waiting``: evaluations that arrive while others are paid for are paid
    for next in one transaction, each as a writer of its own: its own audit entry, its
    own tokens, and a refusal of its own when the bucket cannot pay for it."""
    service = _evaluation(tmp_path, store, burst=10)
    element = oprf.blind(b"a")[1]
    before = len(_audit(store))
    batches: list[int] = []
    pay = service._accounting._handle

    def counted(key: object, items: Sequence[Computed]) -> Sequence[object]:
        batches.append(len(items))
        return pay(key, items)  # type: ignore[arg-type]

    service._accounting._handle = counted  # type: ignore[assignment]

    async def five_at_once() -> list[object]:
        computed = [service.compute(CALLER, [element] * n) for n in (1, 4, 8, 2, 3)]
        return await asyncio.gather(
            *(service.account_waiting(c) for c in computed), return_exceptions=True
        )

    answers = asyncio.run(five_at_once())
    assert [len(a.elements) if not isinstance(a, BaseException) else a for a in answers[:2]] == [
        1,
        4,
    ]
    assert isinstance(answers[2], RateLimited)  # 1 + 4 + 8 > 10: this one alone
    assert [len(a.elements) for a in answers[3:]] == [2, 3]  # type: ignore[union-attr]
    assert batches == [5]  # all queued before the first batch was taken
    entries = _audit(store)[before:]
    assert [e.objects["elements"] for e in entries] == [1, 4, 2, 3]
    with pytest.raises(RateLimited):  # 10 tokens taken: the bucket is empty
        service.evaluate(CALLER, [element])
