"""``vir``: run and administer the service.

vir serve                 the embedded HTTPS server with mutual TLS
vir db upgrade            apply database migrations
vir db check              count stored pseudonyms that are not canonical elements (exit 1)
vir keys init             create the index's checkpoint and webhook secret keys if absent
vir keys rekey --token F  convert every stored pseudonym to the key holder's next epoch
vir keys epochs|retire    the index's key epochs; retire those past their grace period
vir dev init              development PKI, demo organisations, keys, databases, key holder(s)
vir dev run               the index, its key holder(s) and the portal of `vir dev init`
vir demo                  the school/GP/youth-care scenario against `vir dev run`
vir portal serve          the portal for browsers (VIR_PORTAL_PORT, default 8445)
vir keyholder ...         the key holder service (vir keyholder --help)
vir org add ...           onboard an organisation and issue (or register) its certificate
vir org list              registered organisations
vir org oidc ...          how an organisation's people sign in to the portal, or --remove
vir org cert ...          another certificate with a role (coordinator, privacy_officer, ...)
vir org coordinator ...   appoint or remove an organisation's coordinator
vir org email ...         content-free e-mail to its professionals: --enable/--disable, --language
vir org webhook ...       push notifications to a webhook (--url, --secret-file) or --disable
vir org revoke ...        revoke a certificate (--fingerprint or --serial) and rewrite the CRL
vir org remove --oin OIN [--withdraw]  offboard an organisation: certificates revoked,
                          delivery stopped, signals withdrawn (only with --withdraw);
                          deleted once no archived signal of it is kept
vir org crl               (re)write the development CA's CRL from the revoked certificates
vir region coordination   a region's categories that coordinate matches: show, or --categories
vir region follow-up      after how many days a match without confirmed contact is overdue
vir outbox list|retry     the delivery outbox (ids only); deliver dead ones again
vir outbox seal-secrets   encrypt webhook secrets stored before vir encrypted them
vir worker                deliver notifications (webhooks, e-mail) in its own process
vir lifecycle run         removal dates and the archive term (idempotent, resumable)
vir person deceased       death notice for the pseudonyms on standard input
vir address exclude ...   an institutional address pseudonym that never matches
vir address include ...   take an address pseudonym off the exclusion list again
vir address list          the excluded addresses: date and label, never a pseudonym
vir audit verify [FILE --verifier-key K]  walk the audit hash chain and compare it with
                          the newest signed checkpoint (or check an export with the log's
                          published key); name what is broken
vir audit checkpoint|key  sign a checkpoint now; print the checkpoint verifier key
vir audit export --out F  the log with a signed checkpoint, for verifying elsewhere
vir report privacy|monitor|participation  a report over --from/--to (JSON, or
                          --csv/--pdf/--json FILE); participation also --days N
vir report verify FILE    is a report's signed checkpoint consistent with the current log?
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from vir import cli_delivery, cli_keyholder, cli_keys, cli_portal, cli_regions
from vir.cli_databases import DATABASE_SETTING, close_databases, open_database
from vir.cli_progress import progress_for
from vir.client.closed_stdout import quiet_when_stdout_closes
from vir.client.files import CannotWrite, private_file, reason
from vir.crypto import oprf
from vir.domain.clock import utc_now
from vir.domain.dates import parse_iso_date
from vir.domain.errors import ConfigurationError, InputError, LogInconsistent, NotFound, VirError
from vir.domain.organisations import Role
from vir.logs import configure as configure_logging
from vir.logs import exception_text
from vir.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from vir.crypto.pki import Certificate
    from vir.services.reports import EvaluationCounts
    from vir.services.transparency import TransparencyLog
    from vir.store.db import Database


Command = Callable[[Settings, argparse.Namespace], int]


def _database(settings: Settings) -> Database:
    """Sessions on the index's database, its schema current; main() closes it."""
    return open_database(settings.database_url)


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.server.run import serve

    if settings.tls_mode == "proxy":
        serving = (
            f"vir: serving http://{settings.host}:{settings.port} behind a reverse proxy "
            f"(Client-Cert trusted from {settings.trusted_proxies})"
        )
    else:
        serving = (
            f"vir: serving https://{settings.host}:{settings.port} (mutual TLS; "
            f"client CA {settings.client_ca})"
        )
    return serve(settings, lambda: print(serving, flush=True))


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.store.migrate import upgrade

    upgrade(settings.database_url, setting=DATABASE_SETTING.get())
    print("vir: database schema is up to date")
    return 0


def cmd_db_check(settings: Settings, args: argparse.Namespace) -> int:
    """Count, per table and column, stored pseudonyms that are not canonical, non-identity
    ristretto255 elements (never their values); exit 1 when there is any."""
    from vir.crypto import oprf
    from vir.store.integrity import check_pseudonyms

    terminal = sys.stderr.isatty()
    shown: list[str] = []

    def show(column: str, done: int, total: int) -> None:
        # A terminal gets one line per column, rewritten after each batch; a log a line a batch.
        if not terminal:
            sys.stderr.write(f"vir: checking {column}: {done}/{total}\n")
            return
        if shown and shown[0] != column:
            sys.stderr.write("\n")
        shown[:] = [column]
        sys.stderr.write(f"\rvir: checking {column}: {done}/{total}")

    db = _database(settings)
    try:
        results = check_pseudonyms(db, oprf.is_valid_element, args.batch, show)
    finally:
        db.dispose()
    if shown:
        sys.stderr.write("\n")
    for result in results:
        print(f"{result.name}: {result.invalid} not canonical of {result.checked}")
    invalid = sum(r.invalid for r in results)
    if invalid:
        print(f"vir: {invalid} stored pseudonym(s) are not canonical elements", file=sys.stderr)
        return 1
    print("vir: every stored pseudonym is a canonical element")
    return 0


def _init_keys(keys_dir: Path) -> list[str]:
    """Create the index's keys if missing (never overwriting): the audit checkpoint
    signing key and the webhook secret key. The index has no OPRF key: that is the key
    holder's (vir keyholder init)."""
    from vir.crypto.secretbox import init_secret_key
    from vir.crypto.signing import init_signing_key

    path, created = init_signing_key(keys_dir)
    box_path, box_created = init_secret_key(keys_dir)
    return [
        f"vir: {'created' if created else 'kept existing'} checkpoint signing key {path}",
        f"vir: {'created' if box_created else 'kept existing'} webhook secret key {box_path}",
    ]


def cmd_keys_init(settings: Settings, args: argparse.Namespace) -> int:
    print("\n".join(_init_keys(Path(args.keys_dir or settings.keys_dir))))
    return 0


