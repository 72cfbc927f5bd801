"""The development set-up that ``make run`` leaves behind (API-CONTRACT.md).

``.vir/dev/`` gets a CA, a server certificate for 127.0.0.1/localhost, and one
client certificate per demo organisation, listed in ``orgs.json``. Everything
that exists is reused; nothing is ever overwritten. Folders it creates (``.vir/``
too) are 0700 and private keys 0600: the CA key issues certificates that the
service accepts. An existing folder keeps its mode (``vir serve`` refuses a
database folder that others can read, and says how to fix it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from vir.crypto import pki
from vir.domain.organisations import Category, Oin, Organisation, Role
from vir.services.onboarding import register_certificate, register_organisation
from vir.store.db import Database
from vir.store.organisations import get_certificate, get_organisation

DEMO_CONVENANT = "dev-convenant-rotterdam-2026"
DEMO_ORGANISATIONS = tuple(
    Organisation(Oin(oin), name, category, "Rotterdam", DEMO_CONVENANT)
    for oin, name, category in (
        ("00000009000000000001", "Basisschool De Regenboog", Category.EDUCATION),
        ("00000009000000000002", "Huisartsenpraktijk Kralingen", Category.GP),
        ("00000009000000000003", "Jeugdzorg Rijnmond", Category.YOUTH_CARE),
        ("00000009000000000004", "Veilig Thuis Rotterdam Rijnmond", Category.VEILIG_THUIS),
    )
)
MUNICIPALITY = Organisation(
    Oin("00000009000000000010"), "Gemeente Rotterdam", Category.MUNICIPALITY, "Rotterdam"
)
# The organisation that runs the index: its national privacy officer sees every region.
INDEX_OPERATOR = Organisation(
    Oin("00000009000000000020"), "Beheerder Verwijsindex", Category.INDEX_OPERATOR, "Nederland"
)
# Certificates with a role other than the back office's: listed in roles.json, not in
# orgs.json (whose organisations all register signals, as API-CONTRACT.md describes).
DEMO_ROLES = (
    (MUNICIPALITY, Role.PRIVACY_OFFICER),
    (DEMO_ORGANISATIONS[2], Role.COORDINATOR),
    (INDEX_OPERATOR, Role.NATIONAL_PRIVACY_OFFICER),
    (MUNICIPALITY, Role.ADDRESS_OFFICER),
    (MUNICIPALITY, Role.FOLLOW_UP_OFFICER),
)
CLIENT_CERT_DAYS = 365


@dataclass(frozen=True)
class DevPaths:
    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def orgs_json(self) -> Path:
        return self.root / "orgs.json"

    @property
    def roles_json(self) -> Path:
        return self.root / "roles.json"

    @property
    def endpoints_json(self) -> Path:
        return self.root / "endpoints.json"

    @property
    def keyholders_json(self) -> Path:
        return self.root / "keyholders.json"

    def keyholder_files(self, number: int) -> tuple[Path, Path]:
        """The server certificate and key of development key holder ``number``."""
        name = "keyholder" if number == 1 else f"keyholder-{number}"
        return self.root / f"{name}.crt", self.root / f"{name}.key"

    def org_files(self, oin: Oin) -> tuple[Path, Path]:
        return self.root / "orgs" / f"{oin}.crt", self.root / "orgs" / f"{oin}.key"

    def role_files(self, oin: Oin, role: Role) -> tuple[Path, Path]:
        folder = self.root / "roles"
        return folder / f"{oin}-{role.value}.crt", folder / f"{oin}-{role.value}.key"


def private_folder(path: Path) -> None:
    """Create ``path`` and each missing folder above it 0700 (``mkdir(parents=True)``
    would give the parents the default mode, often 0755)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def ensure_ca(paths: DevPaths, now: dt.datetime) -> pki.Issued:
    private_folder(paths.root)
    if paths.ca_cert.exists() or paths.ca_key.exists():
        return pki.load_issued(paths.ca_cert, paths.ca_key)
    ca = pki.create_ca("vir development CA", now)
    pki.save_issued(ca, paths.ca_cert, paths.ca_key)
    return ca


