"""Share repair (``vir keyholder repair ...``) against mistakes and hostile files.

A 2-of-4 deployment in files (no servers): holders 1, 3 and 4 hold shares, holder 2 is
new. The steps run as the ``vir`` command in this process, so that their output, logs
and files can be searched for every share, part, sum and the key, in every encoding
(raw, hex, base64url, base64): none may appear anywhere but in the key files. Refused:
a tampered sealed part, a deal of another request, a wrong verifier key, a helper not
in S, a helper twice, the repaired holder among the helpers, a wrong t or |S|,
mismatched epochs, an existing output file (left as it was), a new holder that already
holds a key, and a sum that does not match the helpers' public shares.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.holder_folders import HolderFolders
from support.key_forms import written_forms

from vir.crypto import keys, oprf, sealedbox, threshold
from vir.crypto.signing import init_signing_key
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.keyholder import epochs, repair
from vir.store.db import Database
from vir.store.migrate import upgrade

pytestmark = pytest.mark.sqlite_only(
    "its holders keep SQLite databases of their own: the same on either run"
)

HELPERS = (1, 3)
NEW = 2
HOLDERS = (1, 2, 3, 4)
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@dataclass
class World(HolderFolders):
    key: bytes = field(default=b"", kw_only=True)
    shares: dict[int, bytes] = field(default_factory=dict, kw_only=True)
    # Every part and sum the steps made (recorded as they are made), to search for.
    made: list[bytes] = field(default_factory=list, kw_only=True)


def _make_template(root: Path) -> tuple[bytes, dict[int, bytes]]:
    key = oprf.random_scalar()
    shares = {s.index: s.secret for s in threshold.split(key, 2, len(HOLDERS))}
    for number in HOLDERS:
        folder = root / f"holder-{number}"
        folder.mkdir(mode=0o700, parents=True)
        upgrade(f"sqlite:///{folder / 'keyholder.db'}")
        if number != NEW:
            (folder / "keys").mkdir(mode=0o700)
            init_signing_key(folder / "keys")
            keys.write_oprf_key(folder / "keys", 1, shares[number], number)
    return key, shares


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[int, bytes]]:
    root = tmp_path_factory.mktemp("repair-template")
    key, shares = _make_template(root)
    return root, key, shares


@pytest.fixture
def world(
    template: tuple[Path, bytes, dict[int, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    source, key, shares = template
    root = tmp_path / "world"
    shutil.copytree(source, root)
    (root / "files").mkdir()
    made = World(root, key=key, shares=shares)
    split, add = threshold.split_additive, threshold.add_scalars

    def recording_split(value: bytes, parts: int, *args: Any, **kwargs: Any) -> list[bytes]:
        found = split(value, parts, *args, **kwargs)
        made.made.extend([value, *found])
        return found

    def recording_add(values: Sequence[bytes]) -> bytes:
        total = add(values)
        made.made.extend([*values, total])
        return total

    monkeypatch.setattr(threshold, "split_additive", recording_split)
    monkeypatch.setattr(threshold, "add_scalars", recording_add)
    return made


def _request(world: World, *extra: str, helpers: str = "1,3", out: str = "request.json") -> Path:
    path = world.file(out)
    world.ok(
        NEW,
        "repair",
        "request",
        "--index",
        str(NEW),
        "--helpers",
        helpers,
        "--threshold",
        "2-of-4",
        "--out",
        str(path),
        *extra,
    )
    return path


def _joins(world: World, request: Path, tag: str = "") -> list[str]:
    found = []
    for helper in HELPERS:
        path = world.file(f"join{tag}-{helper}.json")
        world.ok(helper, "repair", "join", "--request", str(request), "--out", str(path))
        found.append(str(path))
    return found


def _verifiers(world: World, helpers: Sequence[int] = HELPERS) -> list[str]:
    found = []
    for helper in helpers:
        found += ["--verifier-key", world.verifier(helper)]
    return found


def _deal(world: World, helper: int, request: Path, joins: Sequence[str], tag: str = "") -> str:
    path = world.file(f"deal{tag}-{helper}.json")
    world.ok(
        helper,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        *joins,
        *_verifiers(world),
        "--out",
        str(path),
    )
    return str(path)


def _sum(
    world: World, helper: int, request: Path, joins: Sequence[str], deals: Sequence[str]
) -> str:
    path = world.file(f"sum-{helper}.json")
    world.ok(
        helper,
        "repair",
        "sum",
        "--request",
        str(request),
        "--joins",
        *joins,
        "--deals",
        *deals,
        *_verifiers(world),
        "--out",
        str(path),
    )
    return str(path)


def _finish_args(request: Path, joins: Sequence[str], sums: Sequence[str]) -> list[str]:
    return ["repair", "finish", "--request", str(request), "--joins", *joins, "--sums", *sums]


def _box_keys(world: World, number: int) -> list[Path]:
    return sorted(world.keys_dir(number).glob("repair-*.box"))


def _resign(
    world: World, path: Path, helper: int, change: Callable[[dict[str, Any]], None]
) -> None:
    world.resign(repair.FAMILY, path, helper, change)


def _full_run(world: World) -> tuple[Path, list[str], list[str], list[str]]:
    request = _request(world)
    joins = _joins(world, request)
    deals = [_deal(world, h, request, joins) for h in HELPERS]
    sums = [_sum(world, h, request, joins, deals) for h in HELPERS]
    return request, joins, deals, sums


def test_a_full_repair_leaves_no_secret_anywhere_and_no_box_key(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = _request(world)
    (new_box,) = _box_keys(world, NEW)
    assert stat.S_IMODE(new_box.stat().st_mode) == 0o600
    joins = _joins(world, request)
    for helper in HELPERS:
        (box,) = _box_keys(world, helper)
        assert stat.S_IMODE(box.stat().st_mode) == 0o600
    deals = [_deal(world, h, request, joins) for h in HELPERS]
    sums = [_sum(world, h, request, joins, deals) for h in HELPERS]
    for helper in HELPERS:
        assert _box_keys(world, helper) == [], "a helper's box key outlived its sum"
    assert _box_keys(world, NEW) == [new_box]
    out = world.ok(NEW, *_finish_args(request, joins, sums), *_verifiers(world))
    assert "stored its repaired share of epoch(s) 1" in out
    assert _box_keys(world, NEW) == []

    ring = keys.load_oprf_keyring(world.keys_dir(NEW))
    assert [(k.epoch, k.share_index, k.secret) for k in ring.keys] == [(1, NEW, world.shares[NEW])]
    db = Database.connect(world.database_url(NEW))
    try:
        (current,) = epochs.listing(db)
        assert (current.epoch, current.state) == (1, "current")
    finally:
        db.dispose()

    # The search finds a share where it is meant to be: in the new holder's key file.
    key_file = keys.key_path(world.keys_dir(NEW), 1).read_bytes()
    assert written_forms(world.shares[NEW])[1] in key_file
    secrets = [world.key, *world.shares.values(), *world.made]
    assert len(world.made) > 10, "the recording saw the parts and sums"
    texts = [r.out.encode() + r.err.encode() for r in world.outputs]
    texts.append(caplog.text.encode())
    files = sorted(world.file("x").parent.iterdir())
    assert len(files) == 7
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        texts.append(path.read_bytes())
    for number in HOLDERS:  # the databases, with their audit logs
        texts += [p.read_bytes() for p in (world.root / f"holder-{number}").glob("keyholder.db*")]
    for text in texts:
        for secret in secrets:
            for form in written_forms(secret):
                assert form not in text


def test_each_step_is_in_its_holder_s_audit_log(world: World) -> None:
    request, joins, _deals, sums = _full_run(world)
    world.ok(NEW, *_finish_args(request, joins, sums), *_verifiers(world))
    expected = {
        1: ["key.share_repair_joined", "key.share_repair_dealt", "key.share_repair_summed"],
        3: ["key.share_repair_joined", "key.share_repair_dealt", "key.share_repair_summed"],
        2: ["key.share_repair_restored"],
    }
    for number, actions in expected.items():
        bodies = [b for b in world.audit_bodies(number) if "share_repair" in b["action"]]
        assert [b["action"] for b in bodies] == actions
        for body in bodies:
            assert set(body["objects"]) == {"request", "index", "holder", "helpers", "epochs"}
            assert body["objects"]["epochs"] == "1" and body["objects"]["index"] == NEW


def test_a_tampered_sealed_part_is_refused(world: World) -> None:
    request = _request(world)
    joins = _joins(world, request)
    deals = [_deal(world, h, request, joins) for h in HELPERS]

    def flip(doc: dict[str, Any]) -> None:
        box = b64url_decode(doc["parts"]["1"]["3"])
        assert box is not None
        doc["parts"]["1"]["3"] = b64url_encode(box[:-1] + bytes([box[-1] ^ 1]))

    # Changed in transit: the signature no longer verifies.
    original = Path(deals[0]).read_bytes()
    doc = json.loads(original)
    flip(doc)
    Path(deals[0]).write_text(json.dumps(doc))
    world.refused(
        3,
        "repair",
        "sum",
        "--request",
        str(request),
        "--joins",
        *joins,
        "--deals",
        *deals,
        *_verifiers(world),
        "--out",
        str(world.file("sum-3.json")),
        match="not signed by helper 1's key",
    )
    # Changed before it was signed: the sealed box does not open.
    Path(deals[0]).write_bytes(original)
    _resign(world, Path(deals[0]), 1, flip)
    world.refused(
        3,
        "repair",
        "sum",
        "--request",
        str(request),
        "--joins",
        *joins,
        "--deals",
        *deals,
        *_verifiers(world),
        "--out",
        str(world.file("sum-3.json")),
        match="does not open with this key holder's box key",
    )
    assert not world.file("sum-3.json").exists()
    assert len(_box_keys(world, 3)) == 1, "a refused step keeps its box key for a retry"


def test_a_deal_of_another_request_is_refused(world: World) -> None:
    first = _request(world)
    first_joins = _joins(world, first)
    other_deal = _deal(world, 1, first, first_joins)
    second = _request(world, out="request-2.json")
    joins = _joins(world, second, tag="-2")
    own = _deal(world, 3, second, joins, tag="-2")
    world.refused(
        3,
        "repair",
        "sum",
        "--request",
        str(second),
        "--joins",
        *joins,
        "--deals",
        other_deal,
        own,
        *_verifiers(world),
        "--out",
        str(world.file("sum-3.json")),
        match="belongs to another repair request",
    )
    # Joins of the other request, with this one's request file: refused as well.
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(second),
        "--joins",
        *first_joins,
        *_verifiers(world),
        "--out",
        str(world.file("deal-x.json")),
        match="belongs to another repair request",
    )


def test_a_wrong_verifier_key_is_refused(world: World) -> None:
    request = _request(world)
    joins = _joins(world, request)
    wrong = ["--verifier-key", world.verifier(1), "--verifier-key", "3=" + world.verifier(4)[2:]]
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        *joins,
        *wrong,
        "--out",
        str(world.file("deal-1.json")),
        match="not signed by helper 3's key",
    )
    # One's own key given wrong is refused too.
    mixed = ["--verifier-key", "1=" + world.verifier(3)[2:], "--verifier-key", world.verifier(3)]
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        *joins,
        *mixed,
        "--out",
        str(world.file("deal-1.json")),
        match="not this key holder's own",
    )
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        *joins,
        "--verifier-key",
        world.verifier(1),
        "--out",
        str(world.file("deal-1.json")),
        match="no verifier key for helper 3",
    )
    assert not world.file("deal-1.json").exists()


def test_a_helper_not_in_the_set_is_refused(world: World) -> None:
    request = _request(world)
    world.refused(
        4,
        "repair",
        "join",
        "--request",
        str(request),
        "--out",
        str(world.file("join-4.json")),
        match="not one of the request's helpers",
    )
    assert _box_keys(world, 4) == []
    joins = _joins(world, request)
    # A join signed by holder 4 for this request (as if it had joined anyway).
    forged = world.file("join-4.json")
    forged.write_bytes(Path(joins[1]).read_bytes())
    _resign(world, forged, 4, lambda doc: doc.update(helper=4))
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        joins[0],
        str(forged),
        *_verifiers(world),
        "--out",
        str(world.file("deal-1.json")),
        match="comes from holder 4, which is not a helper",
    )
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        *joins,
        *_verifiers(world, (1, 3, 4)),
        "--out",
        str(world.file("deal-1.json")),
        match="for holder 4, which is not a helper",
    )


def test_a_helper_twice_the_new_holder_among_them_or_a_wrong_count_is_refused(
    world: World,
) -> None:
    out = str(world.file("request.json"))
    base = ["repair", "request", "--index", "2", "--threshold", "2-of-4", "--out", out]
    world.refused(NEW, *base, "--helpers", "1,1", match="a helper is named twice")
    world.refused(NEW, *base, "--helpers", "1,2", match="holder 2 cannot help repair itself")
    world.refused(NEW, *base, "--helpers", "1,3,4", match="needs exactly 2 helpers, not 3")
    world.refused(NEW, *base, "--helpers", "1,5", match="helper 5 is not a holder index 1..4")
    world.refused(
        NEW,
        "repair",
        "request",
        "--index",
        "2",
        "--threshold",
        "3-of-4",
        "--helpers",
        "1,3,4",
        "--out",
        out,
        match="threshold",
    )
    assert not world.file("request.json").exists()
    assert _box_keys(world, NEW) == []

    request = _request(world)
    joins = _joins(world, request)
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        joins[0],
        joins[0],
        *_verifiers(world),
        "--out",
        str(world.file("deal-1.json")),
        match="a second join file from helper 1",
    )
    # A request edited to name the new holder as a helper is refused where it is read.
    doc = json.loads(request.read_text())
    doc["helpers"] = [1, 2]
    edited = world.file("request-edited.json")
    edited.write_text(json.dumps(doc))
    world.refused(
        1,
        "repair",
        "join",
        "--request",
        str(edited),
        "--out",
        str(world.file("join-x.json")),
        match="cannot help repair itself",
    )


def test_mismatched_epochs_are_refused(world: World) -> None:
    request = _request(world)
    joins = [str(world.file("join-1.json"))]
    world.ok(1, "repair", "join", "--request", str(request), "--out", joins[0])
    # Holder 3 rotated meanwhile (the others did not): its epochs differ.
    db = Database.connect(world.database_url(3))
    try:
        epochs.rotate(db, world.keys_dir(3), NOW)
    finally:
        db.dispose()
    joins.append(str(world.file("join-3.json")))
    world.ok(3, "repair", "join", "--request", str(request), "--out", joins[1])
    world.refused(
        1,
        "repair",
        "deal",
        "--request",
        str(request),
        "--joins",
        *joins,
        *_verifiers(world),
        "--out",
        str(world.file("deal-1.json")),
        match="list different epochs",
    )


def test_an_existing_output_file_is_refused_and_left_alone(world: World) -> None:
    taken = world.file("taken.json")
    taken.write_text("kept\n")
    world.refused(
        NEW,
        "repair",
        "request",
        "--index",
        "2",
        "--helpers",
        "1,3",
        "--threshold",
        "2-of-4",
        "--out",
        str(taken),
        match="already exists",
    )
    assert _box_keys(world, NEW) == []
    request = _request(world)
    world.refused(
        1, "repair", "join", "--request", str(request), "--out", str(taken), match="already exists"
    )
    assert _box_keys(world, 1) == []
    assert taken.read_text() == "kept\n"


def test_a_new_holder_with_a_key_refuses_to_finish(world: World) -> None:
    request, joins, _deals, sums = _full_run(world)
    keys.write_oprf_key(world.keys_dir(NEW), 1, oprf.random_scalar(), NEW)
    world.refused(
        NEW,
        *_finish_args(request, joins, sums),
        *_verifiers(world),
        match="already holds an OPRF key",
    )
    world.refused(
        NEW,
        "repair",
        "request",
        "--index",
        "2",
        "--helpers",
        "1,3",
        "--threshold",
        "2-of-4",
        "--out",
        str(world.file("again.json")),
        match="already holds",
    )


def test_a_wrong_sum_fails_the_public_share_check(world: World) -> None:
    request, joins, _deals, sums = _full_run(world)
    req = repair.read_request(request)

    def wrong_sum(doc: dict[str, Any]) -> None:
        # A helper that seals a wrong sum, with the right context, to the new holder.
        context = repair._context(req, "sum", 1, 3, NEW)
        sealed = sealedbox.seal(context + oprf.random_scalar(), req.box_key)
        doc["sums"]["1"] = b64url_encode(sealed)

    _resign(world, Path(sums[1]), 3, wrong_sum)
    err = world.refused(
        NEW,
        *_finish_args(request, joins, sums),
        *_verifiers(world),
        match="does not match the helpers' public shares",
    )
    assert "nothing was stored" in err
    assert not list(world.keys_dir(NEW).glob("oprf-epoch-*"))

    # A sum sealed for another epoch or holder (moved between files) is refused as mixed up.
    def moved(doc: dict[str, Any]) -> None:
        context = repair._context(req, "sum", 1, 1, NEW)  # says it is from holder 1
        doc["sums"]["1"] = b64url_encode(
            sealedbox.seal(context + oprf.random_scalar(), req.box_key)
        )

    _resign(world, Path(sums[1]), 3, moved)
    world.refused(
        NEW,
        *_finish_args(request, joins, sums),
        *_verifiers(world),
        match="sealed for another request, epoch or holder",
    )
