"""``vir keyholder ...``: run and administer the key holder (its own settings,
``VIR_KEYHOLDER_*``; its own database, keys and audit log).

vir keyholder serve            the key holder's HTTPS server with mutual TLS
vir keyholder init             create its database, epoch-1 OPRF key and checkpoint key
vir keyholder db upgrade       apply its database migrations
vir keyholder rotate           make epoch e+1 (k' = δ·k) and write the index's rekey token
vir keyholder activate         serve the rotated epoch (after the index took the token)
vir keyholder token            write the incoming epoch's rekey token again
vir keyholder retire           destroy the keys of replaced epochs past their grace period
vir keyholder epochs           the epochs and their states
vir keyholder key              the verifier key of its checkpoints and rekey tokens
vir keyholder hsm-import       move the key files into the HSM (OPRF keys wrapped, the
                               checkpoint key imported: the same verifier key)
vir keyholder dkg ...          generate a t-of-n deployment's shares, no one ever holding
                               the key (start, deal, finish on every new holder)
vir keyholder repair ...       give a lost threshold holder its share back from t others
vir keyholder org ...          its own register of who may pseudonymise (add, cert, list,
                               revoke, crl: as vir org ...; the index's is not read)
vir keyholder oidc OIN ...     whose access tokens speak for an organisation (the portal)
vir keyholder audit ...        verify, checkpoint, export its audit log
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vir.cli_databases import DATABASE_SETTING, open_database
from vir.domain.clock import utc_now
from vir.domain.errors import ConfigurationError, InputError

if TYPE_CHECKING:
    from vir.audit.chain import AuditEvent
    from vir.crypto.signing import CheckpointSigner
    from vir.keyholder.custody import Custody
    from vir.keyholder.epochs import Rotation
    from vir.keyholder.settings import KeyholderSettings
    from vir.services.transparency import TransparencyLog
    from vir.settings import Settings
    from vir.store.db import Database

Command = Callable[["Settings", argparse.Namespace], int]


def keyholder_settings() -> KeyholderSettings:
    from vir.keyholder.settings import KeyholderSettings

    return KeyholderSettings()


def as_index_settings(keyholder: KeyholderSettings) -> Settings:
    """The key holder's database, keys and log in the shape the shared commands take
    (``vir org``, ``vir audit verify``, ``vir db upgrade`` run on its database)."""
    from vir.settings import Settings

    return Settings(
        database_url=keyholder.database_url,
        keys_dir=keyholder.keys_dir,
        audit_origin=keyholder.audit_origin,
        client_ca=keyholder.client_ca,
        client_crl=keyholder.client_crl,
    )


# The custodies a command opened, closed when it is done (``close_custodies``): an HSM
# session must not outlive a command run in-process (a test, a job runner), where it
# would keep the module from being initialised again to find a token made since.
_OPENED: list[Custody] = []


def _custody(settings: KeyholderSettings) -> Custody:
    from vir.keyholder.custody import Custody

    custody = Custody.open(settings)
    _OPENED.append(custody)
    return custody


def close_custodies() -> None:
    while _OPENED:
        _OPENED.pop().close()


def _database(settings: KeyholderSettings) -> Database:
    """The key holder's database, its schema current; closed when the command is done."""
    return open_database(settings.database_url, "VIR_KEYHOLDER_DATABASE_URL")


def cmd_serve(_settings: Settings, _args: argparse.Namespace) -> int:
    from vir.keyholder.serving import hold_while_serving
    from vir.server.run import serve_keyholder

    settings = keyholder_settings()
    hold_while_serving(settings.keys_dir)  # hsm-import refuses meanwhile (vir.keyholder.serving)
    serving = (
        f"vir: key holder serving https://{settings.host}:{settings.port} (mutual TLS; "
        f"client CA {settings.client_ca})"
    )
    return serve_keyholder(settings, lambda: print(serving, flush=True))


