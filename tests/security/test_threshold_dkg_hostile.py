"""Key generation (``vir keyholder dkg ...``) against mistakes and hostile files, on
three new holders of a 2-of-3 deployment in folders. Refused, naming the problem and
storing nothing: a dealt value that does not match its dealer's commitments (the
dealer is named), a deal whose commitments are not those its dealer's start committed
to (a dealer that chose its polynomial after seeing the others'), a polynomial altered
in its keys directory, a deal altered in transit or signed by another key, files of another
run, a holder's file twice or missing, a sealed value moved to another place, T > N
and other thresholds that are not a deployment's, and any step on a holder that
already holds a key. Outputs are never overwritten."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.dkg_world import Generation, generation

from vir.crypto import keys, oprf, sealedbox, threshold
from vir.domain.encoding import b64url_encode
from vir.keyholder import dkg

pytestmark = pytest.mark.sqlite_only(
    "its holders keep SQLite databases of their own: the same on either run"
)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Generation:
    return generation(tmp_path / "world", 2, 3, monkeypatch)


def _dealt(world: Generation) -> tuple[list[str], list[str]]:
    _run, starts = world.starts()
    return starts, [world.deal(j, starts) for j in world.holders]


def _resign(
    world: Generation, path: Path, signer: int, change: Callable[[dict[str, Any]], None]
) -> None:
    world.resign(dkg.FAMILY, path, signer, change)


def _no_key(world: Generation, number: int) -> None:
    assert not list(world.keys_dir(number).glob("oprf-epoch-*"))


def test_a_value_that_does_not_match_the_commitments_names_its_dealer(world: Generation) -> None:
    starts, deals = _dealt(world)
    world.deal_wrongly(starts, deals[0], dealer=1, holder=2)
    err = world.refused(
        2, *world.finish_args(starts, deals), match="does not match dealer 1's commitments"
    )
    assert "Nothing was stored" in err
    _no_key(world, 2)
    assert len(world.box_keys(2)) == 1, "a refused finish keeps its box key"
    # Holder 3's value from dealer 1 is sound: it finishes, and the operators then see
    # that holder 2 could not (a digest is missing), and start a new run.
    world.ok(3, *world.finish_args(starts, deals))


def test_a_deal_changed_after_its_start_is_refused_by_the_start_digest(world: Generation) -> None:
    """Dealer 3 waits for the other deals, then deals a new polynomial (chosen knowing
    Σ_{J≠3} C_{J,0}, as a last dealer biasing the key would), self-consistent: its
    commitments and values match, and it signs the deal with its own key. Only its
    start's digest gives it away: before, this deal was taken."""
    starts, deals = _dealt(world)
    run = world.run_of(2, starts)
    chosen = threshold.random_polynomial(world.threshold)

    def another_polynomial(doc: dict[str, Any]) -> None:
        doc["commitments"] = [b64url_encode(c) for c in threshold.commitments(chosen)]
        for j in world.holders:
            value = threshold.evaluate_polynomial(chosen, j)
            sealed = sealedbox.seal(dkg._context(run, 3, j) + value, run.starts[j].box_key)
            doc["shares"][str(j)] = b64url_encode(sealed)

    _resign(world, Path(deals[2]), 3, another_polynomial)
    for number in (1, 2):
        err = world.refused(
            number,
            *world.finish_args(starts, deals),
            match=f"{deals[2]}: dealer 3's commitments are not those its start file "
            f"{starts[2]} committed to",
        )
        assert "Nothing was stored" in err
        _no_key(world, number)
        assert len(world.box_keys(number)) == 1, "a refused finish keeps its box key"
        assert len(world.polynomials_kept(number)) == 1, "and its polynomial"
        assert "agree with the other operators to run finish with --exclude 3" in err
    # The others exclude dealer 3: its deal, given, is ignored.
    assert len({world.finish(j, starts, deals, exclude=[3]) for j in (1, 2)}) == 1


def test_an_exclusion_that_is_not_a_deployment_s_is_refused(world: Generation) -> None:
    starts, deals = _dealt(world)
    err = world.refused(
        1,
        *world.finish_args(starts, deals, exclude=[2, 3]),
        match="excluding holder(s) 2,3 leaves 1 qualified dealer(s), fewer than t = 2",
    )
    assert "a false complaint can shrink the dealers but never hand over the key" in err
    world.refused(
        2, *world.finish_args(starts, deals, exclude=[2]), match="--exclude 2 is this holder"
    )
    for outside in (0, 4):
        world.refused(
            1,
            *world.finish_args(starts, deals, exclude=[outside]),
            match=f"--exclude {outside}: not a holder of run",
        )
    for number in (1, 2):
        _no_key(world, number)
        assert len(world.box_keys(number)) == len(world.polynomials_kept(number)) == 1


