"""Distributed key generation: n new key holders make Shamir shares of an OPRF key k
that nobody ever holds (joint Feldman, ``vir.crypto.threshold``).

Each holder I of 1..n, with threshold t, runs three steps; files go between them as
with share repair (``vir.keyholder.repair``), in the same format
(``vir.keyholder.exchange``):

1. ``start``: a fresh box key pair and a random polynomial f_I of degree t-1, both kept
   in I's keys directory until finish (0600; the polynomial wrapped by the HSM when
   there is one, ``Custody.write_polynomial``), and the start file: the run id, I,
   t-of-n, the box public key and the digest of f_I's Feldman commitments
   C_{I,m} = a_{I,m}·G (``commitments_digest``), signed with I's checkpoint key. The
   first holder's start makes the run id; the others take it.
2. ``deal``: with every holder's start (checked with their verifier keys), the
   polynomial I drew at start (a retried deal deals the same one); the deal file holds
   its commitments and, for every holder J (I too), f_I(J) sealed to J's box key;
   signed.
3. ``finish``: with every holder's deal, I checks each dealer's commitments against the
   digest in that dealer's start (a mismatch names the dealer and both files), opens
   f_J(I) from each, checks it against dealer J's commitments
   (f_J(I)·G = Σ_m I^m·C_{J,m}; a mismatch names the dealer), stores
   k_I = Σ_J f_J(I) as its epoch-1 share with ``Custody.write_key`` and destroys its
   box key and its polynomial. The public record (K = Σ_J C_{J,0}, every K_J = k_J·G
   and the commitments) is the same on every honest holder: its digest, printed by
   finish, is what the operators compare.

A dealer that dealt wrongly (a finish names it) or never deals can be left out: the
operators agree, and every other holder runs finish with ``--exclude J``. Then QUAL is
every holder but the excluded: k_I = Σ_{J∈QUAL} f_J(I), K = Σ_{J∈QUAL} C_{J,0}, an
excluded dealer's deal is neither required nor read, and the public record names the
qualified and the excluded holders, so holders that excluded differently print
different digests. An excluded holder does not finish (it holds no share and must not
serve). At least t dealers must remain: with at most t-1 dishonest holders, t
qualified dealers include an honest one, whose secret polynomial keeps k unknown; a
false complaint can shrink QUAL, never hand over the key.

Why the polynomial is drawn at start: every dealer is bound to its commitments before
anyone's are seen. Were they first seen in the deals, the last dealer could read the
others' (hence Σ_{J≠I} C_{J,0}) and only then choose f_I, and with it the group key.

Every deal names the run and the digest of the n start files (``Run.digest``), so a
deal made against another set of starts (another box key, say) is refused; every
sealed value names its run, dealer and recipient. What the file carriers see is public
(box keys, commitments and their digests) or sealed. Errors and output name files and
holders, never a value; a refused step keeps its box key and polynomial for a retry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.crypto import polynomial_file, sealedbox, threshold
from vir.crypto.keys import destroy_oprf_key
from vir.crypto.signing import CheckpointSigner, init_signing_key
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.errors import ConfigurationError, CryptoError
from vir.keyholder import epochs, exchange
from vir.keyholder.custody import Custody
from vir.store import audit_log
from vir.store.db import Database
from vir.store.epochs import EpochState

VERSION = 1
DOMAIN = b"vir key generation v1\n"
RUN_ID_BYTES = 16
EPOCH = 1  # the generated key is a new deployment's first
# Hex: a run id is typed after --run, where a base64url one could start with "-".
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SIGNED = ("version", "kind", "run", "threshold", "signer", "signature")
FIELDS = {
    "start": frozenset((*_SIGNED, "holder", "box_key", "commitments_digest", "created_at")),
    "deal": frozenset((*_SIGNED, "run_digest", "dealer", "commitments", "shares")),
    "public": frozenset(
        (
            "version",
            "kind",
            "run",
            "run_digest",
            "threshold",
            "group_key",
            "public_shares",
            "commitments",
            "qualified",
            "excluded",
        )
    ),
}
FAMILY = exchange.Family("key generation", VERSION, DOMAIN, FIELDS)
_NEVER_REPLACES = "key generation makes a new holder's share, and never replaces a key"


@dataclass(frozen=True)
class Start:
    path: Path
    holder: int
    box_key: bytes
    digest: str  # SHA-256 of the signed file's canonical JSON
    committed: str  # commitments_digest of the holder's polynomial, drawn at start


@dataclass(frozen=True)
class Run:
    """One key generation: its id, t-of-n, and the n holders' starts."""

    run_id: str
    t: int
    n: int
    starts: Mapping[int, Start]

    @property
    def threshold_text(self) -> str:
        return f"{self.t}-of-{self.n}"

    @property
    def holders(self) -> tuple[int, ...]:
        return tuple(range(1, self.n + 1))

    @property
    def digest(self) -> str:
        """What every deal names: this run, with exactly these start files."""
        listing = "".join(f"{j} {self.starts[j].digest}\n" for j in self.holders)
        return hashlib.sha256(f"{self.run_id}\n{listing}".encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Deal:
    path: Path
    dealer: int
    commitments: tuple[bytes, ...]
    shares: Mapping[int, bytes] = field(repr=False)  # holder -> sealed f_dealer(holder)


@dataclass(frozen=True)
class Done:
    run_id: str
    threshold_text: str
    holder: int
    out: Path | None = None
    public_digest: str | None = None  # finish: what every holder's operator compares
    qualified: tuple[int, ...] = ()  # finish: the dealers whose polynomials make the key
    excluded: tuple[int, ...] = ()  # finish: the dealers left out (--exclude)


# -- the steps -------------------------------------------------------------------------


def box_key_path(keys_dir: Path, run_id: str) -> Path:
    """Where a holder keeps its box secret key for one run, until it finishes."""
    return keys_dir / f"dkg-{run_id}.box"


def polynomial_path(keys_dir: Path, run_id: str) -> Path:
    """Where a holder keeps the polynomial it drew at start, until it finishes (with an
    HSM, wrapped, at this path + ".wrapped")."""
    return keys_dir / f"dkg-{run_id}.polynomial"


def commitments_digest(run_id: str, dealer: int, t: int, commitments: Sequence[bytes]) -> str:
    """What a start file commits its holder to: SHA-256 over the domain, the run, the
    dealer, t and the t Feldman commitments (32 bytes each) in order."""
    head = DOMAIN + f"commitments run {run_id} dealer {dealer} threshold {t}\n".encode("ascii")
    return hashlib.sha256(head + b"".join(commitments)).hexdigest()


def start(
    custody: Custody,
    db: Database,
    origin: str,
    configured_threshold: int,
    index: int,
    holders: int,
    t: int,
    run_id: str | None,
    out: Path,
    now: dt.datetime,
    rng: Callable[[], bytes] | None = None,
) -> Done:
    """Step 1: this holder's box key, its random polynomial (both kept in its keys
    directory until finish) and its signed start file ``out``, which commits to the
    polynomial's commitments by their digest; a new run id when ``run_id`` is None.
    Makes the checkpoint key when there is none."""
    t, n = _threshold(t, holders)
    if not 1 <= index <= n:
        raise ConfigurationError(f"this holder's index must be 1..{n}, not {index}")
    exchange.same_threshold(configured_threshold, t, "run")
    if run_id is None:
        run_id = secrets.token_hex(RUN_ID_BYTES)
    elif not _RUN_ID.fullmatch(run_id):
        raise ConfigurationError(
            "--run is not a run id (32 hex digits, as the first holder's start printed)"
        )
    exchange.refuse_existing(out)
    custody.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    exchange.refuse_oprf_keys(custody.keys_dir, _NEVER_REPLACES)
    _fresh(db)
    init_signing_key(custody.keys_dir, token=custody.token)
    signer = custody.signer(origin)
    keypair = sealedbox.new_keypair()
    drawn = {} if rng is None else {"rng": rng}
    # Drawn and committed to before any other holder's commitments can be seen: the
    # last dealer cannot choose its polynomial, so the key, after seeing the others'.
    coefficients = threshold.random_polynomial(t, **drawn)
    committed = commitments_digest(run_id, index, t, threshold.commitments(coefficients))
    body = {
        "version": VERSION,
        "kind": "start",
        "run": run_id,
        "threshold": f"{t}-of-{n}",
        "holder": index,
        "box_key": b64url_encode(keypair.public),
        "commitments_digest": committed,
        "created_at": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    box = box_key_path(custody.keys_dir, run_id)
    polynomial = polynomial_path(custody.keys_dir, run_id)
    sealedbox.write_keypair(box, keypair)
    kept = False
    try:
        custody.write_polynomial(polynomial, coefficients)
        kept = True
        exchange.write_output(out, exchange.sign(FAMILY, body, signer))
        _audit(db, Action.KEY_GENERATION_STARTED, run_id, f"{t}-of-{n}", index, now)
    except BaseException:
        sealedbox.destroy_keypair(box)
        if kept:
            polynomial_file.destroy_polynomial(polynomial)
        raise
    return Done(run_id, f"{t}-of-{n}", index, out)


def deal(
    custody: Custody,
    signer: CheckpointSigner,
    db: Database,
    configured_threshold: int,
    start_files: Sequence[Path],
    verifier_keys: Mapping[int, str],
    out: Path,
    now: dt.datetime,
) -> Done:
    """Step 2: the polynomial this holder drew at start, its commitments and one value
    sealed to each holder's box key; signed. A retried deal deals the same polynomial."""
    exchange.refuse_existing(out)
    exchange.refuse_oprf_keys(custody.keys_dir, _NEVER_REPLACES)
    run, me, _keypair, _keys = read_run(custody, signer, start_files, verifier_keys)
    exchange.same_threshold(configured_threshold, run.t, "run")
    kept = polynomial_path(custody.keys_dir, run.run_id)
    coefficients = custody.read_polynomial(kept, run.t)
    commitments = threshold.commitments(coefficients)
    if commitments_digest(run.run_id, me, run.t, commitments) != run.starts[me].committed:
        raise ConfigurationError(
            f"the polynomial kept at {kept} is not the one this holder's start file "
            f"{run.starts[me].path} committed to: it was altered; start a new run"
        )
    shares = {
        str(j): b64url_encode(
            sealedbox.seal(
                _context(run, me, j) + threshold.evaluate_polynomial(coefficients, j),
                run.starts[j].box_key,
            )
        )
        for j in run.holders
    }
    body = {
        "version": VERSION,
        "kind": "deal",
        "run": run.run_id,
        "run_digest": run.digest,
        "threshold": run.threshold_text,
        "dealer": me,
        "commitments": [b64url_encode(c) for c in commitments],
        "shares": shares,
    }
    exchange.write_output(out, exchange.sign(FAMILY, body, signer))
    _audit(db, Action.KEY_GENERATION_DEALT, run.run_id, run.threshold_text, me, now)
    return Done(run.run_id, run.threshold_text, me, out)


def finish(
    custody: Custody,
    signer: CheckpointSigner,
    db: Database,
    configured_threshold: int,
    start_files: Sequence[Path],
    deal_files: Sequence[Path],
    verifier_keys: Mapping[int, str],
    out: Path | None,
    now: dt.datetime,
    exclude: Sequence[int] = (),
) -> Done:
    """Step 3: k_I = Σ_{J∈QUAL} f_J(I) over the qualified dealers (every holder but the
    ``exclude``d), every f_J(I) checked against dealer J's commitments, stored as this
    holder's epoch-1 share; the public record written to ``out`` (when given) and its
    digest returned; the box key and polynomial destroyed."""
    if out is not None:
        exchange.refuse_existing(out)
    made = _made(
        custody, signer, db, configured_threshold, start_files, deal_files, verifier_keys, exclude
    )
    run = made.run
    _store(custody, db, run, made.holder, made.secret, made.digest, made.excluded, now)
    if out is not None:
        exchange.write_output(out, made.rendered)
    sealedbox.destroy_keypair(box_key_path(custody.keys_dir, run.run_id))
    polynomial_file.destroy_polynomial(polynomial_path(custody.keys_dir, run.run_id))
    return made.done(out)


def check(
    custody: Custody,
    signer: CheckpointSigner,
    db: Database,
    configured_threshold: int,
    start_files: Sequence[Path],
    deal_files: Sequence[Path],
    verifier_keys: Mapping[int, str],
    exclude: Sequence[int] = (),
) -> Done:
    """Step 3 without its effects: everything ``finish`` checks, and the public record
    digest it would print, with nothing stored or destroyed. Every holder checks and
    the operators compare the digests before any holder finishes: a dealer named by
    one holder's check can still be excluded by all, since none has finished yet."""
    made = _made(
        custody, signer, db, configured_threshold, start_files, deal_files, verifier_keys, exclude
    )
    return made.done(None)


@dataclass(frozen=True)
class _Made:
    """What finish computes before it stores anything."""

    run: Run
    holder: int
    qualified: tuple[int, ...]
    excluded: tuple[int, ...]
    secret: bytes
    rendered: bytes  # the public record
    digest: str

    def done(self, out: Path | None) -> Done:
        run = self.run
        return Done(
            run.run_id,
            run.threshold_text,
            self.holder,
            out,
            self.digest,
            self.qualified,
            self.excluded,
        )


def _made(
    custody: Custody,
    signer: CheckpointSigner,
    db: Database,
    configured_threshold: int,
    start_files: Sequence[Path],
    deal_files: Sequence[Path],
    verifier_keys: Mapping[int, str],
    exclude: Sequence[int],
) -> _Made:
    exchange.refuse_oprf_keys(custody.keys_dir, _NEVER_REPLACES)
    _fresh(db)
    run, me, keypair, keys = read_run(custody, signer, start_files, verifier_keys)
    exchange.same_threshold(configured_threshold, run.t, "run")
    qualified, excluded = _qualified(run, me, exclude)
    deals = read_deals(run, deal_files, keys, excluded)
    received = []
    for dealer in qualified:
        found = deals[dealer]
        value = exchange.open_scalar(
            found.shares[me],
            keypair,
            _context(run, dealer, me),
            f"the value for holder {me} in {found.path}",
            run="run",
            mixed_up="run, dealer or holder",
        )
        if not threshold.check_dealt(value, found.commitments, me):
            raise ConfigurationError(
                f"{found.path}: the value dealer {dealer} sealed to holder {me} does not "
                f"match dealer {dealer}'s commitments: dealer {dealer} dealt wrongly, or its "
                "file was altered before it was signed. Nothing was stored: "
                + _exclude_advice(dealer)
            )
        received.append(value)
    secret = threshold.add_scalars(received)
    record = public_record(run, deals, qualified)
    try:
        share = threshold.Share(me, secret)
        matches = threshold.public_share(share.secret) == _public_share(record, me)
    except CryptoError:
        matches = False
    if not matches:  # a zero sum, with probability about 2^-252: only a new run helps
        raise ConfigurationError(
            "this holder's share is unusable; nothing was stored: start a new run"
        )
    rendered = exchange.render(record)
    digest = hashlib.sha256(rendered).hexdigest()
    return _Made(run, me, qualified, excluded, secret, rendered, digest)


def _qualified(
    run: Run, me: int, exclude: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The qualified dealers and the excluded ones, both sorted; refused (naming holders)
    when this holder is excluded, an index is not a holder of the run, or fewer than t
    dealers remain."""
    excluded = tuple(sorted(set(exclude)))
    outside = [j for j in excluded if j not in run.holders]
    if outside:
        raise ConfigurationError(
            f"--exclude {outside[0]}: not a holder of run {run.run_id} (holders 1..{run.n})"
        )
    if me in excluded:
        raise ConfigurationError(
            f"--exclude {me} is this holder: an excluded holder does not finish; it holds "
            "no share of the key the others make, and must not serve"
        )
    qualified = tuple(j for j in run.holders if j not in excluded)
    if len(qualified) < run.t:
        raise ConfigurationError(
            f"excluding holder(s) {exchange.names(excluded)} leaves {len(qualified)} "
            f"qualified dealer(s), fewer than t = {run.t}: with at most t-1 dishonest "
            "holders, t qualified dealers guarantee one honest contribution to the key, so "
            "a false complaint can shrink the dealers but never hand over the key. Nothing "
            "was stored: start a new run"
        )
    return qualified, excluded


def _exclude_advice(*dealers: int) -> str:
    options = " ".join(f"--exclude {j}" for j in dealers)
    return (
        f"agree with the other operators to run finish with {options} on every other "
        "holder, or start again (a new run)"
    )


# -- reading ---------------------------------------------------------------------------


def read_run(
    custody: Custody,
    signer: CheckpointSigner,
    paths: Sequence[Path],
    verifier_keys: Mapping[int, str],
) -> tuple[Run, int, sealedbox.BoxKeyPair, dict[int, tuple[str, bytes]]]:
    """The run of the start files, every one signed by the holder it names; this holder's
    index (the start with its box key), its box key pair and every holder's verifier key."""
    if not paths:
        raise ConfigurationError("no start files: give every holder's with --starts")
    docs = [(path, exchange.load(FAMILY, path, "start")) for path in paths]
    first_path, first = docs[0]
    run_id, t, n = _run_fields(first, first_path)
    starts: dict[int, Start] = {}
    signed: dict[int, dict[str, Any]] = {}
    for path, doc in docs:
        if doc["run"] != run_id:
            raise exchange.bad(path, f"belongs to another run, not {run_id} (of {first_path})")
        if doc["threshold"] != f"{t}-of-{n}":
            raise exchange.bad(
                path, f"names threshold {_shown(doc['threshold'])}, the run's is {t}-of-{n}"
            )
        holder = doc["holder"]
        if type(holder) is not int or not 1 <= holder <= n:
            raise exchange.bad(path, f"its holder is not a holder index 1..{n}")
        if holder in starts:
            raise exchange.bad(path, f"a second start file from holder {holder}")
        box_key = exchange.bytes_field(doc["box_key"], sealedbox.PUBLIC_KEY_BYTES, "box_key", path)
        committed = doc["commitments_digest"]
        if not isinstance(committed, str) or not _DIGEST.fullmatch(committed):
            raise exchange.bad(path, "commitments_digest is not 64 hex digits")
        created = doc["created_at"]
        if not isinstance(created, str) or len(created) > 40:
            raise exchange.bad(path, "created_at is not a time")
        digest = hashlib.sha256(exchange.canonical(doc)).hexdigest()
        starts[holder] = Start(path, holder, box_key, digest, committed)
        signed[holder] = doc
    missing = [j for j in range(1, n + 1) if j not in starts]
    if missing:
        raise ConfigurationError(f"no start file from holder(s) {exchange.names(missing)}")
    run = Run(run_id, t, n, starts)
    keypair = _own_box_key(custody, run_id)
    mine = [j for j in run.holders if starts[j].box_key == keypair.public]
    if len(mine) != 1:
        raise ConfigurationError(
            f"no start file of run {run_id} holds this key holder's box key: the files are "
            "of another run of start, or this is another key holder"
        )
    (me,) = mine
    keys = _verifiers(run, verifier_keys, me, signer)
    for holder, doc in signed.items():
        if not exchange.signed_by(FAMILY, doc, starts[holder].path, keys[holder]):
            raise exchange.bad(starts[holder].path, _not_signed(holder))
    return run, me, keypair, keys


def read_deals(
    run: Run,
    paths: Sequence[Path],
    keys: Mapping[int, tuple[str, bytes]],
    excluded: Sequence[int] = (),
) -> dict[int, Deal]:
    """Every qualified dealer's deal, checked; an ``excluded`` dealer's is not required,
    and ignored when given."""
    found: dict[int, Deal] = {}
    for path in paths:
        doc = exchange.load(FAMILY, path, "deal")
        if doc["run"] != run.run_id:
            raise exchange.bad(path, f"belongs to another run, not {run.run_id}")
        dealer = doc["dealer"]
        if type(dealer) is not int or dealer not in run.holders:
            raise exchange.bad(path, f"its dealer is not a holder index 1..{run.n}")
        if dealer in excluded:
            continue
        if doc["run_digest"] != run.digest or doc["threshold"] != run.threshold_text:
            raise exchange.bad(
                path, f"was made with other start files than these of run {run.run_id}"
            )
        if not exchange.signed_by(FAMILY, doc, path, keys[dealer]):
            raise exchange.bad(path, _not_signed(dealer))
        values = doc["commitments"]
        if not isinstance(values, list) or len(values) != run.t:
            raise exchange.bad(path, f"it has not {run.t} commitments")
        commitments = tuple(
            exchange.bytes_field(v, 32, f"commitment {m}", path) for m, v in enumerate(values)
        )
        start_file = run.starts[dealer].path
        if commitments_digest(run.run_id, dealer, run.t, commitments) != (
            run.starts[dealer].committed
        ):
            raise exchange.bad(
                path,
                f"dealer {dealer}'s commitments are not those its start file {start_file} "
                f"committed to: dealer {dealer} changed its polynomial after its start (or "
                "its file was altered before it was signed). Nothing was stored: "
                + _exclude_advice(dealer),
            )
        shares = doc["shares"]
        if not isinstance(shares, dict) or sorted(shares) != sorted(map(str, run.holders)):
            raise exchange.bad(path, "its sealed values are not one per holder")
        sealed = {
            int(j): exchange.sealed_field(v, f"value for holder {j}", path)
            for j, v in shares.items()
        }
        if dealer in found:
            raise exchange.bad(path, f"a second deal file from holder {dealer}")
        found[dealer] = Deal(path, dealer, commitments, sealed)
    missing = [j for j in run.holders if j not in found and j not in excluded]
    if missing:
        shown = exchange.names(missing)
        raise ConfigurationError(
            f"no deal file from holder(s) {shown}: give every holder's deal with --deals; "
            f"if holder(s) {shown} never deal, " + _exclude_advice(*missing)
        )
    return found


def public_record(run: Run, deals: Mapping[int, Deal], qualified: Sequence[int]) -> dict[str, Any]:
    """What every holder's finish computes alike from the same deals and the same
    exclusions: the group key K = Σ_{J∈QUAL} C_{J,0}, the public share K_J of every
    holder of the deployment (the qualified ones), the qualified dealers' commitments,
    and which holders are qualified and excluded. No secret is in it."""
    dealt = [deals[j].commitments for j in qualified]
    try:
        group = threshold.group_key(dealt)
        publics = {str(j): b64url_encode(threshold.dealt_public_share(dealt, j)) for j in qualified}
    except CryptoError:
        raise ConfigurationError(
            "the dealers' commitments add up to no usable key: a dealer's file is malformed; "
            "nothing was stored: start a new run"
        ) from None
    return {
        "version": VERSION,
        "kind": "public",
        "run": run.run_id,
        "run_digest": run.digest,
        "threshold": run.threshold_text,
        "group_key": b64url_encode(group),
        "public_shares": publics,
        "commitments": {
            str(j): [b64url_encode(c) for c in deals[j].commitments] for j in qualified
        },
        "qualified": list(qualified),
        "excluded": [j for j in run.holders if j not in qualified],
    }


# -- checks and helpers ----------------------------------------------------------------


def _threshold(t: int, n: int) -> tuple[int, int]:
    if n < 2:
        raise ConfigurationError(
            "key generation is for a threshold deployment (--holders 2 or more); a single "
            "key holder makes its key with: vir keyholder init"
        )
    return exchange.parse_threshold(f"{t}-of-{n}")


def _run_fields(doc: Mapping[str, Any], path: Path) -> tuple[str, int, int]:
    run_id, text = doc["run"], doc["threshold"]
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise exchange.bad(path, "run is not 32 hex digits")
    if not isinstance(text, str) or len(text) > 10:
        raise exchange.bad(path, "threshold is not t-of-n")
    t, n = exchange.parse_threshold(text)
    if n < 2:
        raise exchange.bad(path, "key generation is for 2 or more holders")
    return run_id, t, n


def _shown(value: object) -> str:
    return value if isinstance(value, str) and len(value) <= 10 else "(malformed)"


def _fresh(db: Database) -> None:
    """A holder that never served: its database lists epoch 1, current, alone."""
    listing = [(e.epoch, e.state) for e in epochs.listing(db)]
    if listing != [(EPOCH, EpochState.CURRENT)]:
        raise ConfigurationError(
            "this key holder's database has rotated epochs: key generation is for a new "
            "key holder, with a new database (vir keyholder db upgrade)"
        )


def _verifiers(
    run: Run, given: Mapping[int, str], me: int, signer: CheckpointSigner
) -> dict[int, tuple[str, bytes]]:
    return exchange.verifiers(
        run.holders, given, me, signer, role="holder", outside="a holder of this run"
    )


def _not_signed(holder: int) -> str:
    return (
        f"not signed by holder {holder}'s key (the --verifier-key given for {holder}): "
        "altered, or from another key holder"
    )


def _own_box_key(custody: Custody, run_id: str) -> sealedbox.BoxKeyPair:
    return sealedbox.read_keypair(box_key_path(custody.keys_dir, run_id))


def _context(run: Run, dealer: int, recipient: int) -> bytes:
    """What a sealed value is prefixed with: opened elsewhere, it is refused."""
    return DOMAIN + (f"value run {run.run_id} {run.digest} from {dealer} to {recipient}\n").encode(
        "ascii"
    )


def _public_share(record: Mapping[str, Any], holder: int) -> bytes:
    value = b64url_decode(record["public_shares"][str(holder)])
    if value is None:  # made by public_record just now
        raise CryptoError()
    return value


def _store(
    custody: Custody,
    db: Database,
    run: Run,
    me: int,
    secret: bytes,
    digest: str,
    excluded: Sequence[int],
    now: dt.datetime,
) -> None:
    """The share and its audit entry, in one transaction: a share written here is
    destroyed again when it fails."""
    exchange.refuse_oprf_keys(custody.keys_dir, _NEVER_REPLACES)
    written = False
    try:
        with db.write(exclusive=True) as session:
            custody.write_key(custody.keys_dir, EPOCH, secret, share_index=me)
            written = True
            audit_log.append(
                session,
                _event(
                    Action.KEY_GENERATION_FINISHED,
                    run.run_id,
                    run.threshold_text,
                    me,
                    now,
                    public=digest[:16],
                    excluded=exchange.names(excluded),
                ),
            )
    except BaseException:
        if written:
            destroy_oprf_key(custody.keys_dir, EPOCH)
        raise


def _event(
    action: Action,
    run_id: str,
    threshold_text: str,
    holder: int,
    now: dt.datetime,
    **more: str,
) -> AuditEvent:
    return audit_log.new_event(
        action,
        Outcome.SUCCESS,
        now,
        actor="admin",
        objects={"run": run_id, "holder": holder, "threshold": threshold_text, **more},
    )


def _audit(
    db: Database, action: Action, run_id: str, threshold_text: str, holder: int, now: dt.datetime
) -> None:
    with db.write() as session:
        audit_log.append(session, _event(action, run_id, threshold_text, holder, now))
