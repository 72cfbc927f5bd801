"""New key holders generate a t-of-n key with ``vir keyholder dkg start|deal|finish``
(2-of-3 and 3-of-5): every t of them evaluate a blinded element to k·B for
k = Σ f_J(0), the sum of the dealers' constants that no holder computes; all holders
print the same public record digest; no share, dealt value or coefficient is in any
output, file or database; each start commits to its holder's polynomial, kept (0600, or
wrapped by the HSM) from start to finish only; the box keys are gone. A holder serves its share with
VIR_KEYHOLDER_THRESHOLD = t, and the holders rotate as any threshold deployment."""

from __future__ import annotations

import itertools
import json
import stat
from pathlib import Path

import pytest
from support.dkg_world import Generation, generation
from support.inapp import InApp
from support.key_forms import written_forms
from support.softhsm import session_softhsm
from support.world import person

from vir.crypto import keys, oprf, rekey_token, threshold
from vir.crypto.signing import signing_key_path
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.errors import ConfigurationError
from vir.keyholder import dkg
from vir.keyholder.app import create_keyholder_app
from vir.keyholder.settings import KeyholderSettings

pytestmark = pytest.mark.sqlite_only("its holders keep SQLite databases of their own")


def _generate(world: Generation) -> tuple[list[str], list[str], set[str]]:
    _run, starts = world.starts()
    deals = [world.deal(j, starts) for j in world.holders]
    digests = {world.finish(j, starts, deals) for j in world.holders}
    return starts, deals, digests


@pytest.mark.parametrize(("t", "n"), [(2, 3), (3, 5)])
def test_every_t_holders_evaluate_under_the_key_nobody_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, t: int, n: int
) -> None:
    world = generation(tmp_path, t, n, monkeypatch)
    _starts, _deals, digests = _generate(world)
    assert len(digests) == 1, "every holder's public record is the same"
    records = {world.file(f"public-{j}.json").read_bytes() for j in world.holders}
    assert len(records) == 1
    record = json.loads(records.pop())
    key = world.key
    assert b64url_decode(record["group_key"]) == threshold.public_share(key)

    shares = [world.share(j) for j in world.holders]
    assert [s.index for s in shares] == list(world.holders)
    for share in shares:
        assert b64url_decode(record["public_shares"][str(share.index)]) == (
            threshold.public_share(share.secret)
        )
    blinded = oprf.hash_to_group(b"a blinded element")
    expected = oprf.evaluate(key, blinded)
    for subset in itertools.combinations(shares, t):
        evaluations = [(s.index, oprf.evaluate(s.secret, blinded)) for s in subset]
        assert threshold.combine(evaluations) == expected
    for subset in itertools.combinations(shares, t - 1):
        evaluations = [(s.index, oprf.evaluate(s.secret, blinded)) for s in subset]
        assert threshold.combine(evaluations) != expected
    for number in world.holders:
        assert world.box_keys(number) == [], "a box key outlived finish"
        assert world.polynomials_kept(number) == [], "a polynomial outlived finish"


