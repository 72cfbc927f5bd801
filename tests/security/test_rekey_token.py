"""Rekey tokens from a hostile or careless source: only the key holder's, exactly as
signed, for the next epoch, with a δ that is a real rotation, is accepted; nothing
refused ever says what δ is."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from support import seed
from support.clirun import run_vir
from support.instore import T0, fresh_store, template

from vir.crypto import oprf
from vir.crypto.rekey_token import (
    MAX_TOKEN_BYTES,
    RekeyToken,
    make_token,
    read_token,
    signed_message,
)
from vir.domain.encoding import b64url_encode
from vir.domain.errors import ConfigurationError, InputError

L = oprf.GROUP_ORDER


def _document(data: bytes) -> dict[str, object]:
    document = json.loads(data)
    assert isinstance(document, dict)
    return document


def _signed(body: dict[str, object]) -> bytes:
    """``body`` signed by the key holder, whatever it says (make_token would refuse it)."""
    signature = seed.KEYHOLDER.sign(signed_message(body))
    return json.dumps({**body, "signature": b64url_encode(signature)}).encode()


def _body(**changes: object) -> dict[str, object]:
    body = _document(seed.token())
    del body["signature"]
    return {**body, **changes}


def _refused(data: bytes, key: str = seed.VERIFIER_KEY) -> InputError:
    with pytest.raises(InputError) as refused:
        read_token(data, key)
    _never_shows_delta(refused.value)
    assert refused.value.field == "token"
    return refused.value


def _never_shows_delta(error: BaseException) -> None:
    shown = f"{error} {error!r} {getattr(error, 'detail', '')}"
    for form in (
        seed.DELTA.hex(),
        b64url_encode(seed.DELTA),
        base64.b64encode(seed.DELTA).decode(),
        str(int.from_bytes(seed.DELTA, "little")),
    ):
        assert form not in shown


def test_a_token_round_trips_and_its_repr_hides_delta() -> None:
    token = read_token(seed.token(), seed.VERIFIER_KEY)
    assert token == RekeyToken(1, 2, seed.DELTA, T0, seed.KEYHOLDER_NAME)
    for shown in (repr(token), str(token)):
        assert seed.DELTA.hex() not in shown and b64url_encode(seed.DELTA) not in shown
        assert "delta" not in shown


def test_a_tampered_delta_or_any_other_field_fails_the_signature() -> None:
    honest = _document(seed.token())
    other = b64url_encode(oprf.scalar_from_int(424242))
    for field, value in (
        ("delta", other),
        ("from_epoch", 2),
        ("to_epoch", 3),
        ("created_at", "2026-11-22T09:00:01Z"),
    ):
        tampered = {**honest, field: value}
        if field == "from_epoch":
            tampered["to_epoch"] = 3
        error = _refused(json.dumps(tampered).encode())
        assert "signature" in error.detail


def test_a_token_signed_by_another_key_is_refused() -> None:
    forged = seed.token(signer=seed.STRANGER)  # same key name, another key
    assert "signature" in _refused(forged).detail
    renamed = _document(forged)
    renamed["signer"] = "someone.else"
    assert "someone.else" in _refused(json.dumps(renamed).encode()).detail


def test_the_epochs_must_be_consecutive() -> None:
    for from_epoch, to_epoch in ((1, 3), (2, 2), (2, 1), (0, 1), (-1, 0)):
        error = _refused(_signed(_body(from_epoch=from_epoch, to_epoch=to_epoch)))
        assert "next" in error.detail
    assert "whole numbers" in _refused(_signed(_body(from_epoch=True, to_epoch=2))).detail
    with pytest.raises(InputError):
        make_token(seed.KEYHOLDER.sign, seed.VERIFIER_KEY, 1, 3, seed.DELTA, T0)


@pytest.mark.parametrize(
    "delta",
    [
        bytes(32),  # zero: every pseudonym would become the identity
        oprf.scalar_from_int(1),  # one: no rotation at all
        (L).to_bytes(32, "little"),  # the group order: zero, not reduced
        (L + 5).to_bytes(32, "little"),  # five, not reduced
        (2**256 - 1).to_bytes(32, "little"),  # far beyond the order
        bytes(31),  # too short
        bytes(33),  # too long
    ],
)
def test_a_delta_that_is_no_canonical_rotation_is_refused(delta: bytes) -> None:
    error = _refused(_signed(_body(delta=b64url_encode(delta))))
    assert "delta" in error.detail
    if len(delta) == 32:
        with pytest.raises(InputError):
            make_token(seed.KEYHOLDER.sign, seed.VERIFIER_KEY, 1, 2, delta, T0)


def test_delta_in_a_non_canonical_spelling_is_refused() -> None:
    padded = b64url_encode(seed.DELTA) + "="
    standard = base64.b64encode(seed.DELTA).decode()
    for spelling in (padded, standard.replace("-", "+"), seed.DELTA.hex(), 5):
        _refused(_signed(_body(delta=spelling)))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b"\xff\xfe{}",
        b'{"version": 1}',
        json.dumps({"version": 2}).encode(),
    ],
)
def test_what_is_not_a_token_is_refused(data: bytes) -> None:
    _refused(data)


def test_unknown_duplicate_and_missing_fields_are_refused() -> None:
    honest = _document(seed.token())
    assert "unknown" in _refused(json.dumps({**honest, "comment": "hi"}).encode()).detail
    text = seed.token().decode().rstrip()
    duplicated = text[:-1] + ',"delta":"' + b64url_encode(oprf.scalar_from_int(9)) + '"}'
    _refused(duplicated.encode())
    partial = dict(honest)
    del partial["created_at"]
    assert "created_at" in _refused(json.dumps(partial).encode()).detail
    other_version = _signed(_body(version=2))
    assert "version" in _refused(other_version).detail
    assert "version" in _refused(_signed(_body(version=True))).detail


def test_an_oversized_file_is_refused_unread() -> None:
    honest = _document(seed.token())
    padded = json.dumps(honest).encode() + b" " * MAX_TOKEN_BYTES
    assert "larger" in _refused(padded).detail


def test_a_created_at_that_is_no_time_is_refused() -> None:
    for value in (
        "2026-13-01T00:00:00Z",
        "2026-11-22 09:00:00",
        "yesterday",
        12,
        "٢٠٢٦-11-22T09:00:00Z",  # Arabic-Indic digits: strptime would read them as 2026
        "2026-11-22T09:00:0²Z",
    ):
        _refused(_signed(_body(created_at=value)))


def test_an_unusable_verifier_key_is_a_configuration_error() -> None:
    for key in ("", "keyholder", seed.VERIFIER_KEY[:-4] + "AAAA"):
        with pytest.raises(ConfigurationError):
            read_token(seed.token(), key)


def test_make_token_checks_that_the_signer_belongs_to_the_verifier_key() -> None:
    with pytest.raises(ConfigurationError):
        make_token(seed.STRANGER.sign, seed.VERIFIER_KEY, 1, 2, seed.DELTA, T0)
    with pytest.raises(InputError):
        make_token(
            seed.KEYHOLDER.sign, seed.VERIFIER_KEY, 1, 2, seed.DELTA, T0.replace(tzinfo=None)
        )


def test_the_cli_refuses_bad_tokens_without_showing_delta(tmp_path: Path) -> None:
    """``vir keys rekey`` on a tampered, foreign, replayed or huge token: refused, with no
    δ on either output, and nothing multiplied."""
    key_file = tmp_path / "keyholder.pub"
    key_file.write_text(seed.VERIFIER_KEY + "\n")
    tampered = _document(seed.token())
    tampered["delta"] = b64url_encode(oprf.scalar_from_int(31337))
    files = {
        "tampered": json.dumps(tampered).encode(),
        "foreign": seed.token(signer=seed.STRANGER),
        "huge": b"{" + b" " * (2 * MAX_TOKEN_BYTES) + b"}",
        "skipping": seed.token(from_epoch=2, delta=seed.DELTA3),
    }
    with fresh_store(template(tmp_path), tmp_path / "cli.sqlite") as store:
        seed.seed(store.db, 10)
        before = seed.pseudonym_columns(store.db)
        env = {"keyholder_verifier_key": str(key_file)}
        for name, data in files.items():
            path = tmp_path / f"{name}.json"
            path.write_bytes(data)
            ran = run_vir(store.db, "keys", "rekey", "--token", str(path), "--workers", "0", **env)
            assert ran.code != 0, name
            assert "token" in ran.err or "epoch" in ran.err, (name, ran.err)
            for shown in (ran.out, ran.err):
                assert seed.DELTA.hex() not in shown and b64url_encode(seed.DELTA) not in shown
        assert seed.pseudonym_columns(store.db) == before
        good = tmp_path / "good.json"
        good.write_bytes(seed.token())
        first = run_vir(store.db, "keys", "rekey", "--token", str(good), "--workers", "0", **env)
        assert first.code == 0, first.err
        assert "signals.person: 10 converted" in first.out
        after = seed.pseudonym_columns(store.db)
        replay = run_vir(store.db, "keys", "rekey", "--token", str(good), "--workers", "0", **env)
        assert replay.code == 0 and "done" in replay.out
        assert seed.pseudonym_columns(store.db) == after
        for ran in (first, replay):
            assert b64url_encode(seed.DELTA) not in ran.out + ran.err
        missing = run_vir(
            store.db,
            "keys",
            "rekey",
            "--token",
            str(good),
            **{"keyholder_verifier_key": str(tmp_path / "absent.pub")},
        )
        assert missing.code == 2 and "verifier key" in missing.err
