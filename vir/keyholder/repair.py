"""Share repair: give a lost key holder j its Shamir share f(j) back from t helpers.

A threshold deployment that loses a key holder (its keys directory, HSM or database)
replaces it without a rekey: the new holder gets exactly the share the lost one had,
for every epoch that is not retired, so no other holder changes anything and every
pseudonym stays the same. The helpers S (t of the remaining holders) compute
f(j) = Σ_{i∈S} λ_i^S(j)·k_i without anyone learning a share but their own:

1. ``request`` (new holder j): a request id, the helpers, t-of-n and a fresh box
   public key (its secret key stays in j's keys directory). Not signed: j has no key
   the others know yet, so the helpers' operators confirm it by its fingerprint.
2. ``join`` (each helper i): a fresh box public key of its own, K_i = k_i·G and the
   epoch listing; signed with i's checkpoint key.
3. ``deal`` (each helper i): c_i = λ_i^S(j)·k_i split into t random additive parts,
   part m sealed to helper m's box key; signed.
4. ``sum`` (each helper m): opens the parts addressed to it, s_m = Σ_i d_{i,m},
   sealed to j's box key; signed. m's box key is destroyed.
5. ``finish`` (new holder j): k_j = Σ s_m, accepted only when k_j·G = Σ λ_i^S(j)·K_i;
   stored with ``Custody.write_key`` with the helpers' epoch listing. j's box key is
   destroyed.

Every sealed part and sum is a uniformly random scalar to whoever carries the files
(sealed), and to a helper (t-1 parts of a term reveal nothing about it); only j adds
all t sums. Every file names the request id and the request's digest, its holder
index and helpers; every signed part (the sealed plaintext too) names its epoch,
sender and recipient, so that files of another request, epoch, index or helper are
refused. Errors and output say what is wrong and where, never a share, part, sum or
key (a repr of a document leaves them out).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.crypto import sealedbox, threshold
from vir.crypto.keys import OprfKeyring
from vir.crypto.signing import CheckpointSigner, init_signing_key
from vir.domain.dates import parse_timestamp
from vir.domain.encoding import b64url_encode
from vir.domain.errors import ConfigurationError, CryptoError
from vir.keyholder import epochs, exchange
from vir.keyholder.custody import Custody
from vir.store import audit_log
from vir.store.db import Database
from vir.store.epochs import EpochState

VERSION = 1
DOMAIN = b"vir share repair v1\n"
REQUEST_ID_BYTES = 16
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{22}")

_COMMON = ("version", "kind", "request_id", "index", "helpers", "threshold")
_SIGNED = (*_COMMON, "request_digest", "helper", "signer", "signature")
FIELDS = {
    "request": frozenset((*_COMMON, "box_key", "created_at")),
    "join": frozenset((*_SIGNED, "box_key", "epochs", "public_shares")),
    "deal": frozenset((*_SIGNED, "parts")),
    "sum": frozenset((*_SIGNED, "sums")),
}
# A deal is about t * epochs * 110 bytes; anything far larger is not a repair file.
FAMILY = exchange.Family("repair", VERSION, DOMAIN, FIELDS)
parse_verifier_keys = exchange.parse_verifier_keys


# -- documents -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """Repair holder ``index`` from ``helpers`` (t of n); sealed to ``box_key``."""

    request_id: str
    index: int
    helpers: tuple[int, ...]
    t: int
    n: int
    box_key: bytes
    digest: str  # SHA-256 of the request's canonical JSON: what every other file names

    @property
    def threshold_text(self) -> str:
        return f"{self.t}-of-{self.n}"

    @property
    def fingerprint(self) -> str:
        """What the helpers' operators confirm with the new holder's, by another channel."""
        return self.digest[:16]


@dataclass(frozen=True)
class EpochEntry:
    """One row of a holder's epoch listing, as carried in a join."""

    epoch: int
    state: EpochState
    created_at: str
    activated_at: str | None
    retire_after: str | None


@dataclass(frozen=True)
class Join:
    path: Path
    helper: int
    box_key: bytes
    epochs: tuple[EpochEntry, ...]
    public_shares: Mapping[int, bytes]  # epoch -> K_i = k_i·G


@dataclass(frozen=True)
class Deal:
    path: Path
    helper: int
    parts: Mapping[int, Mapping[int, bytes]] = field(repr=False)  # epoch -> m -> sealed


