"""The key holders of a development set-up (``vir dev init``; API-CONTRACT.md).

One key holder by default; with a threshold (``--threshold 2-of-3``, or
``VIR_DEV_THRESHOLD``) n of them, each with a Shamir share of the key. Holder 1 uses
the key holder's settings as given (``VIR_KEYHOLDER_*``, defaults under
``.vir/keyholder/``); holder i > 1 lives in a sibling folder ``<holder 1's>-i`` on the
next port that the index, the portal and its OpenID provider leave free (8447 and
8448 beside the defaults' 8443, 8445 and 8446), with a SQLite database of its own.
``keyholders.json`` in the dev folder says how to start each (its environment);
``endpoints.json`` where clients call.

Keys are made once and never overwritten. An OPRF key left in the index's keys
directory by an older set-up is moved to the key holder (or, with a threshold, split
and destroyed), so that the pseudonyms already stored stay valid.

The portal's page calls the key holders from the browser with the person's access
token: each holder accepts the development OpenID provider's tokens for the demo
organisations whose people sign in (checked by ``vir_oin`` and the demo ``acr``),
trusts the development CA for fetching that provider's keys, and grants CORS to the
portal's origin (``VIR_KEYHOLDER_PORTAL_ORIGINS``, ``VIR_KEYHOLDER_OIDC_CA``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import make_url

from vir.crypto import keys, oprf, pki, threshold
from vir.crypto.signing import init_signing_key, load_signing_key
from vir.devidp.provider import KEYHOLDER_AUDIENCE
from vir.domain.errors import ConfigurationError
from vir.domain.organisations import Role
from vir.keyholder import trust
from vir.keyholder.settings import KeyholderSettings
from vir.portal.devsetup import ACR, PORTAL_CLIENT_ID, idp_port
from vir.portal.settings import PortalSettings
from vir.services.devsetup import (
    DEMO_ORGANISATIONS,
    INDEX_OPERATOR,
    MUNICIPALITY,
    DevSetup,
    ensure_registered,
    ensure_server_certificate,
    issue_organisation_certificate,
    private_folder,
)
from vir.store.db import Database, sqlite_file
from vir.store.migrate import upgrade


@dataclass(frozen=True)
class DevKeyholder:
    number: int
    settings: KeyholderSettings

    @property
    def url(self) -> str:
        return f"https://{self.settings.host}:{self.settings.port}"

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {
            "VIR_KEYHOLDER_PORT": str(s.port),
            "VIR_KEYHOLDER_DATABASE_URL": s.database_url,
            "VIR_KEYHOLDER_KEYS_DIR": str(s.keys_dir.resolve()),
            "VIR_KEYHOLDER_TLS_CERT": str(s.tls_cert.resolve()),
            "VIR_KEYHOLDER_TLS_KEY": str(s.tls_key.resolve()),
            "VIR_KEYHOLDER_CLIENT_CA": str(s.client_ca.resolve()),
            "VIR_KEYHOLDER_AUDIT_ORIGIN": s.audit_origin,
            "VIR_KEYHOLDER_THRESHOLD": str(s.threshold),
            "VIR_KEYHOLDER_PORTAL_ORIGINS": s.portal_origins,
        }
        if s.client_crl is not None:
            env["VIR_KEYHOLDER_CLIENT_CRL"] = str(s.client_crl.resolve())
        if s.oidc_ca is not None:
            env["VIR_KEYHOLDER_OIDC_CA"] = str(s.oidc_ca.resolve())
        return env


def plan(
    first: KeyholderSettings, setup: DevSetup, t: int, n: int, taken: Mapping[int, str]
) -> list[DevKeyholder]:
    """Holder 1 as configured, holders 2..n beside it (see the module docstring), each
    on the next port that ``taken`` (the set-up's other services by port) leaves free;
    ConfigurationError when holder 1's own port is taken."""
    if first.port in taken:
        raise ConfigurationError(
            f"VIR_KEYHOLDER_PORT {first.port} is the {taken[first.port]}'s port: choose another"
        )
    ports = [first.port]
    while len(ports) < n:
        following = ports[-1] + 1
        while following in taken:
            following += 1
        ports.append(following)
    holders = []
    first = _anchored(first, setup)
    root = first.keys_dir.parent
    # The portal's page calls every holder: its origin, and the provider's CA to trust.
    portal = urlsplit(PortalSettings().public_url)
    first = first.model_copy(
        update={
            "portal_origins": first.portal_origins or f"{portal.scheme}://{portal.netloc}",
            "oidc_ca": first.oidc_ca or setup.paths.ca_cert,
        }
    )
    for number in range(1, n + 1):
        cert, key = setup.paths.keyholder_files(number)
        if number == 1:
            settings = first.model_copy(
                update={"tls_cert": cert, "tls_key": key, "threshold": t if n > 1 else 1}
            )
        else:
            folder = root.with_name(f"{root.name}-{number}")
            settings = first.model_copy(
                update={
                    "port": ports[number - 1],
                    "keys_dir": folder / "keys",
                    "database_url": f"sqlite:///{folder / 'keyholder.db'}",
                    "tls_cert": cert,
                    "tls_key": key,
                    "threshold": t,
                    "audit_origin": f"{first.audit_origin}-{number}",
                }
            )
        holders.append(DevKeyholder(number, settings))
    return holders


def _anchored(first: KeyholderSettings, setup: DevSetup) -> KeyholderSettings:
    """Holder 1's settings with absolute paths, and what ``VIR_KEYHOLDER_*`` leaves at its
    default under the dev folder's parent, as the defaults are under ``.vir/`` beside
    ``.vir/dev``: ``vir dev init --dev-dir /tmp/x/dev`` keeps everything in ``/tmp/x``
    (keyholders.json's environments are used from other working directories)."""
    root = setup.paths.root.resolve().parent
    given = first.model_fields_set
    keys_dir = first.keys_dir if "keys_dir" in given else root / "keyholder" / "keys"
    client_ca = first.client_ca if "client_ca" in given else setup.paths.ca_cert
    database_url = (
        first.database_url
        if "database_url" in given
        else f"sqlite:///{root / 'keyholder' / 'keyholder.db'}"
    )
    return first.model_copy(
        update={
            "keys_dir": keys_dir.resolve(),
            "client_ca": client_ca.resolve(),
            "database_url": _absolute_sqlite(database_url),
        }
    )


def _absolute_sqlite(database_url: str) -> str:
    """A SQLite URL with a relative file made absolute (from the working directory);
    any other URL as it is."""
    file = sqlite_file(database_url)
    if file is None:
        return database_url
    url = make_url(database_url).set(database=str(file.resolve()))
    return url.render_as_string(hide_password=False)


def init_keyholders(
    setup: DevSetup,
    holders: list[DevKeyholder],
    t: int,
    index_keys_dir: Path,
    now: dt.datetime,
) -> None:
    for holder in holders:
        s = holder.settings
        ensure_server_certificate(setup.paths, setup.ca, now, (s.tls_cert, s.tls_key))
        private_folder(s.keys_dir)
        if s.database_url.startswith("sqlite:///"):
            private_folder(Path(s.database_url.removeprefix("sqlite:///")).parent)
        upgrade(s.database_url, setting="VIR_KEYHOLDER_DATABASE_URL")
        db = Database.connect(s.database_url)
        try:
            for org, cert, role in setup.certificates:
                ensure_registered(db, org, cert, now, role)
            # The index's own certificate: it reads the evaluation counts for the report.
            service = _index_service_certificate(setup, now)
            ensure_registered(db, INDEX_OPERATOR, service, now, Role.INDEX_SERVICE)
            _accept_demo_tokens(db, now)
        finally:
            db.dispose()
        init_signing_key(s.keys_dir)
    _oprf_keys(holders, t, index_keys_dir)
    # The index verifies rekey tokens with holder 1's key (the holder that rotates first).
    first = holders[0].settings
    verifier = load_signing_key(first.keys_dir, first.audit_origin).verifier_key()
    (index_keys_dir / "keyholder.pub").write_text(verifier + "\n", encoding="ascii")


def _accept_demo_tokens(db: Database, now: dt.datetime) -> None:
    """The development provider's access tokens speak for the demo organisations whose
    people sign in to the portal (vir.portal.devsetup), each by its ``vir_oin``."""
    issuer = f"https://127.0.0.1:{idp_port()}"
    with db.write() as session:
        for org in (*DEMO_ORGANISATIONS, MUNICIPALITY):
            found = trust.OidcTrust(
                str(org.oin), issuer, KEYHOLDER_AUDIENCE, ACR, "vir_oin", (PORTAL_CLIENT_ID,)
            )
            trust.save(session, found, now)


def _index_service_certificate(setup: DevSetup, now: dt.datetime) -> pki.Certificate:
    """``index-service.crt``/``.key`` in the dev folder (VIR_USAGE_CLIENT_CERT/KEY)."""
    return issue_organisation_certificate(
        setup.ca,
        INDEX_OPERATOR,
        setup.paths.root / "index-service.crt",
        setup.paths.root / "index-service.key",
        now,
        role=Role.INDEX_SERVICE,
    )


def existing_threshold(dev_dir: Path) -> str | None:
    """``t-of-n`` of the set-up ``endpoints.json`` in ``dev_dir`` describes, None when
    there is none (or it cannot be read): a repeated ``make run`` keeps what exists."""
    try:
        found = json.loads((dev_dir / "endpoints.json").read_text(encoding="utf-8"))
        t, n = found["threshold"], len(found["keyholders"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= n:
        return None
    return f"{t}-of-{n}"


def _has_key(keys_dir: Path) -> bool:
    return keys_dir.is_dir() and any(p.name.startswith("oprf-epoch-") for p in keys_dir.iterdir())


def _oprf_keys(holders: list[DevKeyholder], t: int, index_keys_dir: Path) -> None:
    dirs = [h.settings.keys_dir for h in holders]
    legacy = keys.load_oprf_keyring(index_keys_dir) if _has_key(index_keys_dir) else None
    present = [d for d in dirs if _has_key(d)]
    if present:
        shares = len(dirs) == 1 and any(
            k.share_index is not None for k in keys.load_oprf_keyring(dirs[0]).keys
        )
        if len(present) != len(dirs) or shares:
            raise ConfigurationError(
                f"this development set-up has {len(present)} key holder(s) with a key, and "
                f"{len(dirs)} are asked for: it was made with another threshold. Keys are "
                "never replaced: to change the threshold, remove .vir/ (its demo data goes "
                "with it) and run again"
            )
        if legacy is not None:
            raise ConfigurationError(
                f"{index_keys_dir} still holds an OPRF key beside the key holder's; the "
                "index must not hold one: remove it (the key holder's is in use)"
            )
        return
    if len(dirs) == 1:
        if legacy is None:
            keys.init_oprf_key(dirs[0])
        else:
            for key in legacy.keys:
                keys.write_oprf_key(dirs[0], key.epoch, key.secret)
    else:
        found = legacy.keys if legacy is not None else (keys.OprfKey(1, oprf.random_scalar()),)
        for key in found:
            for share, keys_dir in zip(
                threshold.split(key.secret, t, len(dirs)), dirs, strict=True
            ):
                keys.write_oprf_key(keys_dir, key.epoch, share.secret, share.index)
    if legacy is not None:
        for key in legacy.keys:
            keys.destroy_oprf_key(index_keys_dir, key.epoch)


def write_endpoints(setup: DevSetup, index_url: str, holders: list[DevKeyholder], t: int) -> None:
    endpoints = {"index": index_url, "keyholders": [h.url for h in holders], "threshold": t}
    setup.paths.endpoints_json.write_text(json.dumps(endpoints, indent=2) + "\n", encoding="utf-8")
    listing = [{"number": h.number, "url": h.url, "env": h.env()} for h in holders]
    setup.paths.keyholders_json.write_text(json.dumps(listing, indent=2) + "\n", encoding="utf-8")