def cmd_dev_init(settings: Settings, args: argparse.Namespace) -> int:
    """The development set-up: PKI, demo organisations, the index's database and key, and
    the key holder(s) with their own databases, keys and certificates."""
    from vir.cli_keyholder import keyholder_settings
    from vir.crypto.secretbox import load_secret_box
    from vir.crypto.threshold import parse_threshold
    from vir.keyholder import devsetup as holders
    from vir.portal.devsetup import add_to_endpoints, idp_port, init_portal
    from vir.portal.settings import PortalSettings
    from vir.services.devsetup import init_dev
    from vir.store.migrate import upgrade

    asked = args.threshold or holders.existing_threshold(Path(args.dev_dir)) or "1-of-1"
    try:
        t, n = parse_threshold(asked)
    except ValueError as error:
        raise InputError("threshold", str(error)) from None
    _init_keys(settings.keys_dir)
    upgrade(settings.database_url)
    now = utc_now()
    setup = init_dev(Path(args.dev_dir), _database(settings), now)
    portal = PortalSettings()
    taken = {settings.port: "index", portal.port: "portal", idp_port(): "OpenID provider"}
    planned = holders.plan(keyholder_settings(), setup, t, n, taken)
    holders.init_keyholders(setup, planned, t, settings.keys_dir, now)
    holders.write_endpoints(setup, f"https://127.0.0.1:{settings.port}", planned, t)
    portal_url = portal.public_url
    box = load_secret_box(settings.keys_dir)
    issuer = init_portal(setup.paths, _database(settings), portal_url, now, box)
    add_to_endpoints(setup.paths, portal_url)
    where = ", ".join(h.url for h in planned)
    print(
        f"vir: development set-up ready in {setup.paths.root} (CA, server, demo organisations; "
        f"key holder{'s' if n > 1 else ''} {where}, threshold {t}-of-{n}; portal {portal_url}, "
        f"its OpenID provider {issuer})"
    )
    return 0


def cmd_dev_run(settings: Settings, _args: argparse.Namespace) -> int:
    """The index and its key holder(s) of ``vir dev init``, until Ctrl-C."""
    from vir.server.devrun import run_dev

    del settings  # each process reads its own
    return run_dev()


def cmd_org_add(settings: Settings, args: argparse.Namespace) -> int:
    from vir.crypto import pki
    from vir.domain import intake
    from vir.domain.organisations import Category, Oin, Organisation
    from vir.domain.policy import certificate_roles
    from vir.services.devsetup import DevPaths, issue_organisation_certificate
    from vir.services.onboarding import (
        check_certificate,
        register_certificate,
        register_organisation,
    )

    try:
        category = Category(args.category)
    except ValueError:
        raise InputError("category", "one of: " + ", ".join(c.value for c in Category)) from None
    org = Organisation(Oin(args.oin), args.name, category, args.region, args.convenant)
    # Before anything is checked, issued or stored (register_organisation checks again).
    intake.check_organisation_name(org.name)
    # A municipality's first certificate is its privacy officer's, the index operator's its
    # national officer's: neither has a back office that registers signals.
    role = certificate_roles(category)[0]
    db = _database(settings)
    now = utc_now()
    if args.cert:
        cert = _certificate_file(args.cert)
        # Checked before the organisation is registered: a refused certificate leaves nothing.
        check_certificate(cert, now, str(org.oin))
        register_organisation(db, org, now)
        register_certificate(db, cert, now, role, oin=str(org.oin))
        print(f"vir: registered {org.name} with certificate {pki.fingerprint(cert)}")
        return 0
    dev = DevPaths(Path(args.dev_dir))
    ca = pki.load_issued(dev.ca_cert, dev.ca_key)
    out = Path(args.out or dev.root / "orgs")
    cert_path, key_path = out / f"{org.oin}.crt", out / f"{org.oin}.key"
    if cert_path.exists() or key_path.exists():
        raise InputError("out", f"{cert_path} or its key already exists; not overwriting")
    register_organisation(db, org, now)
    cert = issue_organisation_certificate(ca, org, cert_path, key_path, now, args.days)
    register_certificate(db, cert, now, role)
    print(f"vir: registered {org.name}; certificate {cert_path}, key {key_path}")
    return 0


def cmd_org_cert(settings: Settings, args: argparse.Namespace) -> int:
    """Another certificate for a registered organisation, with a role."""
    from vir.crypto import pki
    from vir.domain.organisations import Oin
    from vir.services.devsetup import DevPaths, issue_organisation_certificate
    from vir.services.onboarding import register_certificate
    from vir.store.organisations import get_organisation

    role = Role(args.role)
    db = _database(settings)
    now = utc_now()
    with db.read() as session:
        org = get_organisation(session, str(Oin(args.oin)))
    if org is None:
        raise InputError("oin", "not a registered organisation")
    if args.cert:
        cert = _certificate_file(args.cert)
        register_certificate(db, cert, now, role, oin=str(org.oin))
        print(f"vir: registered {role.value} certificate {pki.fingerprint(cert)} for {org.name}")
        return 0
    dev = DevPaths(Path(args.dev_dir))
    ca = pki.load_issued(dev.ca_cert, dev.ca_key)
    out = Path(args.out or dev.root / "roles")
    stem = f"{org.oin}-{role.value}"
    cert_path, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    if cert_path.exists() or key_path.exists():
        raise InputError("out", f"{cert_path} or its key already exists; not overwriting")
    cert = issue_organisation_certificate(ca, org, cert_path, key_path, now, args.days, role)
    register_certificate(db, cert, now, role)
    print(f"vir: {role.value} certificate for {org.name}: {cert_path}, key {key_path}")
    return 0


# The development CA's CRL in DEV-DIR, by whose register it lists (at_keyholder): the
# index's and the key holder's each have their own file in one development folder.
_CRL_FILES = {False: "crl.pem", True: "keyholder-crl.pem"}


def _write_crl(settings: Settings, args: argparse.Namespace, db: Database) -> Path | None:
    """The development CA's CRL listing every revoked certificate; None without a CA key."""
    from vir.crypto import pki
    from vir.services.devsetup import DevPaths
    from vir.services.identity import revoked_certificates

    dev = DevPaths(Path(args.dev_dir))
    if not dev.ca_key.is_file():
        return None
    name = _CRL_FILES[args.at_keyholder]
    path = Path(args.crl) if args.crl else settings.client_crl or dev.root / name
    ca = pki.load_issued(dev.ca_cert, dev.ca_key)
    previous = pki.load_crl(path)
    if previous is not None and not pki.crl_is_signed_by(previous, ca.cert):
        raise InputError("crl", f"{path} is not signed by the CA in {dev.root}; not replacing it")
    pki.write_crl(pki.build_crl(ca, revoked_certificates(db), utc_now(), previous), path)
    return path