def cmd_init(_settings: Settings, _args: argparse.Namespace) -> int:
    from vir.store.migrate import upgrade

    settings = keyholder_settings()
    if settings.threshold > 1 and not _has_oprf_key(settings.keys_dir):
        # init makes a whole key of its own, which serve then refuses: a holder of a t-of-n
        # deployment needs its share of the one key that every holder shares.
        raise ConfigurationError(
            f"VIR_KEYHOLDER_THRESHOLD is {settings.threshold}, and init makes a whole key, "
            "not a share of the deployment's key. The holders of a new t-of-n deployment "
            "make their shares together, without anyone holding the key, with vir keyholder "
            "dkg start, deal and finish; a lost holder of a running deployment gets its "
            "share back with vir keyholder repair "
            '(docs/operations.md, "The key holder"). Nothing was created'
        )
    _private_folder_of(settings.database_url)
    upgrade(settings.database_url, setting="VIR_KEYHOLDER_DATABASE_URL")
    for what, path, created in _custody(settings).init():
        print(f"vir: {'created' if created else 'kept existing'} {what} {path}")
    return 0


def _has_oprf_key(keys_dir: Path) -> bool:
    """Whether ``keys_dir`` holds an OPRF key or share of any epoch (a file or wrapped)."""
    return keys_dir.is_dir() and any(keys_dir.glob("oprf-epoch-*.key*"))


def _private_folder_of(database_url: str) -> None:
    from vir.services.devsetup import private_folder

    if database_url.startswith("sqlite:///"):
        private_folder(Path(database_url.removeprefix("sqlite:///")).parent)


def cmd_rotate(_settings: Settings, args: argparse.Namespace) -> int:
    """Make the next epoch and write the signed rekey token for the index."""
    from vir.crypto import rekey_token
    from vir.keyholder import epochs

    settings = keyholder_settings()
    custody = _custody(settings)
    signer = custody.signer(settings.audit_origin)
    out = _token_out(Path(args.token_out))
    delta = None
    if args.from_token:
        # Another holder of a threshold deployment: the same δ as the first holder.
        token = rekey_token.read_token(
            rekey_token.token_file(Path(args.from_token)), args.verifier_key
        )
        delta = token.delta
    now = utc_now()
    done = epochs.rotate(
        _database(settings),
        settings.keys_dir,
        now,
        delta=delta,
        write=custody.write_key,
        load=custody.load_keyring,
    )
    print(f"vir: key holder made epoch {done.to_epoch} (incoming; epoch {done.from_epoch} served)")
    _write_token(signer, done, out, now)
    return 0


def cmd_token(_settings: Settings, args: argparse.Namespace) -> int:
    """Write the incoming epoch's rekey token again (the first lost, or never written)."""
    from vir.keyholder import epochs

    settings = keyholder_settings()
    custody = _custody(settings)
    signer = custody.signer(settings.audit_origin)
    out = _token_out(Path(args.out))
    rotation = epochs.incoming(_database(settings), settings.keys_dir, load=custody.load_keyring)
    print(f"vir: epoch {rotation.to_epoch} is incoming (epoch {rotation.from_epoch} served)")
    _write_token(signer, rotation, out, utc_now())
    return 0


def _token_out(out: Path) -> Path:
    """Where a rekey token goes, checked before anything changes: a new file in an
    existing folder."""
    from vir.keyholder import exchange

    exchange.refuse_existing(out)
    if not out.parent.is_dir():
        raise ConfigurationError(f"{out.parent} is not a folder: choose another --out")
    return out


def _write_token(signer: CheckpointSigner, rotation: Rotation, out: Path, now: dt.datetime) -> None:
    from vir.crypto import rekey_token
    from vir.keyholder import exchange

    data = rekey_token.make_token(
        signer.sign_bytes,
        signer.verifier_key(),
        rotation.from_epoch,
        rotation.to_epoch,
        rotation.delta,
        now,
    )
    try:
        exchange.write_output(out, data)
    except OSError as error:
        raise ConfigurationError(
            f"the rekey token could not be written to {out} ({type(error).__name__}: "
            f"{error.strerror}); epoch {rotation.to_epoch} is made: write its token with "
            "vir keyholder token --out FILE"
        ) from None
    print(f"vir: rekey token for the index written to {out}: vir keys rekey --token {out}")
    print("vir: when the index has taken it, run: vir keyholder activate")