def ensure_server_certificate(
    paths: DevPaths, ca: pki.Issued, now: dt.datetime, files: tuple[Path, Path] | None = None
) -> None:
    """The server certificate for 127.0.0.1/localhost at ``files`` (default: the index's)."""
    cert_path, key_path = files or (paths.server_cert, paths.server_key)
    if cert_path.exists() or key_path.exists():
        return
    server = pki.issue_server_certificate(ca, ["127.0.0.1", "localhost", "::1"], now)
    pki.save_issued(server, cert_path, key_path)


def issue_organisation_certificate(
    ca: pki.Issued,
    org: Organisation,
    cert_path: Path,
    key_path: Path,
    now: dt.datetime,
    days: int = CLIENT_CERT_DAYS,
    role: Role = Role.SYSTEM,
) -> pki.Certificate:
    """Issue and save a client certificate, or return the one already saved there."""
    if cert_path.exists() or key_path.exists():
        return pki.load_issued(cert_path, key_path).cert
    private_folder(cert_path.parent)
    name = org.name if role is Role.SYSTEM else f"{org.name} ({role.value})"
    issued = pki.issue_client_certificate(
        ca, str(org.oin), name, now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)
    )
    pki.save_issued(issued, cert_path, key_path)
    return issued.cert


def ensure_registered(
    db: Database,
    org: Organisation,
    cert: pki.Certificate,
    now: dt.datetime,
    role: Role = Role.SYSTEM,
) -> None:
    with db.read() as session:
        org_known = get_organisation(session, str(org.oin)) is not None
        cert_known = get_certificate(session, pki.fingerprint(cert)) is not None
    if not org_known:
        register_organisation(db, org, now)
    if not cert_known:
        register_certificate(db, cert, now, role)


@dataclass(frozen=True)
class DevSetup:
    paths: DevPaths
    ca: pki.Issued
    # Every demo certificate with its organisation and role: the key holder registers
    # the same ones (organisations pseudonymise there with the certificate they use here).
    certificates: tuple[tuple[Organisation, pki.Certificate, Role], ...]


def init_dev(root: Path, db: Database, now: dt.datetime) -> DevSetup:
    paths = DevPaths(root)
    issued: list[tuple[Organisation, pki.Certificate, Role]] = []
    ca = ensure_ca(paths, now)
    ensure_server_certificate(paths, ca, now)
    listing = []
    for org in DEMO_ORGANISATIONS:
        cert_path, key_path = paths.org_files(org.oin)
        cert = issue_organisation_certificate(ca, org, cert_path, key_path, now)
        ensure_registered(db, org, cert, now)
        issued.append((org, cert, Role.SYSTEM))
        listing.append(
            {
                "oin": str(org.oin),
                "name": org.name,
                "category": org.category.value,
                "cert": str(cert_path.relative_to(root)),
                "key": str(key_path.relative_to(root)),
            }
        )
    paths.orgs_json.write_text(json.dumps(listing, indent=2) + "\n", encoding="utf-8")
    roles = []
    for org, role in DEMO_ROLES:
        cert_path, key_path = paths.role_files(org.oin, role)
        cert = issue_organisation_certificate(ca, org, cert_path, key_path, now, role=role)
        ensure_registered(db, org, cert, now, role)
        issued.append((org, cert, role))
        roles.append(
            {
                "role": role.value,
                "oin": str(org.oin),
                "name": org.name,
                "cert": str(cert_path.relative_to(root)),
                "key": str(key_path.relative_to(root)),
            }
        )
    paths.roles_json.write_text(json.dumps(roles, indent=2) + "\n", encoding="utf-8")
    return DevSetup(paths, ca, tuple(issued))