@dataclass(frozen=True)
class Sum:
    path: Path
    helper: int
    sums: Mapping[int, bytes] = field(repr=False)  # epoch -> sealed s_m


# -- what each step did (for the command's one or two lines) -----------------------------


@dataclass(frozen=True)
class Done:
    request: Request
    epochs: tuple[int, ...]
    holder: int  # who ran the step: a helper's index, or the new holder's
    out: Path | None = None


# -- the steps -------------------------------------------------------------------------


def box_key_path(keys_dir: Path, request_id: str) -> Path:
    """Where a holder keeps its box secret key for one request, until its step is done."""
    return keys_dir / f"repair-{request_id}.box"


def request(
    custody: Custody,
    configured_threshold: int,
    index: int,
    helpers: Sequence[int],
    threshold_text: str,
    out: Path,
    now: dt.datetime,
) -> Done:
    """Step 1, on the new holder: its box key and the request file ``out``.

    Refuses when this holder already holds an OPRF key (a holder with a key is not a
    new one), and makes its checkpoint key when it has none (it signs its audit log).
    """
    t, n = exchange.parse_threshold(threshold_text)
    _check_request(index, tuple(helpers), t, n)
    exchange.same_threshold(configured_threshold, t, "request")
    exchange.refuse_existing(out)
    custody.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _refuse_oprf_keys(custody.keys_dir)
    init_signing_key(custody.keys_dir, token=custody.token)
    request_id = b64url_encode(secrets.token_bytes(REQUEST_ID_BYTES))
    keypair = sealedbox.new_keypair()
    body = {
        "version": VERSION,
        "kind": "request",
        "request_id": request_id,
        "index": index,
        "helpers": list(helpers),
        "threshold": f"{t}-of-{n}",
        "box_key": b64url_encode(keypair.public),
        "created_at": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    box = box_key_path(custody.keys_dir, request_id)
    sealedbox.write_keypair(box, keypair)
    try:
        exchange.write_output(out, exchange.render(body))
    except BaseException:
        sealedbox.destroy_keypair(box)
        raise
    return Done(read_request(out), (), index, out)


def join(
    custody: Custody,
    signer: CheckpointSigner,
    db: Database,
    configured_threshold: int,
    request_file: Path,
    out: Path,
    now: dt.datetime,
) -> Done:
    """Step 2, on each helper: its box key, K_i per epoch and its epoch listing, signed."""
    req = read_request(request_file)
    exchange.same_threshold(configured_threshold, req.t, "request")
    exchange.refuse_existing(out)
    listing = _listing(db)
    me, ring = _own_shares(custody, req, listing)
    held = _held(listing)
    keypair = sealedbox.new_keypair()
    public_shares = {
        str(epoch): b64url_encode(threshold.public_share(_secret(ring, epoch))) for epoch in held
    }
    body = _signed_body(req, "join", me) | {
        "box_key": b64url_encode(keypair.public),
        "epochs": [_render_epoch(entry) for entry in listing],
        "public_shares": public_shares,
    }
    box = box_key_path(custody.keys_dir, req.request_id)
    sealedbox.write_keypair(box, keypair)
    try:
        exchange.write_output(out, _sign(body, signer))
        _audit(db, Action.KEY_SHARE_REPAIR_JOINED, req, held, me, now)
    except BaseException:
        sealedbox.destroy_keypair(box)
        raise
    return Done(req, held, me, out)


def deal(
    custody: Custody,
    signer: CheckpointSigner,
    db: Database,
    request_file: Path,
    join_files: Sequence[Path],
    verifier_keys: Mapping[int, str],
    out: Path,
    now: dt.datetime,
    rng: Callable[[], bytes] | None = None,
) -> Done:
    """Step 3, on each helper: its term c_i of every epoch in t random parts, part m
    sealed to helper m's box key, signed."""
    req = read_request(request_file)
    exchange.refuse_existing(out)
    listing = _listing(db)
    me, ring = _own_shares(custody, req, listing)
    keys = _verifiers(req, verifier_keys, me, signer)
    joins = read_joins(req, join_files, keys)
    held = _agreed_epochs(joins)
    _unchanged(listing, joins[me])
    _own_box_key(custody, req, joins[me].box_key)
    split = {} if rng is None else {"rng": rng}
    parts: dict[str, dict[str, str]] = {}
    for epoch in held:
        share = threshold.Share(me, _secret(ring, epoch))
        term = threshold.repair_term(share, req.helpers, req.index)
        pieces = threshold.split_additive(term, req.t, **split)
        parts[str(epoch)] = {
            str(m): b64url_encode(
                sealedbox.seal(_context(req, "part", epoch, me, m) + piece, joins[m].box_key)
            )
            for m, piece in zip(req.helpers, pieces, strict=True)
        }
    body = _signed_body(req, "deal", me) | {"parts": parts}
    exchange.write_output(out, _sign(body, signer))
    _audit(db, Action.KEY_SHARE_REPAIR_DEALT, req, held, me, now)
    return Done(req, held, me, out)


def add_parts(
    custody: Custody,
    signer: CheckpointSigner,
    db: Database,
    request_file: Path,
    join_files: Sequence[Path],
    deal_files: Sequence[Path],
    verifier_keys: Mapping[int, str],
    out: Path,
    now: dt.datetime,
) -> Done:
    """Step 4 (``sum``), on each helper: s_m = Σ_i d_{i,m} of every epoch, sealed to the
    new holder; its box key is destroyed once the file is written."""
    req = read_request(request_file)
    exchange.refuse_existing(out)
    listing = _listing(db)
    me, _ring = _own_shares(custody, req, listing)
    keys = _verifiers(req, verifier_keys, me, signer)
    joins = read_joins(req, join_files, keys)
    held = _agreed_epochs(joins)
    _unchanged(listing, joins[me])
    box = box_key_path(custody.keys_dir, req.request_id)
    keypair = _own_box_key(custody, req, joins[me].box_key)
    deals = read_deals(req, deal_files, keys, held)
    sums: dict[str, str] = {}
    for epoch in held:
        received = [
            _open(
                deals[i].parts[epoch][me],
                keypair,
                _context(req, "part", epoch, i, me),
                f"the part for holder {me} of epoch {epoch} in {deals[i].path}",
            )
            for i in req.helpers
        ]
        total = threshold.add_scalars(received)
        sealed = sealedbox.seal(_context(req, "sum", epoch, me, req.index) + total, req.box_key)
        sums[str(epoch)] = b64url_encode(sealed)
    body = _signed_body(req, "sum", me) | {"sums": sums}
    exchange.write_output(out, _sign(body, signer))
    _audit(db, Action.KEY_SHARE_REPAIR_SUMMED, req, held, me, now)
    sealedbox.destroy_keypair(box)
    return Done(req, held, me, out)


def finish(
    custody: Custody,
    db: Database,
    configured_threshold: int,
    request_file: Path,
    join_files: Sequence[Path],
    sum_files: Sequence[Path],
    verifier_keys: Mapping[int, str],
    now: dt.datetime,
) -> Done:
    """Step 5, on the new holder: k_j = Σ s_m of every epoch, checked against the
    helpers' K_i, stored with ``custody.write_key`` beside the helpers' epoch listing;
    its box key is destroyed."""
    req = read_request(request_file)
    exchange.same_threshold(configured_threshold, req.t, "request")
    _refuse_oprf_keys(custody.keys_dir)
    box = box_key_path(custody.keys_dir, req.request_id)
    keypair = _own_box_key(custody, req, req.box_key, new_holder=True)
    keys = _verifiers(req, verifier_keys, None, None)
    joins = read_joins(req, join_files, keys)
    held = _agreed_epochs(joins)
    sums = read_sums(req, sum_files, keys, held)
    restored: dict[int, bytes] = {}
    for epoch in held:
        received = [
            _open(
                sums[m].sums[epoch],
                keypair,
                _context(req, "sum", epoch, m, req.index),
                f"the sum of epoch {epoch} in {sums[m].path}",
            )
            for m in req.helpers
        ]
        publics = [(i, joins[i].public_shares[epoch]) for i in req.helpers]
        restored[epoch] = _checked_share(req.index, received, publics, epoch)
    listing = _restored_listing(joins[min(req.helpers)].epochs)
    _store(custody, db, req, restored, listing, now)
    sealedbox.destroy_keypair(box)
    return Done(req, held, req.index)


# -- reading documents -----------------------------------------------------------------


def read_request(path: Path) -> Request:
    """The request in ``path``; ConfigurationError naming the file and the problem."""
    doc = _load(path, "request")
    req = _request_fields(doc, path)
    box_key = exchange.bytes_field(doc["box_key"], sealedbox.PUBLIC_KEY_BYTES, "box_key", path)
    created = doc["created_at"]
    if not isinstance(created, str) or len(created) > 40:
        raise exchange.bad(path, "created_at is not a time")
    digest = hashlib.sha256(exchange.canonical(doc)).hexdigest()
    return Request(req[0], req[1], req[2], req[3], req[4], box_key, digest)


def read_joins(
    req: Request, paths: Sequence[Path], keys: Mapping[int, tuple[str, bytes]]
) -> dict[int, Join]:
    found: dict[int, Join] = {}
    for path in paths:
        doc = _load_signed(path, "join", req, keys)
        helper = doc["helper"]
        box_key = exchange.bytes_field(doc["box_key"], sealedbox.PUBLIC_KEY_BYTES, "box_key", path)
        listing = _epoch_listing(doc["epochs"], path)
        held = _held(listing)
        publics = _by_epoch(doc["public_shares"], path, "public_shares")
        if tuple(publics) != held:
            raise exchange.bad(path, "its public shares are not those of its unretired epochs")
        public_shares = {
            e: exchange.bytes_field(v, 32, f"public share of epoch {e}", path)
            for e, v in publics.items()
        }
        _once(found, helper, path, "join")
        found[helper] = Join(path, helper, box_key, listing, public_shares)
    _all_helpers(req, found, "join")
    return found


def read_deals(
    req: Request,
    paths: Sequence[Path],
    keys: Mapping[int, tuple[str, bytes]],
    held: tuple[int, ...],
) -> dict[int, Deal]:
    found: dict[int, Deal] = {}
    for path in paths:
        doc = _load_signed(path, "deal", req, keys)
        by_epoch = _by_epoch(doc["parts"], path, "parts")
        _same_epochs(tuple(by_epoch), held, path)
        parts: dict[int, dict[int, bytes]] = {}
        for epoch, value in by_epoch.items():
            if not isinstance(value, dict) or sorted(value) != sorted(map(str, req.helpers)):
                raise exchange.bad(path, f"the parts of epoch {epoch} are not one per helper")
            parts[epoch] = {
                int(m): exchange.sealed_field(sealed, f"part of epoch {epoch} for holder {m}", path)
                for m, sealed in value.items()
            }
        _once(found, doc["helper"], path, "deal")
        found[doc["helper"]] = Deal(path, doc["helper"], parts)
    _all_helpers(req, found, "deal")
    return found


def read_sums(
    req: Request,
    paths: Sequence[Path],
    keys: Mapping[int, tuple[str, bytes]],
    held: tuple[int, ...],
) -> dict[int, Sum]:
    found: dict[int, Sum] = {}
    for path in paths:
        doc = _load_signed(path, "sum", req, keys)
        by_epoch = _by_epoch(doc["sums"], path, "sums")
        _same_epochs(tuple(by_epoch), held, path)
        sums = {e: exchange.sealed_field(v, f"sum of epoch {e}", path) for e, v in by_epoch.items()}
        _once(found, doc["helper"], path, "sum")
        found[doc["helper"]] = Sum(path, doc["helper"], sums)
    _all_helpers(req, found, "sum")
    return found


# -- checks ----------------------------------------------------------------------------


def _check_request(index: int, helpers: tuple[int, ...], t: int, n: int, where: str = "") -> None:
    prefix = f"{where}: " if where else ""
    if n < 2:
        raise ConfigurationError(f"{prefix}share repair is for a threshold deployment (n >= 2)")
    if not 1 <= index <= n:
        raise ConfigurationError(f"{prefix}the holder to repair must be 1..{n}, not {index}")
    wrong = [h for h in helpers if not 1 <= h <= n]
    if wrong:
        raise ConfigurationError(f"{prefix}helper {wrong[0]} is not a holder index 1..{n}")
    if len(set(helpers)) != len(helpers):
        raise ConfigurationError(f"{prefix}a helper is named twice")
    if index in helpers:
        raise ConfigurationError(f"{prefix}holder {index} cannot help repair itself")
    if len(helpers) != t:
        raise ConfigurationError(
            f"{prefix}a {t}-of-{n} repair needs exactly {t} helpers, not {len(helpers)}"
        )


def _refuse_oprf_keys(keys_dir: Path) -> None:
    exchange.refuse_oprf_keys(
        keys_dir, "a repair makes the keys of a new key holder, and never replaces one"
    )


def _verifiers(
    req: Request,
    given: Mapping[int, str],
    me: int | None,
    signer: CheckpointSigner | None,
) -> dict[int, tuple[str, bytes]]:
    """Each helper's (key name, Ed25519 key); a helper's own may be left out."""
    return exchange.verifiers(
        req.helpers, given, me, signer, role="helper", outside="a helper of this request"
    )


def _listing(db: Database) -> list[epochs.EpochInfo]:
    return epochs.listing(db)


def _held(listing: Iterable[epochs.EpochInfo] | Iterable[EpochEntry]) -> tuple[int, ...]:
    return tuple(e.epoch for e in listing if e.state != EpochState.RETIRED)


def _own_shares(
    custody: Custody, req: Request, listing: Sequence[epochs.EpochInfo]
) -> tuple[int, OprfKeyring]:
    """This helper's index (its shares') and keyring, once they fit the request."""
    ring = custody.load_keyring(custody.keys_dir)
    held = _held(listing)
    if not held:
        raise ConfigurationError("this key holder has no epoch that is not retired")
    indices = set()
    for epoch in held:
        key = ring.get(epoch)
        if key is None:
            raise ConfigurationError(f"this key holder has no key for its epoch {epoch}")
        indices.add(key.share_index)
    if None in indices:
        raise ConfigurationError(
            "this key holder holds a whole key, not a share: repair is for threshold holders"
        )
    found = {index for index in indices if index is not None}
    if len(found) != 1:
        raise ConfigurationError("this key holder's keys are shares of different indices")
    (me,) = found
    if me == req.index:
        raise ConfigurationError(f"this key holder is holder {me}, the one the request repairs")
    if me not in req.helpers:
        raise ConfigurationError(
            f"this key holder is holder {me}, not one of the request's helpers "
            f"{exchange.names(req.helpers)}"
        )
    return me, ring


def _secret(ring: OprfKeyring, epoch: int) -> bytes:
    key = ring.get(epoch)
    if key is None:  # _own_shares checked every held epoch
        raise ConfigurationError(f"this key holder has no key for its epoch {epoch}")
    return key.secret


def _agreed_epochs(joins: Mapping[int, Join]) -> tuple[int, ...]:
    """The unretired epochs, once every helper lists the same epochs in the same states."""
    shapes = {i: [(e.epoch, e.state) for e in join.epochs] for i, join in joins.items()}
    first = min(shapes)
    for helper, shape in shapes.items():
        if shape != shapes[first]:
            raise ConfigurationError(
                f"helpers {first} and {helper} list different epochs (or epoch states): "
                "finish any rotation on every holder first, then make a new request"
            )
    return _held(joins[first].epochs)


def _unchanged(listing: Sequence[epochs.EpochInfo], own: Join) -> None:
    if [(e.epoch, e.state) for e in listing] != [(e.epoch, e.state) for e in own.epochs]:
        raise ConfigurationError(
            f"this key holder's epochs changed since it joined ({own.path}): make a new request"
        )


def _own_box_key(
    custody: Custody, req: Request, published: bytes, *, new_holder: bool = False
) -> sealedbox.BoxKeyPair:
    keypair = sealedbox.read_keypair(box_key_path(custody.keys_dir, req.request_id))
    if keypair.public != published:
        what = "the request's" if new_holder else "the one in this holder's join"
        raise ConfigurationError(
            f"this key holder's box key for request {req.request_id} is not {what}: the "
            "files are of another run of this step"
        )
    return keypair


def _checked_share(
    index: int, received: Sequence[bytes], publics: Sequence[tuple[int, bytes]], epoch: int
) -> bytes:
    total = threshold.add_scalars(received)
    try:
        share = threshold.Share(index, total)
        good = threshold.check_repaired(share, publics)
    except CryptoError:
        good = False
    if not good:
        raise ConfigurationError(
            f"the repaired share of epoch {epoch} does not match the helpers' public shares: "
            "a file was altered or mixed up, or a helper used a wrong key; nothing was "
            "stored: make a new request"
        )
    return total


def _restored_listing(entries: Sequence[EpochEntry]) -> list[epochs.EpochInfo]:
    return [
        epochs.EpochInfo(
            e.epoch,
            e.state,
            _parse_time(e.created_at),
            None if e.activated_at is None else _parse_time(e.activated_at),
            None if e.retire_after is None else _parse_time(e.retire_after),
        )
        for e in entries
    ]


def _store(
    custody: Custody,
    db: Database,
    req: Request,
    restored: Mapping[int, bytes],
    listing: Sequence[epochs.EpochInfo],
    now: dt.datetime,
) -> None:
    """The keys and the epoch listing, in one transaction: keys written here are
    destroyed again when it fails."""
    _refuse_oprf_keys(custody.keys_dir)
    written: list[int] = []
    try:
        with db.write(exclusive=True) as session:
            for epoch, secret in restored.items():
                custody.write_key(custody.keys_dir, epoch, secret, share_index=req.index)
                written.append(epoch)
            epochs.restore_listing(session, listing)
            audit_log.append(
                session,
                _event(Action.KEY_SHARE_REPAIR_RESTORED, req, tuple(restored), req.index, now),
            )
    except BaseException:
        from vir.crypto.keys import destroy_oprf_key

        for epoch in written:
            destroy_oprf_key(custody.keys_dir, epoch)
        raise


# -- formats ---------------------------------------------------------------------------


def _context(req: Request, what: str, epoch: int, sender: int, recipient: int) -> bytes:
    """What a sealed scalar is prefixed with: opened elsewhere, it is refused."""
    return DOMAIN + (
        f"{what} request {req.request_id} {req.digest} index {req.index} epoch {epoch} "
        f"from {sender} to {recipient}\n"
    ).encode("ascii")


def _open(box: bytes, keypair: sealedbox.BoxKeyPair, context: bytes, where: str) -> bytes:
    return exchange.open_scalar(
        box, keypair, context, where, run="request", mixed_up="request, epoch or holder"
    )


def _signed_body(req: Request, kind: str, helper: int) -> dict[str, Any]:
    return {
        "version": VERSION,
        "kind": kind,
        "request_id": req.request_id,
        "request_digest": req.digest,
        "index": req.index,
        "helpers": list(req.helpers),
        "threshold": req.threshold_text,
        "helper": helper,
    }


def _sign(body: dict[str, Any], signer: CheckpointSigner) -> bytes:
    return exchange.sign(FAMILY, body, signer)


def _load(path: Path, kind: str) -> dict[str, Any]:
    return exchange.load(FAMILY, path, kind)


def _request_fields(
    doc: Mapping[str, Any], path: Path
) -> tuple[str, int, tuple[int, ...], int, int]:
    request_id = doc["request_id"]
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise exchange.bad(path, "request_id is not 16 bytes in base64url")
    index, helpers, text = doc["index"], doc["helpers"], doc["threshold"]
    if type(index) is not int:
        raise exchange.bad(path, "index is not a whole number")
    if not isinstance(helpers, list) or not all(type(h) is int for h in helpers):
        raise exchange.bad(path, "helpers is not a list of whole numbers")
    if not isinstance(text, str) or len(text) > 10:
        raise exchange.bad(path, "threshold is not t-of-n")
    try:
        t, n = threshold.parse_threshold(text)
    except ValueError as error:
        raise exchange.bad(path, str(error)) from None
    _check_request(index, tuple(helpers), t, n, str(path))
    return request_id, index, tuple(helpers), t, n


def _load_signed(
    path: Path, kind: str, req: Request, keys: Mapping[int, tuple[str, bytes]]
) -> dict[str, Any]:
    """A join, deal or sum of this request, signed by the helper it names."""
    doc = _load(path, kind)
    if doc["request_id"] != req.request_id:
        raise exchange.bad(path, f"belongs to another repair request, not {req.request_id}")
    if doc["request_digest"] != req.digest:
        raise exchange.bad(path, f"was made for another version of request {req.request_id}")
    if doc["index"] != req.index:
        raise exchange.bad(path, f"repairs another holder index, not {req.index}")
    if doc["helpers"] != list(req.helpers) or doc["threshold"] != req.threshold_text:
        raise exchange.bad(path, "names other helpers or another threshold than the request")
    helper = doc["helper"]
    if type(helper) is not int:
        raise exchange.bad(path, "helper is not a whole number")
    if helper not in req.helpers:
        raise exchange.bad(
            path, f"comes from holder {helper}, which is not a helper of this request"
        )
    if not exchange.signed_by(FAMILY, doc, path, keys[helper]):
        raise exchange.bad(
            path,
            f"not signed by helper {helper}'s key (the --verifier-key given for {helper}): "
            "altered, or from another key holder",
        )
    return doc


def _by_epoch(value: object, path: Path, what: str) -> dict[int, Any]:
    if not isinstance(value, dict) or not all(
        # ASCII digits only: str.isdigit() also takes superscripts and other scripts' digits.
        isinstance(k, str) and k.isascii() and k.isdigit() and not k.startswith("0") and len(k) < 10
        for k in value
    ):
        raise exchange.bad(path, f"{what} is not an object keyed by epoch")
    return {int(k): v for k, v in sorted(value.items(), key=lambda kv: int(kv[0]))}


def _same_epochs(found: tuple[int, ...], held: tuple[int, ...], path: Path) -> None:
    if found != held:
        raise exchange.bad(
            path,
            f"its epochs ({exchange.names(found)}) are not the helpers' unretired epochs "
            f"({exchange.names(held)})",
        )


def _once(found: Mapping[int, object], helper: int, path: Path, kind: str) -> None:
    if helper in found:
        raise exchange.bad(path, f"a second {kind} file from helper {helper}")


def _all_helpers(req: Request, found: Mapping[int, object], kind: str) -> None:
    missing = [h for h in req.helpers if h not in found]
    if missing:
        raise ConfigurationError(f"no {kind} file from helper(s) {exchange.names(missing)}")


def _epoch_listing(value: object, path: Path) -> tuple[EpochEntry, ...]:
    if not isinstance(value, list) or not value:
        raise exchange.bad(path, "epochs is not a list of epochs")
    entries = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {
            "epoch",
            "state",
            "created_at",
            "activated_at",
            "retire_after",
        }:
            raise exchange.bad(path, "an epoch entry is malformed")
        try:
            state = EpochState(item["state"])
        except ValueError:
            raise exchange.bad(path, "an epoch's state is unknown") from None
        if type(item["epoch"]) is not int or item["epoch"] < 1:
            raise exchange.bad(path, "an epoch number is not a whole number from 1")
        times = [item["created_at"], item["activated_at"], item["retire_after"]]
        if not isinstance(times[0], str) or not all(t is None or _is_time(t) for t in times):
            raise exchange.bad(path, "an epoch's times are malformed")
        entries.append(EpochEntry(item["epoch"], state, *times))
    numbers = [e.epoch for e in entries]
    if numbers != sorted(set(numbers)):
        raise exchange.bad(path, "its epochs are not in order, or listed twice")
    if [e.state for e in entries].count(EpochState.CURRENT) != 1:
        raise exchange.bad(path, "it has not exactly one current epoch")
    return tuple(entries)


def _render_epoch(info: epochs.EpochInfo) -> dict[str, Any]:
    return {
        "epoch": info.epoch,
        "state": info.state.value,
        "created_at": _time(info.created_at),
        "activated_at": None if info.activated_at is None else _time(info.activated_at),
        "retire_after": None if info.retire_after is None else _time(info.retire_after),
    }


def _time(when: dt.datetime) -> str:
    # SQLite gives back naive datetimes, stored as UTC.
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat()


def _is_time(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        return parse_timestamp(value).tzinfo is not None
    except ValueError:
        return False


def _parse_time(value: str) -> dt.datetime:
    return parse_timestamp(value)


def _event(
    action: Action, req: Request, held: tuple[int, ...], holder: int, now: dt.datetime
) -> AuditEvent:
    return audit_log.new_event(
        action,
        Outcome.SUCCESS,
        now,
        actor="admin",
        objects={
            "request": req.request_id,
            "index": req.index,
            "holder": holder,
            "helpers": exchange.names(req.helpers),
            "epochs": exchange.names(held),
        },
    )


def _audit(
    db: Database, action: Action, req: Request, held: tuple[int, ...], holder: int, now: dt.datetime
) -> None:
    with db.write() as session:
        audit_log.append(session, _event(action, req, held, holder, now))