def cmd_activate(_settings: Settings, _args: argparse.Namespace) -> int:
    from vir.keyholder import epochs

    settings = keyholder_settings()
    grace = dt.timedelta(days=settings.epoch_grace_days)
    epoch = epochs.activate(_database(settings), utc_now(), grace)
    print(
        f"vir: key holder now serves epoch {epoch}; the previous key is destroyed after "
        f"{settings.epoch_grace_days} day(s) (vir keyholder retire)"
    )
    return 0


def cmd_retire(_settings: Settings, args: argparse.Namespace) -> int:
    from vir.keyholder import epochs

    settings = keyholder_settings()
    retired = epochs.retire(_database(settings), settings.keys_dir, utc_now(), force=args.now)
    if retired:
        print("vir: retired epoch(s) " + ", ".join(map(str, retired)) + "; their keys destroyed")
    else:
        print("vir: no epoch is past its grace period")
    return 0


def cmd_epochs(_settings: Settings, _args: argparse.Namespace) -> int:
    from vir.keyholder import epochs
    from vir.store.epochs import EpochState

    for e in epochs.listing(_database(keyholder_settings())):
        # A retired epoch's retire_after is when its key was destroyed.
        when = "retired" if e.state == EpochState.RETIRED else "retire after"
        after = f"  {when} {e.retire_after:%Y-%m-%d %H:%M}" if e.retire_after else ""
        print(f"{e.epoch:>4}  {e.state:<9}{after}")
    return 0


def cmd_key(_settings: Settings, _args: argparse.Namespace) -> int:
    settings = keyholder_settings()
    print(_custody(settings).signer(settings.audit_origin).verifier_key())
    return 0


def cmd_hsm_import(_settings: Settings, _args: argparse.Namespace) -> int:
    from vir.crypto.keys import import_to_token
    from vir.crypto.signing import import_signing_key
    from vir.keyholder.serving import refuse_while_serving

    settings = keyholder_settings()
    refuse_while_serving(settings.keys_dir, "vir keyholder hsm-import")
    custody = _custody(settings)
    if custody.token is None:
        raise InputError(
            "VIR_PKCS11_MODULE", "set VIR_PKCS11_MODULE, VIR_PKCS11_TOKEN, VIR_PKCS11_PIN_FILE"
        )
    moved = import_to_token(settings.keys_dir, custody.token, settings.threshold)
    print(f"vir: {len(moved)} key file(s) now wrapped by the HSM; the plain files are destroyed")
    checkpoint = import_signing_key(settings.keys_dir, custody.token, custody.folder)
    if checkpoint is not None:
        state = "moved into" if checkpoint else "was already in"
        print(
            f"vir: the checkpoint key {state} the HSM and signs there; its file is destroyed "
            "(the verifier key is unchanged: vir keyholder key)"
        )
    return 0


