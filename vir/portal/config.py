"""How an organisation's people sign in to the portal: its OpenID provider and claims.

Configured at onboarding (``vir org oidc``) and kept in ``organisation_oidc``. Every
value is checked here, whoever sets it: an issuer is an HTTPS URL without query or
fragment, a client id and claim names are short printable tokens, and each portal
role is given by one value of the role claim.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.crypto.secretbox import OIDC_CLIENT, SecretBox
from vir.domain.errors import InputError
from vir.domain.oidc import check_issuer, check_value, is_claim_name, is_value
from vir.store import organisations, rows
from vir.store.tables import OrganisationOidcRow, OrganisationRow


class PortalRole(enum.StrEnum):
    """What a signed-in person may do in the portal (issue 18)."""

    PROFESSIONAL = "professional"  # registers and follows their own signals and matches
    COORDINATOR = "coordinator"  # the organisation's coordinator (its contact details)
    PRIVACY_OFFICER = "privacy_officer"  # reports, access requests, the audit checkpoint
    FOLLOW_UP_OFFICER = "follow_up_officer"  # a municipality's check on matches' follow-up


@dataclass(frozen=True)
class OidcConfig:
    oin: str
    issuer: str
    client_id: str
    client_secret: str
    person_claim: str  # the claim that names the person (stable at the provider)
    role_claim: str  # the claim (a string or a list of strings) that gives roles
    roles: Mapping[PortalRole, str]  # portal role -> the role claim's value for it
    acr: str | None  # the acr an ID token must carry; None: any
    organisation_claim: str | None  # a claim that must equal the OIN; None: not checked

    def __post_init__(self) -> None:
        check_issuer(self.issuer)
        check_value("client_id", self.client_id)
        secret = self.client_secret
        if not 16 <= len(secret) <= 256 or not (secret.isascii() and secret.isprintable()):
            raise InputError("client_secret", "16 to 256 printable ASCII characters")
        for name, claim in (
            ("person_claim", self.person_claim),
            ("role_claim", self.role_claim),
            ("organisation_claim", self.organisation_claim),
        ):
            if claim is not None and not is_claim_name(claim):
                raise InputError(name, "a claim name: letters, digits and _.:- (at most 64)")
        if not self.roles:
            raise InputError("roles", "at least one portal role")
        for value in self.roles.values():
            if not is_value(value):
                raise InputError("roles", "role claim values: 1 to 200 letters, digits or ._:/~+-")
        if self.acr is not None:
            check_value("acr", self.acr)

    def roles_of(self, claim: object) -> tuple[PortalRole, ...]:
        """The portal roles a role claim's value (a string or a list of them) gives."""
        values = (
            {claim} if isinstance(claim, str) else set(claim) if isinstance(claim, list) else set()
        )
        return tuple(role for role in PortalRole if self.roles.get(role) in values)


def parse_roles(pairs: list[str]) -> dict[PortalRole, str]:
    """``ROLE=VALUE`` pairs (``vir org oidc --role``) as a mapping; InputError naming roles."""
    found: dict[PortalRole, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            role = PortalRole(name)
        except ValueError:
            raise InputError(
                "roles", "ROLE=VALUE with ROLE one of: " + ", ".join(r.value for r in PortalRole)
            ) from None
        if not sep or role in found:
            raise InputError("roles", "each portal role once, as ROLE=VALUE")
        found[role] = value
    return found


def save(session: Session, config: OidcConfig, now: dt.datetime, box: SecretBox) -> None:
    """Store (or replace) ``config`` for its organisation, which must exist; the client
    secret sealed with ``box`` (vir.crypto.secretbox). Its people's sessions end: each
    was signed in by the configuration this replaces (another provider, other roles)."""
    row = session.get(OrganisationRow, config.oin)
    if row is None or row.left_at is not None:
        raise InputError("oin", "no organisation with this OIN (vir org add first)")
    values = {
        "issuer": config.issuer,
        "client_id": config.client_id,
        "client_secret": box.seal(config.client_secret, config.oin, OIDC_CLIENT),
        "person_claim": config.person_claim,
        "role_claim": config.role_claim,
        "roles": json.dumps({r.value: v for r, v in config.roles.items()}, sort_keys=True),
        "acr": config.acr,
        "organisation_claim": config.organisation_claim,
        "updated_at": now,
    }
    rows.put(session, OrganisationOidcRow, config.oin, values)
    organisations.end_portal_sessions(session, config.oin)  # signed in by the old one


def remove(session: Session, oin: str) -> bool:
    """Remove the organisation's sign-in; its people's sessions end with it."""
    organisations.end_portal_sessions(session, oin)
    return rows.drop(session, OrganisationOidcRow, oin)


def load(session: Session, oin: str, box: SecretBox) -> OidcConfig | None:
    """The organisation's sign-in, or None; SealedSecretError when its client secret does
    not open with ``box`` (another key, or a row copied from elsewhere)."""
    row = session.get(OrganisationOidcRow, oin)
    return None if row is None else _config(row, box)


def _config(row: OrganisationOidcRow, box: SecretBox) -> OidcConfig:
    return OidcConfig(
        oin=row.oin,
        issuer=row.issuer,
        client_id=row.client_id,
        client_secret=box.open(row.client_secret, row.oin, OIDC_CLIENT),
        person_claim=row.person_claim,
        role_claim=row.role_claim,
        roles=MappingProxyType({PortalRole(k): v for k, v in json.loads(row.roles).items()}),
        acr=row.acr,
        organisation_claim=row.organisation_claim,
    )


def sign_in_organisations(session: Session) -> list[tuple[str, str]]:
    """(OIN, name) of every organisation whose people can sign in, by name."""
    rows = session.execute(
        select(OrganisationRow.oin, OrganisationRow.name)
        .join(OrganisationOidcRow, OrganisationOidcRow.oin == OrganisationRow.oin)
        .order_by(OrganisationRow.name)
    ).all()
    return [(oin, name) for oin, name in rows]