def test_holders_exclude_a_dealer_that_dealt_wrongly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2-of-3: dealer 3 deals holder 1 a wrong value. Before, that stopped everyone;
    now holders 1 and 2 agree to finish with --exclude 3 and share Σ_{J∈{1,2}} f_J(0)."""
    world = generation(tmp_path, 2, 3, monkeypatch)
    _run, starts = world.starts()
    deals = [world.deal(j, starts) for j in world.holders]
    world.deal_wrongly(starts, deals[2], dealer=3, holder=1)
    err = world.refused(1, *world.finish_args(starts, deals), match="dealer 3 dealt wrongly")
    assert (
        "agree with the other operators to run finish with --exclude 3 on every other "
        "holder, or start again"
    ) in err
    # Holder 1 gives dealer 3's deal (ignored), holder 2 leaves it out (not required).
    digests = {
        world.finish(1, starts, deals, exclude=[3]),
        world.finish(2, starts, deals[:2], exclude=[3]),
    }
    assert len(digests) == 1, "the holders that excluded alike print the same digest"
    said = world.outputs[-1].out
    assert "the deployment's key holders are 1,2 (share indices)" in said
    assert "holder(s) 3 excluded: they hold no share of this key and must not serve" in said
    record = json.loads(world.file("public-1.json").read_text())
    assert world.file("public-2.json").read_text() == world.file("public-1.json").read_text()
    assert (record["qualified"], record["excluded"]) == ([1, 2], [3])
    assert sorted(record["public_shares"]) == sorted(record["commitments"]) == ["1", "2"]
    key = world.key_of([1, 2])
    assert b64url_decode(record["group_key"]) == threshold.public_share(key)
    blinded = oprf.hash_to_group(b"a blinded element")
    shares = [world.share(1), world.share(2)]
    for subset in itertools.combinations(shares, 2):
        evaluations = [(s.index, oprf.evaluate(s.secret, blinded)) for s in subset]
        assert threshold.combine(evaluations) == oprf.evaluate(key, blinded)
        assert threshold.combine(evaluations) != oprf.evaluate(world.key, blinded)
    for number in (1, 2):
        assert world.box_keys(number) == world.polynomials_kept(number) == []
        (finished,) = [
            b for b in world.audit_bodies(number) if b["action"] == "key.generation_finished"
        ]
        assert finished["objects"]["excluded"] == "3"
    # Holder 3 is out: it cannot exclude itself, and finishing without the exclusion
    # it makes another key, whose digest the operators see differ.
    world.refused(
        3, *world.finish_args(starts, deals, exclude=[3]), match="--exclude 3 is this holder"
    )
    assert world.finish(3, starts, deals) not in digests


def test_every_holder_checks_before_any_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dkg check``: everything finish checks and the digest it would print, with
    nothing stored or destroyed. Holder 1's check names dealer 3 while no holder has
    finished, so every holder can still exclude it; the digests the checks print are
    the ones finish prints."""
    world = generation(tmp_path, 2, 3, monkeypatch)
    _run, starts = world.starts()
    deals = [world.deal(j, starts) for j in world.holders]
    world.deal_wrongly(starts, deals[2], dealer=3, holder=1)
    check = world.finish_args(starts, deals, step="check")
    world.refused(1, *check, match="dealer 3 dealt wrongly")
    said = world.ok(2, *check)  # holder 2's values from dealer 3 are right
    assert "nothing was stored" in said
    checked = {world.check(j, starts, deals, exclude=[3]) for j in (1, 2)}
    assert len(checked) == 1
    for number in world.holders:
        assert not list(world.keys_dir(number).glob("oprf-epoch-*")), "check stored a key"
        assert world.box_keys(number) and world.polynomials_kept(number)
    finished = {world.finish(j, starts, deals, exclude=[3]) for j in (1, 2)}
    assert finished == checked


def test_a_dealer_that_never_deals_is_excluded_from_3_of_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = generation(tmp_path, 3, 5, monkeypatch)
    _run, starts = world.starts()
    deals = [world.deal(j, starts) for j in (1, 2, 3, 4)]  # holder 5 never deals
    world.refused(
        1,
        *world.finish_args(starts, deals),
        match="no deal file from holder(s) 5: give every holder's deal with --deals; if "
        "holder(s) 5 never deal, agree with the other operators to run finish with "
        "--exclude 5 on every other holder",
    )
    digests = {world.finish(j, starts, deals, exclude=[5]) for j in (1, 2, 3, 4)}
    assert len(digests) == 1
    record = json.loads(world.file("public-1.json").read_text())
    assert (record["qualified"], record["excluded"]) == ([1, 2, 3, 4], [5])
    key = world.key_of([1, 2, 3, 4])
    blinded = oprf.hash_to_group(b"a blinded element")
    shares = [world.share(j) for j in (1, 2, 3, 4)]
    for subset in itertools.combinations(shares, 3):
        evaluations = [(s.index, oprf.evaluate(s.secret, blinded)) for s in subset]
        assert threshold.combine(evaluations) == oprf.evaluate(key, blinded)
    for subset in itertools.combinations(shares, 2):
        evaluations = [(s.index, oprf.evaluate(s.secret, blinded)) for s in subset]
        assert threshold.combine(evaluations) != oprf.evaluate(key, blinded)


def test_no_secret_is_in_any_output_file_or_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = generation(tmp_path, 2, 3, monkeypatch)
    run, starts = world.starts()
    for number, polynomial in zip(world.holders, world.polynomials, strict=True):
        start = json.loads(Path(starts[number - 1]).read_text())
        committed = threshold.commitments(polynomial)
        assert start["commitments_digest"] == dkg.commitments_digest(run, number, 2, committed)
        # Until finish, the polynomial is in its holder's keys directory, 0600.
        (kept,) = world.polynomials_kept(number)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert all(written_forms(a)[1] in kept.read_bytes() for a in polynomial)
    deals = [world.deal(j, starts) for j in world.holders]
    for number in world.holders:
        world.finish(number, starts, deals)
        assert world.polynomials_kept(number) == [], "finish destroys the polynomial"
        assert [p.name for p in world.keys_dir(number).iterdir() if "dkg" in p.name] == []
    shares = [world.share(j) for j in world.holders]
    values = [threshold.evaluate_polynomial(f, j) for f in world.polynomials for j in world.holders]
    coefficients = [a for f in world.polynomials for a in f]
    secrets = [world.key, *(s.secret for s in shares), *values, *coefficients]
    texts = [r.out.encode() + r.err.encode() for r in world.outputs]
    files = sorted(world.file("x").parent.iterdir())
    assert len(files) == 9  # 3 starts, 3 deals, 3 public records
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        texts.append(path.read_bytes())
    for number in world.holders:
        texts += [p.read_bytes() for p in (tmp_path / f"holder-{number}").glob("keyholder.db*")]
        # The search finds a share where it is meant to be: in its holder's key file.
        key_file = (world.keys_dir(number) / "oprf-epoch-1.key").read_bytes()
        assert written_forms(shares[number - 1].secret)[1] in key_file
    for text in texts:
        for secret in secrets:
            for form in written_forms(secret):
                assert form not in text