def cmd_repair(_settings: Settings, args: argparse.Namespace) -> int:
    """``vir keyholder repair STEP``: give a lost holder its share back from t helpers
    (vir.keyholder.repair): request (new holder), join, deal, sum (each helper), finish
    (new holder). Each step prints what it did; never a share, part or key."""
    from vir.keyholder import repair

    settings = keyholder_settings()
    custody = _custody(settings)
    now = utc_now()
    step = args.repair_step
    if step == "request":
        _database(settings)  # prepared first: vir keyholder db upgrade
        helpers = _indices(args.helpers)
        done = repair.request(
            custody, settings.threshold, args.index, helpers, args.threshold, Path(args.out), now
        )
        print(
            f"vir: repair request {done.request.request_id} for holder {done.request.index} "
            f"from helpers {args.helpers} written to {done.out}"
        )
        print(
            f"vir: its fingerprint is {done.request.fingerprint}: each helper's operator "
            "confirms it with you before running: vir keyholder repair join"
        )
        return 0
    verifiers = repair.parse_verifier_keys(args.verifier_key or [])
    request_file = Path(args.request)
    joins = [Path(f) for f in args.joins or []]
    db = _database(settings)
    if step == "finish":
        sums = [Path(f) for f in args.sums]
        done = repair.finish(
            custody, db, settings.threshold, request_file, joins, sums, verifiers, now
        )
        print(
            f"vir: holder {done.request.index} stored its repaired share of epoch(s) "
            f"{_epochs_text(done.epochs)}, checked against the helpers' public shares"
        )
        print("vir: its box key is destroyed; start it with: vir keyholder serve")
        return 0
    signer = custody.signer(settings.audit_origin)
    out = Path(args.out)
    if step == "join":
        done = repair.join(custody, signer, db, settings.threshold, request_file, out, now)
        print(
            f"vir: holder {done.holder} joined repair {done.request.request_id} (fingerprint "
            f"{done.request.fingerprint}) for epoch(s) {_epochs_text(done.epochs)}: {out}"
        )
    elif step == "deal":
        done = repair.deal(custody, signer, db, request_file, joins, verifiers, out, now)
        print(
            f"vir: holder {done.holder} sealed its parts of epoch(s) "
            f"{_epochs_text(done.epochs)} to the helpers: {out}"
        )
    else:
        deals = [Path(f) for f in args.deals]
        done = repair.add_parts(
            custody, signer, db, request_file, joins, deals, verifiers, out, now
        )
        print(
            f"vir: holder {done.holder} sealed its sums of epoch(s) {_epochs_text(done.epochs)} "
            f"to holder {done.request.index}: {out}; its box key is destroyed"
        )
    return 0


def cmd_dkg(_settings: Settings, args: argparse.Namespace) -> int:
    """``vir keyholder dkg STEP``: make this new holder's share of a t-of-n key that
    nobody holds (vir.keyholder.dkg): start, deal, check, finish, on every holder. Each step
    prints what it did; never a share, value or key."""
    from vir.keyholder import dkg, exchange

    settings = keyholder_settings()
    custody = _custody(settings)
    db = _database(settings)  # prepared first: vir keyholder db upgrade
    now = utc_now()
    step = args.dkg_step
    if step == "start":
        done = dkg.start(
            custody,
            db,
            settings.audit_origin,
            settings.threshold,
            args.index,
            args.holders,
            args.threshold,
            args.run_id,
            Path(args.out),
            now,
        )
        print(
            f"vir: holder {done.holder} started key generation run {done.run_id} "
            f"({done.threshold_text}): {done.out}"
        )
        if args.run_id is None:
            print(f"vir: the other holders start the same run with: --run {done.run_id}")
        print(
            "vir: give every holder's operator this start file and this holder's verifier "
            "key (vir keyholder key)"
        )
        return 0
    signer = custody.signer(settings.audit_origin)
    verifiers = exchange.parse_verifier_keys(args.verifier_key or [])
    starts = [Path(f) for f in args.starts]
    if step == "deal":
        done = dkg.deal(
            custody, signer, db, settings.threshold, starts, verifiers, Path(args.out), now
        )
        print(
            f"vir: holder {done.holder} dealt its part of run {done.run_id}, one value sealed "
            f"to each holder: {done.out}"
        )
        return 0
    deals = [Path(f) for f in args.deals]
    common = (custody, signer, db, settings.threshold, starts, deals, verifiers)
    if step == "check":
        checked = dkg.check(*common, exclude=args.exclude or [])
        print(
            f"vir: holder {checked.holder} checked run {checked.run_id} "
            f"({checked.threshold_text}): every value from dealers "
            f"{exchange.names(checked.qualified)} matches its dealer's commitments; nothing "
            "was stored"
        )
        print(
            f"vir: public record digest {checked.public_digest}: once every holder's check "
            "printed the same, each runs finish with the same files"
            + (
                f" and --exclude {' --exclude '.join(map(str, checked.excluded))}"
                if checked.excluded
                else ""
            )
        )
        return 0
    out = Path(args.out) if args.out else None
    done = dkg.finish(*common, out, now, exclude=args.exclude or [])
    qualified = exchange.names(done.qualified)
    print(
        f"vir: holder {done.holder} stored its share of run {done.run_id} "
        f"({done.threshold_text}) as epoch 1, from dealers {qualified}, every value checked "
        "against its dealer's commitments; its box key and polynomial are destroyed"
    )
    print(f"vir: the deployment's key holders are {qualified} (share indices)")
    if done.excluded:
        excluded = exchange.names(done.excluded)
        print(
            f"vir: holder(s) {excluded} excluded: they hold no share of this key and must not "
            f"serve; give the clients and the index (VIR_USAGE_KEYHOLDERS) the URLs of "
            f"holders {qualified} only, and take the index's VIR_KEYHOLDER_VERIFIER_KEY "
            "from one of them"
        )
    if out is not None:
        print(f"vir: the public record (group key, every holder's public share) is in {out}")
    print(
        f"vir: public record digest {done.public_digest}: every holder's operator must see "
        "the same before any holder serves"
    )
    return 0


