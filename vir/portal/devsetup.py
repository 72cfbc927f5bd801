"""The portal of a development set-up (``vir dev init``; ``make run`` starts it).

The development OpenID provider (vir.devidp) gets ``idp.json``: a demo user per demo
organisation and role, and the portal as its client with a secret made once (kept in
``portal-client-secret``, 0600). Each demo organisation signs in through it, checked
by the ``vir_oin`` claim. ``endpoints.json`` gains ``"portal"``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from types import MappingProxyType

from vir.crypto.secretbox import SecretBox
from vir.domain.organisations import Category, Organisation
from vir.portal import config
from vir.portal.config import PortalRole
from vir.services.devsetup import DEMO_ORGANISATIONS, MUNICIPALITY, DevPaths
from vir.store.db import Database

IDP_PORT = 8446
ACR = "urn:etoegang:core:assurance-class:loa3"
PORTAL_CLIENT_ID = "vir-portal"  # the portal's client at the development provider

# (organisation, subject, name, roles): who can sign in to the demo portal.
_PEOPLE: tuple[tuple[Organisation, str, str, tuple[PortalRole, ...]], ...] = (
    (DEMO_ORGANISATIONS[0], "leerkracht", "Juf de Vries", (PortalRole.PROFESSIONAL,)),
    (DEMO_ORGANISATIONS[1], "huisarts", "Dokter Jansen", (PortalRole.PROFESSIONAL,)),
    (DEMO_ORGANISATIONS[2], "jeugdhulp", "Sam Peeters", (PortalRole.PROFESSIONAL,)),
    (DEMO_ORGANISATIONS[2], "coordinator", "Noor Visser", (PortalRole.COORDINATOR,)),
    (DEMO_ORGANISATIONS[3], "veiligthuis", "Eva de Boer", (PortalRole.PROFESSIONAL,)),
    (MUNICIPALITY, "privacy", "Mila Smit", (PortalRole.PRIVACY_OFFICER,)),
    (MUNICIPALITY, "opvolging", "Daan Mulder", (PortalRole.FOLLOW_UP_OFFICER,)),
)


def idp_port() -> int:
    return int(os.environ.get("VIR_DEV_IDP_PORT", str(IDP_PORT)))


def idp_config(paths: DevPaths) -> Path:
    return paths.root / "idp.json"


def _secret(paths: DevPaths) -> str:
    path = paths.root / "portal-client-secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(secret + "\n", encoding="utf-8")
    return secret


def init_portal(
    paths: DevPaths, db: Database, portal_url: str, now: dt.datetime, box: SecretBox
) -> str:
    """The provider's users and client, and each demo organisation's sign-in through it;
    returns the provider's issuer URL."""
    issuer = f"https://127.0.0.1:{idp_port()}"
    secret = _secret(paths)
    users = [
        {
            "sub": f"{org.oin}-{subject}",
            "name": name,
            "email": f"{subject}@{org.oin}.example",
            "organisation": str(org.oin),
            "roles": [r.value for r in roles],
            "acr": ACR,
        }
        for org, subject, name, roles in _PEOPLE
    ]
    client = {
        "client_id": PORTAL_CLIENT_ID,
        "client_secret": secret,
        "redirect_uris": [f"{portal_url.rstrip('/')}/auth/callback"],
    }
    target = idp_config(paths)
    target.touch(mode=0o600)
    target.write_text(json.dumps({"users": users, "clients": [client]}, indent=2) + "\n")
    organisations = {org.oin: org for org, *_ in _PEOPLE}
    with db.write() as session:
        for oin, org in organisations.items():
            config.save(
                session,
                config.OidcConfig(
                    oin=str(oin),
                    issuer=issuer,
                    client_id=PORTAL_CLIENT_ID,
                    client_secret=secret,
                    person_claim="sub",
                    role_claim="vir_roles",
                    roles=MappingProxyType({r: r.value for r in _roles(org)}),
                    acr=ACR,
                    organisation_claim="vir_oin",
                ),
                now,
                box,
            )
    return issuer


def _roles(org: Organisation) -> tuple[PortalRole, ...]:
    if org.category is Category.MUNICIPALITY:
        return (PortalRole.PRIVACY_OFFICER, PortalRole.FOLLOW_UP_OFFICER)
    return (PortalRole.PROFESSIONAL, PortalRole.COORDINATOR)


def add_to_endpoints(paths: DevPaths, portal_url: str) -> None:
    endpoints = json.loads(paths.endpoints_json.read_text(encoding="utf-8"))
    endpoints["portal"] = portal_url
    paths.endpoints_json.write_text(json.dumps(endpoints, indent=2) + "\n", encoding="utf-8")


def demo_people() -> list[tuple[str, str, str]]:
    """(organisation name, person, roles) of the demo users, for ``make run`` to print."""
    return [(org.name, name, ", ".join(r.value for r in roles)) for org, _s, name, roles in _PEOPLE]