def test_a_holder_with_an_hsm_keeps_its_generated_share_wrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = session_softhsm(tmp_path_factory).new_token()
    world = generation(tmp_path, 2, 3, monkeypatch)
    world.extra_env[2] = {
        "VIR_PKCS11_MODULE": str(token.module),
        "VIR_PKCS11_TOKEN": token.label,
        "VIR_PKCS11_PIN_FILE": str(token.pin_file),
    }
    _run, starts = world.starts()
    # Its polynomial is kept wrapped by the token, as its share will be.
    (kept,) = world.polynomials_kept(2)
    assert kept.name.endswith(".polynomial.wrapped")
    for coefficient in world.polynomials[1]:
        assert not any(form in kept.read_bytes() for form in written_forms(coefficient))
    deals = [world.deal(j, starts) for j in world.holders]
    assert len({world.finish(j, starts, deals) for j in world.holders}) == 1
    assert world.polynomials_kept(2) == []
    assert not (world.keys_dir(2) / "oprf-epoch-1.key").exists()
    assert (world.keys_dir(2) / "oprf-epoch-1.key.wrapped").exists()
    assert not signing_key_path(world.keys_dir(2)).exists(), "its checkpoint key is in the token"
    hsm = token.open()
    try:
        share = keys.load_oprf_keyring(world.keys_dir(2), token=hsm).get(1)
    finally:
        hsm.close()
    assert share is not None and share.share_index == 2
    blinded = oprf.hash_to_group(b"a blinded element")
    evaluations = [(2, oprf.evaluate(share.secret, blinded))]
    evaluations.append((3, oprf.evaluate(world.share(3).secret, blinded)))
    assert threshold.combine(evaluations) == oprf.evaluate(world.key, blinded)


def _settings(world: Generation, number: int) -> KeyholderSettings:
    return KeyholderSettings(
        database_url=world.database_url(number),
        keys_dir=world.keys_dir(number),
        audit_origin=f"test/holder-{number}",
        threshold=world.threshold,
        checkpoint_interval_seconds=0,
        retire_interval_seconds=0,
    )


def test_a_generated_share_is_served_and_rotated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = generation(tmp_path, 2, 3, monkeypatch)
    _generate(world)
    blinded = b64url_encode(person("Sam"))
    answers = []
    for number in (1, 3):
        app = create_keyholder_app(_settings(world, number))
        try:
            holder = InApp(app)
            holder.as_caller(0)
            answer = holder.request(
                "POST", "/v1/oprf/evaluate", json={"blinded_elements": [blinded]}
            )
        finally:
            app.state.services.db.dispose()
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["share_index"], body["threshold"], body["epoch"]) == (number, 2, 1)
        (element,) = body["evaluated_elements"]
        answers.append((number, b64url_decode(element) or b""))
    assert threshold.combine(answers) == oprf.evaluate(world.key, person("Sam"))
    with pytest.raises(ConfigurationError, match="Shamir share"):
        create_keyholder_app(_settings(world, 2).model_copy(update={"threshold": 1}))

    # Rotation: holder 1 draws δ, the others apply its token; shares of δ·k.
    first = world.file("rekey-1.json")
    world.ok(1, "rotate", "--token-out", str(first))
    verifier = world.ok(1, "key").strip()
    for number in (2, 3):
        out = str(world.file(f"rekey-{number}.json"))
        world.ok(
            number,
            "rotate",
            "--from-token",
            str(first),
            "--verifier-key",
            verifier,
            "--token-out",
            out,
        )
    delta = rekey_token.read_token(first.read_bytes(), verifier).delta
    rotated = oprf.scalar_product(delta, world.key)
    for subset in itertools.combinations([world.share(j, epoch=2) for j in world.holders], 2):
        assert threshold.reconstruct(subset) == rotated