def _dkg_parsers(holder: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``vir keyholder dkg start|deal|check|finish`` (docs/operations.md)."""
    steps = holder.add_parser(
        "dkg", help="make a t-of-n deployment's shares without anyone holding the key"
    ).add_subparsers(dest="dkg_step", required=True)
    start = steps.add_parser(
        "start", help="each new holder: its box key and polynomial for the run, committed to"
    )
    start.add_argument("--index", type=int, required=True, help="this holder's index, 1..N")
    start.add_argument("--holders", type=int, required=True, help="N, the number of holders")
    start.add_argument("--threshold", type=int, required=True, help="T, holders needed")
    start.add_argument("--run", dest="run_id", help="the run id the first holder's start printed")
    start.add_argument("--out", required=True)
    deal = steps.add_parser("deal", help="each holder: commitments and sealed values")
    check = steps.add_parser(
        "check", help="each holder: check the values and print the digest, storing nothing"
    )
    finish = steps.add_parser("finish", help="each holder: check the values, store the share")
    for parser in (deal, check, finish):
        parser.add_argument("--starts", nargs="+", required=True, help="every holder's start")
        parser.add_argument(
            "--verifier-key",
            action="append",
            help="a holder's verifier key as INDEX=KEY (its `vir keyholder key`); repeat",
        )
    deal.add_argument("--out", required=True)
    for parser in (check, finish):
        parser.add_argument("--deals", nargs="+", required=True, help="every holder's deal")
        parser.add_argument(
            "--exclude",
            type=int,
            action="append",
            metavar="J",
            help="leave out dealer J (as agreed with every other holder's operator); repeat",
        )
    finish.add_argument("--out", help="where to write the public record")
    for parser in (start, deal, check, finish):
        parser.set_defaults(run=cmd_dkg)


def _indices(text: str) -> list[int]:
    """``1,3`` → [1, 3]."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError("helpers", "give the helpers' share indices as 1,3") from None


def _epochs_text(epochs: tuple[int, ...]) -> str:
    return ", ".join(map(str, epochs))


def _repair_parsers(holder: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``vir keyholder repair request|join|deal|sum|finish`` (docs/operations.md)."""
    steps = holder.add_parser(
        "repair", help="give a lost threshold key holder its share back from t helpers"
    ).add_subparsers(dest="repair_step", required=True)
    verifier_help = "a helper's verifier key as INDEX=KEY (its `vir keyholder key`); repeat"
    request = steps.add_parser("request", help="new holder: start a repair")
    request.add_argument("--index", type=int, required=True, help="the lost holder's index")
    request.add_argument("--helpers", required=True, help="t helper indices, such as 1,3")
    request.add_argument("--threshold", required=True, help="t-of-n, such as 2-of-3")
    request.add_argument("--out", required=True)
    join = steps.add_parser("join", help="each helper: box key and public shares")
    join.add_argument("--request", required=True)
    join.add_argument("--out", required=True)
    join.set_defaults(joins=None, verifier_key=None)
    deal = steps.add_parser("deal", help="each helper: sealed parts of its term")
    add_sum = steps.add_parser("sum", help="each helper: the sum of its parts, sealed")
    finish = steps.add_parser("finish", help="new holder: check and store the share")
    for parser in (deal, add_sum, finish):
        parser.add_argument("--request", required=True)
        parser.add_argument("--joins", nargs="+", required=True, help="every helper's join")
        parser.add_argument("--verifier-key", action="append", help=verifier_help)
    deal.add_argument("--out", required=True)
    add_sum.add_argument("--deals", nargs="+", required=True, help="every helper's deal")
    add_sum.add_argument("--out", required=True)
    finish.add_argument("--sums", nargs="+", required=True, help="every helper's sum")
    for parser in (request, join, deal, add_sum, finish):
        parser.set_defaults(run=cmd_repair)


def _transparency() -> TransparencyLog:
    """The key holder's audit log, signed with its checkpoint key (a file or the HSM)."""
    from vir.services.transparency import TransparencyLog

    settings = keyholder_settings()
    signer = _custody(settings).signer(settings.audit_origin)
    return TransparencyLog(_database(settings), signer, utc_now)


def cmd_audit_checkpoint(_settings: Settings, args: argparse.Namespace) -> int:
    from vir.cli_progress import progress_for

    with progress_for(args) as progress:
        signed = _transparency().checkpoint(full=True, progress=progress)
    sys.stdout.write(signed.note.decode("utf-8"))
    return 0


def cmd_audit_export(_settings: Settings, args: argparse.Namespace) -> int:
    """Its audit log with a signed checkpoint, portable: ``vir keyholder audit verify FILE``
    (or ``vir audit verify FILE``) checks it with the key holder's verifier key. Written
    by ``vir audit export``'s writer (``args.write_export``)."""
    code: int = args.write_export(_transparency(), args)
    return code


def cmd_oidc(_settings: Settings, args: argparse.Namespace) -> int:
    """Set (or ``--remove``) the OpenID provider whose access tokens may ask for
    evaluations on an organisation's account: its people, in the portal's page."""
    from urllib.parse import urlsplit

    from vir.domain.organisations import Oin
    from vir.keyholder import trust
    from vir.store import audit_log

    settings = keyholder_settings()
    oin = str(Oin(args.oin))
    db = _database(settings)
    now = utc_now()
    if args.remove:
        with db.write() as session:
            removed = trust.remove(session, oin)
            audit_log.append(session, _oidc_event(now, oin, None))
        print(f"vir: key holder access tokens {'removed' if removed else 'were not set'} for {oin}")
        return 0
    if not args.issuer:
        raise InputError("issuer", "give --issuer (or --remove)")
    found = trust.OidcTrust(
        oin=oin,
        issuer=args.issuer,
        audience=args.audience or settings.oidc_audience,
        acr=args.acr,
        organisation_claim=args.organisation_claim,
        client_ids=tuple(args.client_id or ()),
    )
    with db.write() as session:
        trust.save(session, found, now)
        audit_log.append(session, _oidc_event(now, oin, urlsplit(found.issuer).hostname or ""))
    print(
        f"vir: key holder accepts access tokens for {oin} from {found.issuer} "
        f"(audience {found.audience}"
        + (f", acr {found.acr}" if found.acr else "")
        + (f", {found.organisation_claim} = the OIN" if found.organisation_claim else "")
        + (f", client {' or '.join(found.client_ids)}" if found.client_ids else ", any client")
        + ")"
    )
    return 0


def _oidc_event(now: dt.datetime, oin: str, issuer_host: str | None) -> AuditEvent:
    """The audit entry of ``vir keyholder oidc``: the issuer's host when set, nothing
    more; ``issuer_host`` None: removed."""
    from vir.audit.actions import Action
    from vir.audit.chain import Outcome
    from vir.store import audit_log

    objects = (
        {"state": "removed"} if issuer_host is None else {"state": "set", "issuer": issuer_host}
    )
    return audit_log.new_event(
        Action.ADMIN_OIDC_CHANGED,
        Outcome.SUCCESS,
        now,
        organisation=oin,
        actor="admin",
        objects=objects,
    )


def cmd_shared(_settings: Settings, args: argparse.Namespace) -> int:
    """A shared command (``vir org ...``, ``vir audit verify``, ``vir db upgrade``) on the
    key holder's database."""
    named = DATABASE_SETTING.set("VIR_KEYHOLDER_DATABASE_URL")
    try:
        code: int = args.shared(as_index_settings(keyholder_settings()), args)
    finally:
        DATABASE_SETTING.reset(named)
    return code


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    *,
    org_parsers: Callable[..., None],
    db_upgrade: Command,
    audit_verify: Command,
    audit_export: Callable[[TransparencyLog, argparse.Namespace], int],
) -> None:
    """``vir keyholder ...``; the shared commands (``vir org``, ``vir db upgrade``,
    ``vir audit verify``) come from ``vir.cli``, run on the key holder's database."""
    holder = sub.add_parser(
        "keyholder",
        help="the key holder service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).add_subparsers(dest="keyholder_command", required=True)
    holder.add_parser("serve").set_defaults(run=cmd_serve)
    holder.add_parser("init").set_defaults(run=cmd_init)
    rotate = holder.add_parser("rotate", help="make the next epoch and the index's rekey token")
    rotate.add_argument("--token-out", required=True, help="where to write the rekey token")
    rotate.add_argument(
        "--from-token", help="threshold: apply the δ of the first holder's token (same rotation)"
    )
    rotate.add_argument(
        "--verifier-key", help="the first holder's verifier key (with --from-token)"
    )
    rotate.set_defaults(run=cmd_rotate)
    token = holder.add_parser(
        "token", help="write the incoming epoch's rekey token again (lost, or never written)"
    )
    token.add_argument("--out", required=True, help="where to write the rekey token")
    token.set_defaults(run=cmd_token)
    holder.add_parser("activate", help="serve the rotated epoch").set_defaults(run=cmd_activate)
    retire = holder.add_parser("retire", help="destroy keys of epochs past their grace period")
    retire.add_argument("--now", action="store_true", help="do not wait for the grace period")
    retire.set_defaults(run=cmd_retire)
    holder.add_parser("epochs").set_defaults(run=cmd_epochs)
    holder.add_parser("key", help="the checkpoint and token verifier key").set_defaults(run=cmd_key)
    _dkg_parsers(holder)
    _repair_parsers(holder)
    holder.add_parser(
        "hsm-import", help="wrap plain key files into the HSM; move the checkpoint key in"
    ).set_defaults(run=cmd_hsm_import)
    db = holder.add_parser("db").add_subparsers(dest="keyholder_db_command", required=True)
    db.add_parser("upgrade").set_defaults(run=cmd_shared, shared=db_upgrade)
    org_parsers(holder.add_parser("org"), shared=cmd_shared)
    oidc = holder.add_parser(
        "oidc",
        help="whose access tokens may ask for evaluations on an organisation's account "
        "(its people in the portal), or --remove",
    )
    oidc.add_argument("oin")
    oidc.add_argument("--issuer", help="the OpenID provider's issuer (https://...)")
    oidc.add_argument(
        "--audience", help="the aud a token must name (default: VIR_KEYHOLDER_OIDC_AUDIENCE)"
    )
    oidc.add_argument("--acr", help="the acr a token must carry (default: any)")
    oidc.add_argument(
        "--organisation-claim",
        help="a claim that must equal the OIN (needed when the provider serves others)",
    )
    oidc.add_argument(
        "--client-id",
        action="append",
        help="an OAuth client whose tokens are taken (the portal's; repeat for more; "
        "default: any client of the audience)",
    )
    oidc.add_argument("--remove", action="store_true")
    oidc.set_defaults(run=cmd_oidc)
    audit = holder.add_parser("audit").add_subparsers(dest="keyholder_audit", required=True)
    verify = audit.add_parser("verify", help="the stored chain, or an export FILE")
    verify.add_argument("file", nargs="?")
    verify.add_argument("--verifier-key")
    verify.set_defaults(run=cmd_shared, shared=audit_verify)
    checkpoint = audit.add_parser("checkpoint", help="check the whole log and sign a checkpoint")
    checkpoint.set_defaults(run=cmd_audit_checkpoint)
    export = audit.add_parser("export", help="entries and a signed checkpoint, portable")
    export.add_argument("--out", required=True)
    export.set_defaults(run=cmd_audit_export, write_export=audit_export)
    for long_job in (checkpoint, export):
        long_job.add_argument("--quiet", action="store_true", help="no progress bar")