def cmd_org_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from vir.services.identity import revoke_certificate

    db = _database(settings)
    done = revoke_certificate(db, utc_now(), fingerprint=args.fingerprint, serial=args.serial)
    print(
        f"vir: certificate {done.fingerprint} of {done.oin} "
        f"{'was already' if done.already else 'is now'} revoked"
    )
    print(
        f"vir: the {'key holder' if args.at_keyholder else 'index'} refuses it from now on. "
        + (
            "Revoke it at the index too (its operator): "
            f"vir org revoke --fingerprint {done.fingerprint}"
            if args.at_keyholder
            else "The key holders keep their own register: revoke it at each of them too "
            "(their operators), or it can still pseudonymise: "
            f"vir keyholder org revoke --fingerprint {done.fingerprint}"
        )
    )
    crl = _write_crl(settings, args, db)
    if crl is None:
        print(
            "vir: publish the revocation through your CA's CRL: have the CA revoke it, then "
            "give the new CRL to what checks client certificates (nginx: reload it)"
        )
    else:
        print(f"vir: CRL written to {crl}, for a proxy in front (nginx -s reload to apply it)")
    return 0


def cmd_org_remove(settings: Settings, args: argparse.Namespace) -> int:
    """Offboard an organisation (vir.services.offboarding), here or at a key holder."""
    from vir.services.offboarding import remove

    db = _database(settings)
    done = remove(db, args.oin, utc_now(), withdraw=args.withdraw)
    print(
        f"vir: {done.name} has left: {done.revoked} certificate(s) revoked, "
        f"{done.withdrawn} signal(s) withdrawn, delivery settings deleted"
    )
    if done.deleted:
        print("vir: nothing of it is kept any more; its registration is deleted")
    else:
        held = []
        if done.archived:
            held.append(f"{done.archived} archived signal(s) of it are kept for their term")
        if done.certificates_until is not None:
            held.append(
                f"its certificates stay listed as revoked until they expire "
                f"({done.certificates_until:%Y-%m-%d})"
            )
        print(
            f"vir: its registration stays while {' and '.join(held)}; "
            + (
                "run this again then to delete it"
                if args.at_keyholder
                else "the lifecycle deletes it then"
            )
        )
    print(
        "vir: "
        + (
            f"remove it at the index too (its operator): vir org remove --oin {args.oin}"
            if args.at_keyholder
            else "the key holders keep their own register: remove it at each of them too "
            f"(their operators), or it can still pseudonymise: "
            f"vir keyholder org remove --oin {args.oin}"
        )
    )
    crl = _write_crl(settings, args, db)
    if crl is not None:
        print(f"vir: CRL written to {crl}, for a proxy in front (nginx -s reload to apply it)")
    elif done.revoked:
        print("vir: publish the revocations through your CA's CRL (nginx: reload it)")
    return 0


def cmd_org_crl(settings: Settings, args: argparse.Namespace) -> int:
    crl = _write_crl(settings, args, _database(settings))
    if crl is None:
        raise InputError("dev_dir", f"no CA key in {args.dev_dir}")
    print(f"vir: CRL written to {crl}")
    return 0


def cmd_org_coordinator(settings: Settings, args: argparse.Namespace) -> int:
    from vir.domain.organisations import Oin
    from vir.domain.signals import Professional
    from vir.services.onboarding import set_coordinator

    oin = str(Oin(args.oin))
    if args.remove:
        contact = None
    elif not args.name or not (args.email or args.phone):
        raise InputError("name", "give --name and --email and/or --phone (or --remove)")
    else:
        contact = Professional(args.name, args.email, args.phone)
    sent = set_coordinator(_database(settings), oin, contact, utc_now())
    print(f"vir: coordinator {'removed' if contact is None else 'set'}; {sent} partner(s) told")
    return 0


def cmd_org_email(settings: Settings, args: argparse.Namespace) -> int:
    """Content-free e-mail to an organisation's professionals: on, off, language."""
    from vir.delivery.email import configure_organisation
    from vir.domain.organisations import Oin
    from vir.store.email_outbox import Language

    enabled = True if args.enable else False if args.disable else None
    language = Language(args.language) if args.language else None
    state = configure_organisation(
        _database(settings), str(Oin(args.oin)), utc_now(), enabled=enabled, language=language
    )
    if state.enabled:
        print(f"vir: e-mail to the professionals of {state.name} is on ({state.language.value})")
    else:
        print(
            f"vir: e-mail to the professionals of {state.name} is off "
            f"(language {state.language.value}); turn it on with --enable"
        )
    return 0


def cmd_lifecycle_run(settings: Settings, args: argparse.Namespace) -> int:
    """Removal dates and the archive term, now (idempotent; safe to interrupt)."""
    from vir.services.lifecycle import Lifecycle

    lifecycle = Lifecycle(_database(settings), utc_now)
    with progress_for(args) as progress:
        report = lifecycle.run(progress)
    print(
        f"vir: lifecycle: {report.archived} archived, {report.erased} erased, "
        f"{report.destroyed} destroyed"
    )
    return 0


def cmd_person_deceased(settings: Settings, args: argparse.Namespace) -> int:
    """A death notice: pseudonyms (base64url, one per line) on standard input, made under
    ``--epoch`` (default: the index's current epoch)."""
    from vir.crypto import oprf
    from vir.domain.encoding import b64url_decode
    from vir.services.epochs import Arriving, EpochBook
    from vir.services.privacy import PrivacyService

    db = _database(settings)
    book = EpochBook(db)
    epoch = args.epoch if args.epoch is not None else book.current()
    book.convert(epoch, [])  # refuses an epoch that is not accepted, before any line
    service = PrivacyService(db, utc_now)
    total = 0
    for number, line in enumerate(sys.stdin, start=1):
        text = line.strip()
        if not text:
            continue
        person = b64url_decode(text)
        if person is None or not oprf.is_valid_element(person):
            raise InputError(
                f"line {number}", "not a pseudonym (a canonical element, 43 base64url characters)"
            )
        try:
            total += len(service.deceased(None, Arriving(epoch, person)))
        except NotFound:
            print(f"vir: line {number}: nothing held", file=sys.stderr)
    print(f"vir: death notice(s) processed; {total} signal(s) erased")
    return 0