def test_a_retried_deal_deals_the_polynomial_drawn_at_start(world: Generation) -> None:
    starts, deals = _dealt(world)
    again = world.file("deal-1-again.json")
    world.ok(1, *world.deal_args(starts, again))
    first, second = json.loads(Path(deals[0]).read_text()), json.loads(again.read_text())
    assert first["commitments"] == second["commitments"]
    assert len(world.polynomials) == world.n, "no polynomial is drawn after start"
    # Either deal file finishes to the same record.
    digests = {world.finish(2, starts, [str(again), deals[1], deals[2]])}
    digests.add(world.finish(3, starts, deals))
    assert len(digests) == 1


def test_a_polynomial_altered_in_the_keys_directory_is_not_dealt(world: Generation) -> None:
    _run, starts = world.starts()
    (kept,) = world.polynomials_kept(1)
    kept.write_text("".join(f"{oprf.random_scalar().hex()}\n" for _ in range(2)))
    out = world.file("deal-1.json")
    world.refused(
        1,
        *world.deal_args(starts, out),
        match=f"the polynomial kept at {kept} is not the one this holder's start file",
    )
    kept.write_text("not a polynomial\n")
    world.refused(1, *world.deal_args(starts, out), match=f"the polynomial at {kept} is malformed")
    kept.chmod(0o644)
    world.refused(1, *world.deal_args(starts, out), match="accessible by group or others")
    kept.unlink()
    world.refused(1, *world.deal_args(starts, out), match=f"no polynomial at {kept}")
    assert not out.exists()


def test_a_deal_altered_in_transit_or_signed_by_another_key_is_refused(
    world: Generation,
) -> None:
    starts, deals = _dealt(world)
    original = Path(deals[0]).read_bytes()
    doc = json.loads(original)
    doc["commitments"].reverse()
    Path(deals[0]).write_text(json.dumps(doc))
    world.refused(2, *world.finish_args(starts, deals), match="not signed by holder 1's key")

    # Holder 3 signs a deal that says it is holder 1's.
    Path(deals[0]).write_bytes(original)
    _resign(world, Path(deals[0]), 3, lambda doc: None)
    world.refused(2, *world.finish_args(starts, deals), match="not signed by holder 1's key")

    # A wrong verifier key for a holder: its start no longer verifies.
    wrong = [*world.verifiers([1, 2]), "--verifier-key", "3=" + world.verifier(1)[2:]]
    world.refused(
        2,
        "dkg",
        "deal",
        "--starts",
        *starts,
        *wrong,
        "--out",
        str(world.file("deal-x.json")),
        match="not signed by holder 3's key",
    )
    world.refused(
        2,
        *world.deal_args(starts, world.file("deal-x.json"), [1, 2]),
        match="no verifier key for holder 3",
    )
    assert not world.file("deal-x.json").exists()
    _no_key(world, 2)


def test_files_of_another_run_are_refused(world: Generation) -> None:
    starts, deals = _dealt(world)
    # A second run of the same three holders (each holds a box key per run).
    run2 = [str(world.start(1, out="start2-1.json"))]
    printed = world.outputs[-1].out
    second = printed.split("--run ")[1].split()[0]
    run2 += [str(world.start(j, second, out=f"start2-{j}.json")) for j in (2, 3)]
    world.refused(
        1,
        *world.deal_args([starts[0], run2[1], run2[2]], world.file("deal-x.json")),
        match="belongs to another run",
    )
    other = world.file("deal2-1.json")
    world.ok(1, *world.deal_args(run2, other))
    world.refused(
        2,
        *world.finish_args(starts, [str(other), deals[1], deals[2]]),
        match="belongs to another run",
    )
    # A deal of this run made against other start files (a substituted box key).
    _resign(world, Path(deals[2]), 3, lambda doc: doc.update(run_digest="0" * 64))
    world.refused(2, *world.finish_args(starts, deals), match="was made with other start files")


def test_a_holder_twice_or_missing_is_refused(world: Generation) -> None:
    starts, deals = _dealt(world)
    world.refused(
        1,
        *world.deal_args([starts[0], starts[1], starts[1]], world.file("deal-x.json")),
        match="a second start file from holder 2",
    )
    world.refused(
        1,
        *world.deal_args([starts[0], starts[1]], world.file("deal-x.json")),
        match="no start file from holder(s) 3",
    )
    world.refused(
        2,
        *world.finish_args(starts, [deals[0], deals[0], deals[1]]),
        match="a second deal file from holder 1",
    )
    world.refused(2, *world.finish_args(starts, deals[:2]), match="no deal file from holder(s) 3")
    # A start edited to name another holder: no longer signed.
    edited = world.file("start-edited.json")
    doc = json.loads(Path(starts[2]).read_text())
    doc["holder"] = 2
    edited.write_text(json.dumps(doc))
    world.refused(
        1,
        *world.deal_args([starts[0], str(edited), starts[1]], world.file("deal-x.json")),
        match="a second start file from holder 2",
    )
    _no_key(world, 2)


