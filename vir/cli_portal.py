"""``vir portal serve`` and ``vir org oidc`` (docs/portal.md).

Neither prints a client secret: ``vir org oidc`` reads it from a file that only its
owner may read, and says which provider was set, nothing more.
"""

from __future__ import annotations

import argparse
import stat
from pathlib import Path
from urllib.parse import urlsplit

from vir.cli_databases import open_database
from vir.domain.clock import utc_now
from vir.domain.errors import ConfigurationError, InputError
from vir.settings import Settings


def read_secret(path: Path, field: str) -> str:
    """The one-line secret in ``path``, which group and others may not read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise InputError(field, "cannot read the file") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(field, f"the file is readable by others; run: chmod 600 {path}")
    secret = text.strip()
    if "\n" in secret or not secret:
        raise InputError(field, "the file must hold the secret on one line")
    return secret


def cmd_org_oidc(settings: Settings, args: argparse.Namespace) -> int:
    from vir.audit.actions import Action
    from vir.audit.chain import Outcome
    from vir.crypto.secretbox import load_secret_box
    from vir.domain.organisations import Oin
    from vir.portal import config
    from vir.store import audit_log

    oin = str(Oin(args.oin))
    db = open_database(settings.database_url)
    now = utc_now()
    if args.remove:
        with db.write() as session:
            removed = config.remove(session, oin)
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.ADMIN_OIDC_CHANGED,
                    Outcome.SUCCESS,
                    now,
                    organisation=oin,
                    actor="admin",
                    objects={"state": "removed"},
                ),
            )
        print(f"vir: portal sign-in {'removed' if removed else 'was not set'} for {oin}")
        return 0
    for name in ("issuer", "client_id", "client_secret_file"):
        if not getattr(args, name):
            raise InputError(name, f"give --{name.replace('_', '-')} (or --remove)")
    found = config.OidcConfig(
        oin=oin,
        issuer=args.issuer,
        client_id=args.client_id,
        client_secret=read_secret(Path(args.client_secret_file), "client_secret_file"),
        person_claim=args.person_claim,
        role_claim=args.role_claim,
        roles=config.parse_roles(args.role or ["professional=professional"]),
        acr=args.acr,
        organisation_claim=args.organisation_claim,
    )
    host = urlsplit(found.issuer).hostname or ""
    box = load_secret_box(settings.keys_dir)
    with db.write() as session:
        config.save(session, found, now, box)
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ADMIN_OIDC_CHANGED,
                Outcome.SUCCESS,
                now,
                organisation=oin,
                actor="admin",
                objects={"state": "set", "issuer": host},
            ),
        )
    print(f"vir: portal sign-in for {oin} through {found.issuer}")
    return 0


def cmd_portal_serve(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from vir.api.app import rate_limits
    from vir.crypto.secretbox import load_secret_box
    from vir.domain.clock import utc_now as clock
    from vir.logs import logging_config
    from vir.portal.app import create_portal_app
    from vir.portal.oidc import Providers
    from vir.portal.pages import Services
    from vir.portal.settings import PortalSettings
    from vir.server.run import Announcing, check_private_key, settled
    from vir.server.tls import limited_protocol_class
    from vir.services.epochs import EpochBook
    from vir.services.matchregie import Matchregie
    from vir.services.signals import NotificationService, SignalService
    from vir.store.migrate import require_current

    portal = PortalSettings()
    for path in (portal.tls_cert, portal.tls_key):
        if not path.is_file():
            raise ConfigurationError(
                f"TLS file {path} is missing; for development run: vir dev init"
            )
    check_private_key(portal.tls_key)
    db = open_database(settings.database_url)
    require_current(db.engine)
    providers = Providers(portal.oidc_ca)
    # The professional's pages call the index's own services, with its limits.
    epochs = EpochBook(db)
    limits = rate_limits(settings)
    services = Services(
        SignalService(db, clock, epochs, settings.information_duty_days, limits),
        Matchregie(db, clock),
        NotificationService(db, clock),
    )
    box = load_secret_box(settings.keys_dir)
    app = settled(create_portal_app(portal, db, clock, providers, box, services))
    config = uvicorn.Config(
        app,
        host=portal.host,
        port=portal.port,
        ssl_certfile=str(portal.tls_cert),
        ssl_keyfile=str(portal.tls_key),
        # The index's and key holder's bounds on a request head (431 past 32 KiB or 100
        # fields; a request the parser cannot read: 400), answered before the app runs.
        http=limited_protocol_class(),
        ws="none",  # the portal serves no WebSocket
        access_log=False,
        server_header=False,
        log_config=logging_config(settings.log_format),
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    serving = f"vir: portal serving {portal.public_url} (HTTPS, sign-in per organisation)"
    Announcing(config, lambda: print(serving, flush=True)).run()
    providers.close()
    return 0


def add_org_oidc(org: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    oidc = org.add_parser(
        "oidc", help="how the organisation's people sign in to the portal (or --remove)"
    )
    oidc.add_argument("--oin", required=True)
    oidc.add_argument("--issuer", help="the OpenID provider's issuer (https://...)")
    oidc.add_argument("--client-id", help="the portal's client id at that provider")
    oidc.add_argument("--client-secret-file", help="file (chmod 600) holding its secret")
    oidc.add_argument("--person-claim", default="sub", help="the claim naming the person")
    oidc.add_argument("--role-claim", default="vir_roles", help="the claim giving roles")
    oidc.add_argument(
        "--role",
        action="append",
        metavar="ROLE=VALUE",
        help="a portal role (professional, coordinator, privacy_officer, follow_up_officer) "
        "and the role claim's value that gives it; repeat per role "
        "(default: professional=professional)",
    )
    oidc.add_argument("--acr", help="the assurance level (acr) a sign-in must have")
    oidc.add_argument(
        "--organisation-claim",
        help="a claim that must equal the OIN (a provider shared by several organisations)",
    )
    oidc.add_argument("--remove", action="store_true", help="no more sign-in for it")
    oidc.set_defaults(run=cmd_org_oidc)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    portal = sub.add_parser("portal", help="the web portal").add_subparsers(
        dest="portal_command", required=True
    )
    portal.add_parser(
        "serve", help="serve the portal (VIR_PORTAL_PORT, default 8445) until stopped"
    ).set_defaults(run=cmd_portal_serve)