def cmd_org_list(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.store.organisations import left_organisations, list_organisations

    with _database(settings).read() as session:
        left = left_organisations(session)
        for org in list_organisations(session):
            convenant = f"  (convenant {org.convenant})" if org.convenant else ""
            gone = f"  (left {left[str(org.oin)]:%Y-%m-%d})" if str(org.oin) in left else ""
            print(
                f"{org.oin}  {org.category.value:<22} {org.region:<14} {org.name}{convenant}{gone}"
            )
    return 0


def _one_address(lines: Iterable[str]) -> bytes:
    """The one address pseudonym (base64url) on standard input."""
    from vir.domain.encoding import b64url_decode

    given = [line.strip() for line in lines if line.strip()]
    address = b64url_decode(given[0]) if len(given) == 1 else None
    if address is None or not oprf.is_valid_element(address):
        # Read from standard input, never an argument: no pseudonym in shell history or
        # process lists (and a base64url text may begin with "-", which argparse refuses).
        raise InputError("pseudonym", "give one address pseudonym (base64url) on standard input")
    return address


def cmd_address_exclude(settings: Settings, args: argparse.Namespace) -> int:
    """The operator's way to put a pseudonym on the exclusion list; a municipality's
    address officer normally does it with their client (vir-client address exclude),
    which pseudonymises the address at the key holder: the index has no key."""
    from vir.services.addresses import exclude
    from vir.services.epochs import Arriving, EpochBook

    address = _one_address(sys.stdin)
    db = _database(settings)
    EpochBook(db).convert(args.epoch, [address])  # refuses an epoch not accepted
    exclude(db, Arriving(args.epoch, address), args.label, utc_now())
    print(f"vir: excluded {args.label!r}; it no longer makes household matches")
    return 0


def cmd_address_include(settings: Settings, args: argparse.Namespace) -> int:
    """The operator's way to take a pseudonym off the exclusion list (the address officer's
    is ``vir-client address include``); household matching through it resumes."""
    from vir.services.addresses import include
    from vir.services.epochs import Arriving, EpochBook

    address = _one_address(sys.stdin)
    db = _database(settings)
    EpochBook(db).convert(args.epoch, [address])  # refuses an epoch not accepted
    include(db, Arriving(args.epoch, address), utc_now())
    print("vir: taken off the exclusion list; it makes household matches again")
    return 0


def cmd_address_list(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.services.addresses import listing

    for label, created in listing(_database(settings)):
        print(f"{created:%Y-%m-%d}  {label}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """The scenario against the index at ``--url``, else the development set-up's (its
    endpoints.json, as ``make run`` wrote it), else on ``VIR_PORT``; one line on stderr
    and exit 1 when there is no set-up or nothing answers."""
    import httpx

    from vir.client.connection import ClientError, Endpoints
    from vir.client.demo import run_demo

    dev = Path(args.dev_dir)
    if not (dev / "orgs.json").is_file():
        print(
            f"vir: no development set-up in {dev}: run make run (or vir dev init)", file=sys.stderr
        )
        return 1
    endpoints = dev / "endpoints.json"
    try:
        url = args.url or (
            Endpoints.load(endpoints).index
            if endpoints.is_file()
            else f"https://127.0.0.1:{settings.port}"
        )
        print(run_demo(url, dev))
    except httpx.TransportError as error:
        try:  # the index or one of the key holders
            where = f"{error.request.url.scheme}://{error.request.url.netloc.decode()}"
        except RuntimeError:
            where = url
        print(
            f"vir: nothing answers at {where} ({type(error).__name__}): "
            "start vir with 'make run' in another terminal",
            file=sys.stderr,
        )
        return 1
    except ClientError as error:  # a refusal, or a broken endpoints.json
        print(f"vir: demo: {error}", file=sys.stderr)
        return 1
    return 0


def _transparency(settings: Settings) -> TransparencyLog:
    from vir.crypto.signing import load_signing_key
    from vir.services.transparency import TransparencyLog

    signer = load_signing_key(settings.keys_dir, settings.audit_origin)
    return TransparencyLog(_database(settings), signer, utc_now)


def cmd_audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    with progress_for(args) as progress:
        signed = _transparency(settings).checkpoint(full=True, progress=progress)
    sys.stdout.write(signed.note.decode("utf-8"))
    return 0


def cmd_audit_key(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.crypto.signing import load_signing_key

    print(load_signing_key(settings.keys_dir, settings.audit_origin).verifier_key())
    return 0


def cmd_audit_export(settings: Settings, args: argparse.Namespace) -> int:
    return write_export(_transparency(settings), args)


def write_export(log: TransparencyLog, args: argparse.Namespace) -> int:
    """``vir audit export`` and ``vir keyholder audit export``: ``log`` to ``--out``."""
    out = Path(args.out)
    count = -1  # the first line is the header
    # Made before the log is read, and over --out only when the whole log is written: a
    # log that does not check leaves an earlier export there as it was.
    with private_file(out) as handle, progress_for(args) as progress:
        for line in log.export(progress):
            handle.write(line)
            count += 1
    print(f"vir: exported {count} audit entries and their signed checkpoint to {out}")
    return 0


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    if args.file:
        if not args.verifier_key:
            # The key a file names proves nothing: whoever rewrites a log can sign it
            # with a fresh key of their own. Only the published key tells them apart.
            raise InputError(
                "verifier-key",
                "required to verify an export: give the log's published key, as vir audit "
                "key prints it",
            )
        return _verify_export(Path(args.file), _verifier_key(args.verifier_key), args)
    key = _verifier_key(args.verifier_key) if args.verifier_key else None
    from vir.audit import merkle
    from vir.audit.chain import StoredEntry, verify_chain
    from vir.domain.progress import told
    from vir.store import tiles
    from vir.store.audit_log import count_entries, stored_entries
    from vir.store.sequencer import pending

    with _database(settings).read() as session, progress_for(args) as progress:
        # Read before the walk: the entries walked then hold at least those it signed.
        signed = _newest_checkpoint(session, key)
        total = count_entries(session) if progress is not None else 0
        tree = tiles.Check(session)
        prefix = merkle.CompactRange()
        signed_root = prefix.root() if signed is not None and signed[0] == 0 else None

        def hashed(entries: Iterator[StoredEntry]) -> Iterator[StoredEntry]:
            nonlocal signed_root
            for entry in entries:
                leaf = merkle.leaf_hash(entry.body)
                tree.add(leaf)
                if signed is not None and prefix.size < signed[0]:
                    prefix.append(leaf)
                    if prefix.size == signed[0]:
                        signed_root = prefix.root()
                yield entry

        entries = told(stored_entries(session, with_refs=True), total, progress)
        report = verify_chain(hashed(entries))
        staged, _unnumbered = pending(session.connection())
        # Counted after the walk: the service may have integrated (and tiled) more since.
        entries_now = count_entries(session)
        wrong_tiles = tree.problem(entries_now) if report.intact else None
    if not report.intact:
        print(
            f"vir: audit chain BROKEN at entry {report.first_broken}: {report.problem}",
            file=sys.stderr,
        )
        return 1
    if signed is not None and signed_root != signed[1]:
        # An intact chain can still be cut short, or rewritten with every hash recomputed:
        # the checkpoint the log signed says how many entries it had, and their root.
        size = signed[0]
        problem = (
            f"it holds {report.entries} entries, fewer than the {size} of its newest signed "
            "checkpoint: entries were removed"
            if report.entries < size
            else f"its first {size} entries do not give the root of its newest signed "
            "checkpoint: entries were changed"
        )
        print(f"vir: audit log BROKEN: {problem}", file=sys.stderr)
        return 1
    print(f"vir: audit chain intact: {report.entries} entries, head {report.head.hex()}")
    if signed is None:
        print("vir: no signed checkpoint yet to compare the log with (vir audit checkpoint)")
    else:
        by = ", signed by the key given" if key is not None else ""
        print(
            f"vir: the log extends its newest signed checkpoint ({signed[0]} entries, root "
            f"{base64.b64encode(signed[1]).decode('ascii')}{by})"
        )
    if staged:
        # Committed with their changes; the service's integrator chains them.
        print(f"vir: {staged} more entries committed and not chained yet")
    if wrong_tiles is not None:
        if tree.covered > entries_now:
            # Tiles are built only over entries the log held: not derived data gone stale
            # but a record of entries since removed. Keep them; they are evidence.
            print(
                f"vir: {wrong_tiles}: the log holds fewer entries than were sequenced: "
                "entries were removed",
                file=sys.stderr,
            )
            return 1
        # Derived data: a proof is checked against its signed root and gives an error
        # rather than a false proof; the tiles are built again once their rows are gone.
        print(
            f"vir: {wrong_tiles}: proofs that use it fail; delete the rows of audit_tiles "
            "and the next checkpoint builds them again from the entries",
            file=sys.stderr,
        )
        return 1
    print(f"vir: the Merkle tiles agree with the entries ({tree.covered} covered)")
    return 0


def _newest_checkpoint(session: Session, key: str | None) -> tuple[int, bytes] | None:
    """The size and root of the newest signed checkpoint stored, to compare the log with.
    With ``key`` (``--verifier-key``), as its note says, once the note is found signed by
    that key: the database's own columns are then not taken on trust. InputError when it
    is not, or when there is no checkpoint to check the key against."""
    from sqlalchemy import select

    from vir.audit.checkpoint import Checkpoint, SignedNote, parse_verifier_key, verify_note
    from vir.crypto.signing import ed25519_verify
    from vir.store.tables import CheckpointRow

    row = session.scalars(
        select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
    ).first()
    if row is None:
        if key is not None:
            raise InputError(
                "verifier-key",
                "no signed checkpoint in the database to check it against (vir audit "
                "checkpoint signs one)",
            )
        return None
    if key is None:
        return row.size, bytes(row.root_hash)
    name, public_key = parse_verifier_key(key)
    try:
        note = SignedNote.parse(row.note.encode("utf-8"))
        body = Checkpoint.parse_body(note.text)
    except ValueError:
        raise LogInconsistent(
            f"the newest checkpoint ({row.size} entries) is not a signed note"
        ) from None
    if not verify_note(note, name, public_key, ed25519_verify):
        raise InputError(
            "verifier-key",
            f"the newest signed checkpoint ({row.size} entries) is not signed by this key",
        )
    return body.size, body.root_hash


def _report_date(value: str, field: str) -> date:
    try:
        return parse_iso_date(value)
    except ValueError:
        raise InputError(field, "a date as YYYY-MM-DD") from None


def _evaluation_counts(settings: Settings) -> EvaluationCounts | None:
    """Where the privacy report reads the evaluation counts, as ``vir serve`` does: the key
    holders of ``VIR_USAGE_KEYHOLDERS``; unset, those of the development set-up (its
    endpoints.json, which ``vir dev run`` gives the index); else none, and the report says
    that the counts are missing."""
    from vir.api.app import evaluation_counts
    from vir.client.connection import ClientError, Endpoints
    from vir.server.devrun import DEV_DIR

    path = DEV_DIR / "endpoints.json"
    if not settings.usage_keyholders and path.is_file():
        try:
            dev = Endpoints.load(path)  # the clients' checked reading of it
        except ClientError as error:
            raise ConfigurationError(str(error)) from None
        settings = settings.model_copy(
            update={"usage_keyholders": ",".join(dev.keyholders), "usage_threshold": dev.threshold}
        )
    return evaluation_counts(settings)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """The privacy officer's report, the monitor or the participation monitor, by the
    operator (audited as admin), computed over the log up to a signed checkpoint (signed
    now if the log has grown)."""
    start, end = _report_date(args.start, "from"), _report_date(args.end, "to")
    with ExitStack() as files:
        # Each file is made (0600) before the report is computed and audited: a path that
        # cannot be written stops the command before a report.generated entry is logged.
        outputs = {
            kind: files.enter_context(private_file(Path(name)))
            for kind, name in (("csv", args.csv), ("pdf", args.pdf), ("json", args.json))
            if name
        }
        render = _computed_report(settings, args, start, end)
        for kind, file in outputs.items():
            file.write(render(kind))
    for file in outputs.values():
        print(f"vir: wrote {file.path}")
    if not outputs:
        sys.stdout.write(render("json").decode("utf-8"))
    return 0


def _computed_report(
    settings: Settings, args: argparse.Namespace, start: date, end: date
) -> Callable[[str], bytes]:
    """The report ``vir report`` asked for, computed (and audited) now; what it gives
    renders it as csv, pdf or json."""
    import json

    from vir.crypto.signing import signing_key_path
    from vir.reports import officer
    from vir.services import reports

    db, now = _database(settings), utc_now()
    log = None
    if signing_key_path(settings.keys_dir).exists():
        log = _transparency(settings)  # a key that is there but unfit still stops us
    else:
        print(
            f"vir: no checkpoint signing key in VIR_KEYS_DIR {settings.keys_dir} "
            f"({settings.keys_dir.resolve()}): this report is NOT tied to a signed checkpoint "
            "and cannot be verified (is VIR_KEYS_DIR the index's keys folder?)",
            file=sys.stderr,
        )
    if args.report_command == "privacy":
        report = reports.privacy_report(
            db,
            lambda: now,
            None,
            start,
            end,
            information_days=settings.information_duty_days,
            region=args.region,
            log=log,
            evaluation_counts=_evaluation_counts(settings),
        )
        counts = report["evaluation_counts"]
        if not counts["available"]:
            print(f"vir: pseudonymisations are NOT counted: {counts['detail']}", file=sys.stderr)
        elif counts.get("not_answered"):
            print(
                f"vir: pseudonymisations are counted from {counts['answered']} of the "
                f"{counts['keyholders']} key holders ({', '.join(counts['not_answered'])} did "
                "not answer): each figure is a lower bound; make the report again when all "
                "answer for the closest one",
                file=sys.stderr,
            )
        to_csv, to_pdf = officer.privacy_csv, officer.privacy_pdf
    elif args.report_command == "participation":
        from vir.reports.participation import participation_csv, participation_pdf

        # A mistyped region is refused, not reported empty (the other two check it).
        reports.require_known_region(db, args.region)
        report = _participation(db, now, start, end, args, log)
        to_csv, to_pdf = participation_csv, participation_pdf
    else:
        report = reports.monitor_report(
            db,
            lambda: now,
            None,
            start,
            end,
            args.region,
            log=log,
            granularity=args.granularity,
            grouping=args.grouping,
        )
        to_csv, to_pdf = officer.monitor_csv, officer.monitor_pdf

    def render(kind: str) -> bytes:
        if kind == "csv":
            return to_csv(report, args.csv_dialect).encode("utf-8")
        if kind == "pdf":
            return to_pdf(report, now)
        return (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    return render


def _participation(
    db: Database,
    now: datetime,
    start: date,
    end: date,
    args: argparse.Namespace,
    log: TransparencyLog | None,
) -> dict[str, Any]:
    """The participation monitor, with a progress bar over the entries it reads on a
    terminal (standard error; not with --quiet)."""
    from vir.services.participation import participation_report

    with progress_for(args) as progress:
        return participation_report(
            db,
            lambda: now,
            None,
            start,
            end,
            args.region,
            days=args.days,
            log=log,
            progress=progress,
        )


# A report's JSON is a few megabytes for the largest region: a file far larger is not one.
MAX_REPORT_BYTES = 64 << 20


def cmd_report_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Whether a report's checkpoint (from its JSON FILE, or --tree-size and --root-hash as
    printed in its PDF or CSV) is consistent with the current audit log."""
    from vir.audit.checkpoint import MAX_TREE_SIZE
    from vir.domain import strict_json
    from vir.services.reports import verify_checkpoint

    if args.file:
        path = Path(args.file)
        try:
            document = strict_json.load_file(path, MAX_REPORT_BYTES)
        except OSError as error:
            raise InputError("file", f"cannot read {path}: {reason(error)}") from None
        except strict_json.NotJson as error:
            raise InputError("file", f"{path} is not a report in JSON: {error}") from None
        checkpoint = document.get("checkpoint") if isinstance(document, dict) else None
        if not isinstance(checkpoint, dict):
            raise InputError("file", f"{path} is not a report in JSON with a checkpoint")
        size, root = checkpoint.get("tree_size"), checkpoint.get("root_hash")
        # A JSON integer: not 1.5, "5" or true (bool is an int to Python).
        if type(size) is not int or not 0 <= size <= MAX_TREE_SIZE:
            raise InputError(
                "file", f"the checkpoint in {path} has no tree_size that is a whole number"
            )
        if not isinstance(root, str) or not _is_root_hash(root):
            raise InputError(
                "file", f"the checkpoint in {path} has no valid base64 root hash of 32 bytes"
            )
    elif args.tree_size is not None and args.root_hash:
        size, root = args.tree_size, args.root_hash
        if not _is_root_hash(root):
            raise InputError("root-hash", "not a valid base64 root hash of 32 bytes")
    else:
        raise InputError("file", "give a report's JSON file, or --tree-size and --root-hash")
    check = verify_checkpoint(_transparency(settings), size, root)
    if check.ok:
        print(
            f"vir: report checkpoint verified: the log's first {check.size} entries are "
            f"unchanged in the newest checkpoint ({check.newest_size} entries, root "
            f"{base64.b64encode(check.newest_root).decode('ascii')})"
        )
        return 0
    print(f"vir: report checkpoint does NOT verify: {check.problem}", file=sys.stderr)
    return 1


def _is_root_hash(text: str) -> bool:
    """Whether ``text`` is a Merkle root as reports print it: 32 bytes in base64."""
    import binascii

    try:
        return len(base64.b64decode(text.encode("ascii"), validate=True)) == 32
    except (UnicodeEncodeError, binascii.Error):
        return False


def _verifier_key(text: str) -> str:
    """``--verifier-key`` checked before anything is read with it: a malformed key is said
    to be one, rather than reported as a file or log that does not match it."""
    from vir.audit.checkpoint import parse_verifier_key

    try:
        parse_verifier_key(text)
    except ValueError as error:
        if Path(text).exists():
            raise InputError(
                "verifier-key",
                'is a path: give the key itself, e.g. --verifier-key "$(cat FILE)"',
            ) from None
        raise InputError("verifier-key", f"not a verifier key: {error}") from None
    return text


def _verify_export(path: Path, verifier_key: str, args: argparse.Namespace) -> int:
    """Needs no database and no service: the file and the log's published key. The
    progress bar counts the file's bytes."""
    from vir.audit.export import read_lines, verify
    from vir.crypto.signing import ed25519_verify
    from vir.domain.progress import told

    try:
        with path.open("rb") as handle, progress_for(args) as progress:
            total = path.stat().st_size
            lines = told(read_lines(handle), total, progress, every=1 << 20, size=len)
            report = verify(lines, ed25519_verify, verifier_key)
    except OSError as error:
        raise InputError("file", f"cannot read {path}: {reason(error)}") from None
    if report.ok:
        assert report.root is not None
        # Base64, as checkpoints, reports and the portal print a root: compared by eye.
        # The key by its name and hash: the user gave it, and the two identify it.
        key_id = "+".join(verifier_key.split("+", 2)[:2])
        print(
            f"vir: export verified: {report.entries} entries, Merkle root "
            f"{base64.b64encode(report.root).decode('ascii')}, signed by {key_id}"
        )
        return 0
    where = f" at entry {report.first_bad_entry}" if report.first_bad_entry else ""
    print(f"vir: export does NOT verify{where}: {report.problem}", file=sys.stderr)
    return 1


def _certificate_file(path: str) -> Certificate:
    """The PEM certificate in ``path``, or an InputError naming ``cert`` (no traceback)."""
    from vir.crypto import pki

    try:
        return pki.load_certificate(Path(path).read_bytes())
    except OSError:
        raise InputError(
            "cert", f"cannot read the certificate file {Path(path).absolute()}"
        ) from None
    except ValueError:
        raise InputError("cert", "the file holds no PEM certificate") from None


def add_org_parsers(parser: argparse.ArgumentParser, shared: Command | None = None) -> None:
    """``vir org ...``; with ``shared`` (``vir keyholder org ...``) each command runs
    through it, on the key holder's database (no coordinator there)."""
    org = parser.add_subparsers(dest="org_command", required=True)

    def handler(command: Command) -> dict[str, Command]:
        return {"run": command} if shared is None else {"run": shared, "shared": command}

    add = org.add_parser("add", help="onboard an organisation")
    add.add_argument("--oin", required=True, help="20-digit OIN")
    add.add_argument("--name", required=True)
    add.add_argument("--category", required=True)
    add.add_argument("--region", required=True)
    add.add_argument("--convenant", help="reference of the written agreement (required to report)")
    add.add_argument("--cert", help="register this externally issued certificate (PEM)")
    add.add_argument("--dev-dir", default=".vir/dev", help="CA used to issue a certificate")
    add.add_argument("--out", help="folder for the issued certificate and key")
    add.add_argument("--days", type=int, default=365)
    add.set_defaults(**handler(cmd_org_add))
    org.add_parser("list").set_defaults(**handler(cmd_org_list))
    cert = org.add_parser("cert", help="another certificate for an organisation, with a role")
    cert.add_argument("--oin", required=True)
    cert.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="system or coordinator (reporting organisation); privacy_officer, "
        "address_officer or follow_up_officer (municipality: its region); "
        "national_privacy_officer or index_service (index_operator)",
    )
    cert.add_argument("--cert", help="register this externally issued certificate (PEM)")
    cert.add_argument("--dev-dir", default=".vir/dev", help="CA used to issue a certificate")
    cert.add_argument("--out", help="folder for the issued certificate and key")
    cert.add_argument("--days", type=int, default=365)
    cert.set_defaults(**handler(cmd_org_cert))
    if shared is None:
        coord = org.add_parser(
            "coordinator", help="appoint or remove the organisation's coordinator"
        )
        coord.add_argument("--oin", required=True)
        coord.add_argument("--name")
        coord.add_argument("--email")
        coord.add_argument("--phone")
        coord.add_argument("--remove", action="store_true")
        coord.set_defaults(**handler(cmd_org_coordinator))
        email = org.add_parser(
            "email",
            help="content-free e-mail to the organisation's professionals: on, off, language",
        )
        email.add_argument("--oin", required=True)
        email.add_argument(
            "--language", choices=("nl", "en"), help="the e-mails' language (default nl)"
        )
        turn = email.add_mutually_exclusive_group()
        turn.add_argument("--enable", action="store_true", help="send e-mail (opt-in)")
        turn.add_argument("--disable", action="store_true", help="send no e-mail")
        email.set_defaults(**handler(cmd_org_email))
        cli_delivery.add_org_webhook(org)
        cli_portal.add_org_oidc(org)
    revoke = org.add_parser("revoke", help="revoke a client certificate and rewrite the CRL")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--fingerprint", help="SHA-256 fingerprint (hex) of the certificate")
    which.add_argument("--serial", help="serial number (hex) of the certificate")
    crl = org.add_parser("crl", help="(re)write the development CA's CRL")
    remove = org.add_parser(
        "remove",
        help="offboard an organisation: revoke its certificates, stop delivery, delete it "
        "once nothing kept refers to it",
    )
    remove.add_argument("--oin", required=True)
    remove.add_argument(
        "--withdraw",
        action="store_true",
        help="withdraw its active signals (erased, not archived; partners are told); "
        "without it an organisation with active signals is refused",
    )
    at_keyholder = shared is not None  # vir keyholder org ...: the key holder's register
    setting = "VIR_KEYHOLDER_CLIENT_CRL" if at_keyholder else "VIR_CLIENT_CRL"
    name = _CRL_FILES[at_keyholder]
    remove.set_defaults(**handler(cmd_org_remove))
    for one in (revoke, crl, remove):
        one.add_argument("--dev-dir", default=".vir/dev", help="CA that signs the CRL")
        one.add_argument("--crl", help=f"CRL file (default: {setting}, else DEV-DIR/{name})")
        one.set_defaults(at_keyholder=at_keyholder)
    revoke.set_defaults(**handler(cmd_org_revoke))
    crl.set_defaults(**handler(cmd_org_crl))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vir", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve").set_defaults(run=cmd_serve)
    cli_keyholder.add_parsers(
        sub,
        org_parsers=add_org_parsers,
        db_upgrade=cmd_db_upgrade,
        audit_verify=cmd_audit_verify,
        audit_export=write_export,
    )
    db = sub.add_parser("db").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade").set_defaults(run=cmd_db_upgrade)
    check = db.add_parser("check", help="count stored pseudonyms that are not canonical")
    check.add_argument("--batch", type=int, default=10_000, help="rows read per batch")
    check.set_defaults(run=cmd_db_check)
    keys = sub.add_parser("keys").add_subparsers(dest="keys_command", required=True)
    init = keys.add_parser(
        "init", help="the index's checkpoint signing key and webhook secret key, if absent"
    )
    init.add_argument("--keys-dir")
    init.set_defaults(run=cmd_keys_init)
    cli_keys.add_parsers(keys)
    dev = sub.add_parser("dev").add_subparsers(dest="dev_command", required=True)
    dev_init = dev.add_parser(
        "init",
        help="development PKI, demo organisations, keys, databases and key holder(s); "
        "keeps what exists",
    )
    dev_init.add_argument("--dev-dir", default=".vir/dev")
    dev_init.add_argument(
        "--threshold",
        default=os.environ.get("VIR_DEV_THRESHOLD") or None,
        help="t-of-n key holders sharing the key (default VIR_DEV_THRESHOLD, else what the "
        "existing set-up has, else 1-of-1)",
    )
    dev_init.set_defaults(run=cmd_dev_init)
    dev.add_parser(
        "run", help="the index, its key holder(s), the portal and its provider, until Ctrl-C"
    ).set_defaults(run=cmd_dev_run)
    add_org_parsers(sub.add_parser("org"))
    cli_delivery.add_parsers(sub)
    cli_regions.add_parsers(sub)
    cli_portal.add_parsers(sub)
    lifecycle = sub.add_parser("lifecycle").add_subparsers(dest="lifecycle_command", required=True)
    run = lifecycle.add_parser("run", help="removal dates and the archive term, now")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(run=cmd_lifecycle_run)
    person = sub.add_parser("person").add_subparsers(dest="person_command", required=True)
    deceased = person.add_parser(
        "deceased", help="death notice: erase everything on the pseudonyms read from stdin"
    )
    deceased.add_argument(
        "--epoch", type=int, help="the key epoch they were made under (default: the current)"
    )
    deceased.set_defaults(run=cmd_person_deceased)
    address = sub.add_parser("address").add_subparsers(dest="address_command", required=True)
    excl = address.add_parser("exclude", help="an institutional address that never matches")
    excl.add_argument("--label", required=True, help="what the address is, e.g. a shelter")
    excl.add_argument("--epoch", type=int, required=True, help="the key epoch it was made under")
    excl.set_defaults(run=cmd_address_exclude)
    incl = address.add_parser("include", help="an excluded address that matches again")
    incl.add_argument("--epoch", type=int, required=True, help="the key epoch it was made under")
    incl.set_defaults(run=cmd_address_include)
    address.add_parser("list").set_defaults(run=cmd_address_list)
    demo = sub.add_parser("demo", help="run the school/GP/youth-care scenario")
    demo.add_argument(
        "--url",
        help="the index's URL (default: the set-up's endpoints.json, else "
        "https://127.0.0.1:$VIR_PORT)",
    )
    demo.add_argument("--dev-dir", default=".vir/dev")
    demo.set_defaults(run=cmd_demo)
    audit = sub.add_parser("audit").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="the stored chain, or an export FILE (no database)")
    verify.add_argument("file", nargs="?", help="an export made by vir audit export")
    verify.add_argument(
        "--verifier-key",
        help="the log's published key (vir audit key); required with FILE, and without it "
        "the newest stored checkpoint must be signed by it",
    )
    verify.set_defaults(run=cmd_audit_verify)
    checkpoint = audit.add_parser(
        "checkpoint", help="check the whole log and sign a checkpoint now"
    )
    checkpoint.set_defaults(run=cmd_audit_checkpoint)
    audit.add_parser("key", help="the checkpoint verifier key").set_defaults(run=cmd_audit_key)
    export = audit.add_parser("export", help="entries and a signed checkpoint, portable")
    export.add_argument("--out", required=True)
    export.set_defaults(run=cmd_audit_export)
    for long_job in (verify, checkpoint, export):
        long_job.add_argument("--quiet", action="store_true", help="no progress bar")
    report = sub.add_parser("report").add_subparsers(dest="report_command", required=True)
    for name, what in (
        ("privacy", "the privacy officer's report"),
        ("monitor", "the monitor"),
        ("participation", "the participation monitor"),
    ):
        one = report.add_parser(name, help=what)
        one.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        one.add_argument("--to", dest="end", required=True, help="day after the last")
        one.add_argument("--csv", help="write CSV to this file")
        one.add_argument(
            "--csv-dialect",
            choices=("nl", "data"),
            default="nl",
            help="nl: for Dutch Excel (;, BOM, labels; default); data: codes, long format",
        )
        one.add_argument("--pdf", help="write a PDF to this file")
        one.add_argument("--json", help="write the JSON to this file (for vir report verify)")
        one.add_argument("--region", help="only organisations of this region")
        if name == "monitor":
            one.add_argument(
                "--granularity",
                choices=("month", "quarter", "year", "auto"),
                default="auto",
                help="columns per month, quarter or year; auto (default): the finest at "
                "which most numbers can be shown",
            )
            one.add_argument(
                "--grouping",
                choices=("categories", "groups", "auto"),
                default="auto",
                help="rows per organisation category or group of categories; auto (default)",
            )
        if name == "participation":
            one.add_argument(
                "--days",
                type=int,
                help="the term for contact after a match, 1..365 days (default: the "
                "region's follow-up period; 14 for every region)",
            )
            one.add_argument("--quiet", action="store_true", help="no progress bar")
        one.set_defaults(run=cmd_report)
    check = report.add_parser(
        "verify", help="is a report's signed checkpoint consistent with the current log?"
    )
    check.add_argument("file", nargs="?", help="a report in JSON")
    check.add_argument("--tree-size", type=int, help="the tree size the report states")
    check.add_argument("--root-hash", help="the root hash (base64) the report states")
    check.set_defaults(run=cmd_report_verify)
    return parser