def test_a_value_moved_to_another_place_is_refused(world: Generation) -> None:
    starts, deals = _dealt(world)
    run = world.run_of(2, starts)

    def moved(doc: dict[str, Any]) -> None:
        context = dkg._context(run, 3, 2)  # says it is from dealer 3
        doc["shares"]["2"] = b64url_encode(
            sealedbox.seal(context + oprf.random_scalar(), run.starts[2].box_key)
        )

    _resign(world, Path(deals[0]), 1, moved)
    world.refused(
        2, *world.finish_args(starts, deals), match="sealed for another run, dealer or holder"
    )
    # Sealed to another holder's box key: it does not open.
    doc = json.loads(Path(deals[1]).read_text())
    _resign(world, Path(deals[0]), 1, lambda d: d["shares"].update({"2": doc["shares"]["3"]}))
    world.refused(
        2, *world.finish_args(starts, deals), match="does not open with this key holder's box key"
    )


@pytest.mark.parametrize(
    ("holders", "t", "match"),
    [
        ("3", "4", "the threshold t must be from 1 to the number of key holders n"),
        ("3", "1", "1-of-n gives every key holder the whole key"),
        ("1", "1", "key generation is for a threshold deployment"),
        ("300", "2", "the number of key holders n must be from 1 to 255"),
    ],
)
def test_a_threshold_that_is_not_a_deployment_s_is_refused(
    world: Generation, holders: str, t: str, match: str
) -> None:
    out = world.file("start-1.json")
    args = ["dkg", "start", "--index", "1", "--holders", holders, "--threshold", t]
    world.refused(1, *args, "--out", str(out), match=match)
    assert not out.exists()
    assert world.box_keys(1) == []
    assert world.polynomials_kept(1) == []


def test_wrong_index_threshold_setting_or_run_id_is_refused(world: Generation) -> None:
    out = str(world.file("start-4.json"))
    base = ["dkg", "start", "--holders", "3", "--threshold", "2", "--out", out]
    world.refused(1, *base, "--index", "4", match="this holder's index must be 1..3, not 4")
    world.refused(1, *base, "--index", "1", "--run", "x", match="--run is not a run id")
    world.threshold = 3  # VIR_KEYHOLDER_THRESHOLD 3, the run's t 2
    world.refused(1, *base, "--index", "1", match="VIR_KEYHOLDER_THRESHOLD) is 3")
    assert world.box_keys(1) == []


def test_a_holder_with_a_key_refuses_every_step_and_keeps_its_key(world: Generation) -> None:
    starts, deals = _dealt(world)
    own = oprf.random_scalar()
    keys.write_oprf_key(world.keys_dir(2), 1, own, 2)
    world.refused(2, *world.finish_args(starts, deals), match="already holds an OPRF key")
    world.refused(
        2,
        *world.deal_args(starts, world.file("deal-again.json")),
        match="already holds an OPRF key",
    )
    world.refused(
        2,
        "dkg",
        "start",
        "--index",
        "2",
        "--holders",
        "3",
        "--threshold",
        "2",
        "--out",
        str(world.file("again.json")),
        match="already holds an OPRF key",
    )
    ring = keys.load_oprf_keyring(world.keys_dir(2))
    assert [(k.epoch, k.secret) for k in ring.keys] == [(1, own)]
    # The others finish; a finished holder refuses to finish again.
    world.ok(1, *world.finish_args(starts, deals))
    world.refused(1, *world.finish_args(starts, deals), match="already holds an OPRF key")


def test_an_existing_output_is_refused_and_left_alone(world: Generation) -> None:
    taken = world.file("taken.json")
    taken.write_text("kept\n")
    args = ["dkg", "start", "--index", "1", "--holders", "3", "--threshold", "2"]
    world.refused(1, *args, "--out", str(taken), match="already exists")
    assert world.box_keys(1) == []
    assert world.polynomials_kept(1) == []
    starts, _deals = _dealt(world)
    world.refused(1, *world.deal_args(starts, taken), match="already exists")
    assert taken.read_text() == "kept\n"


def test_a_run_id_is_typed_after_run_whatever_its_random_bytes(
    world: Generation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, a run id was base64url: one in 32 started with "-", and ``--run ID`` was
    then taken for an option. Bytes whose base64url starts with "-" now give hex."""
    monkeypatch.setattr(secrets, "token_bytes", lambda size: b"\xfb" * size)
    run, starts = world.starts()
    assert run == "fb" * 16
    deals = [world.deal(j, starts) for j in world.holders]
    assert len({world.finish(j, starts, deals) for j in world.holders}) == 1