def _log_format(settings: Settings, args: argparse.Namespace) -> Literal["json", "text"]:
    """``VIR_KEYHOLDER_LOG_FORMAT`` for ``vir keyholder ...``, as ``vir keyholder serve``
    logs; ``VIR_LOG_FORMAT`` for every other command."""
    if getattr(args, "keyholder_command", None) is not None:
        return cli_keyholder.keyholder_settings().log_format
    return settings.log_format


@quiet_when_stdout_closes
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        oprf.require_strict_backend()
        settings = Settings()
        if not logging.getLogger().handlers:  # not under a test's log capture
            configure_logging(_log_format(settings, args))
        code: int = args.run(settings, args)
    except InputError as error:
        print(f"vir: {error.field}: {error.detail}", file=sys.stderr)
        return 2
    except VirError as error:
        print(f"vir: {error.detail}", file=sys.stderr)
        return 2
    except CannotWrite as error:
        print(f"vir: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:
        for line in setting_errors(error):
            print(f"vir: {line}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed under us: quiet_when_stdout_closes
        raise
    except Exception as error:
        # A database that stops answering where no start-up check caught it: one line,
        # never the driver's message (it can quote the host, the user, the password).
        refusal = _unreachable_database(error, args)
        if refusal is not None:
            print(f"vir: {refusal}", file=sys.stderr)
            return 2
        # Anything else unforeseen: its class and where, never its text (a database's
        # quotes the statement's values, pseudonyms among them; others quote input).
        if os.environ.get(TRACEBACK_SETTING) == "1":
            raise
        print(f"vir: {unexpected(error)}", file=sys.stderr)
        return 70  # EX_SOFTWARE
    finally:
        close_databases()
        cli_keyholder.close_custodies()
    return code


TRACEBACK_SETTING = "VIR_TRACEBACK"


def unexpected(error: BaseException) -> str:
    """One line for an error no command foresaw: its class (an OSError's errno, as
    "Address already in use") and innermost frame, as the logs give them, and how to
    see the traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return (
        f"the command stopped on an unexpected error: {exception_text(error)}{where} (its "
        f"text is not shown: it can quote stored values; {TRACEBACK_SETTING}=1 shows the "
        "traceback)"
    )


def _unreachable_database(error: Exception, args: argparse.Namespace) -> str | None:
    """The refusal for ``error`` when it is a database that does not answer, else None."""
    if "sqlalchemy" not in sys.modules:  # then it cannot be one
        return None
    import sqlite3

    import sqlalchemy.exc

    from vir.store.migrate import UNREACHABLE, unreachable

    at_keyholder = getattr(args.run, "__module__", "") == "vir.cli_keyholder"
    setting = "VIR_KEYHOLDER_DATABASE_URL" if at_keyholder else "VIR_DATABASE_URL"
    sqlite = isinstance(getattr(error, "orig", None), sqlite3.Error)
    if sqlite and isinstance(error, sqlalchemy.exc.DatabaseError):
        # A SQLite file: no server to reach; its file, its folder or its disk.
        kind = type(error).__name__
        if not isinstance(error, sqlalchemy.exc.OperationalError):
            return (
                f"the database file in {setting} is damaged, or no database ({kind}): "
                'restore it from a backup (docs/operations.md, "Backup")'
            )
        return (
            f"the database file in {setting} cannot be used ({kind}): check that this user "
            "may read and write it and its folder, and that its disk is not full"
        )
    if not isinstance(error, UNREACHABLE):
        return None
    return unreachable(setting, error).detail


def setting_errors(error: ValidationError) -> list[str]:
    """A refused setting as ``VIR_...: what is wrong``, one line each: the variable, not a
    traceback, and never the value given (a URL or a path may hold what is not ours to
    print)."""
    from vir.keyholder.settings import KeyholderSettings
    from vir.portal.settings import PortalSettings

    prefixes = {
        model.__name__: model.model_config.get("env_prefix", "")
        for model in (Settings, KeyholderSettings, PortalSettings)
    }
    prefix = prefixes.get(error.title)
    found = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in problem["loc"])
        if prefix is None:
            where = f"{error.title}.{where}"
        else:
            where = where.upper()
            where = where if where.startswith("VIR_") else prefix + where
        found.append(f"{where}: {problem['msg']}")
    return found


if __name__ == "__main__":
    raise SystemExit(main())
