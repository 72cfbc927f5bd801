"""Whose access tokens the key holder accepts, per organisation (``vir keyholder oidc``).

People signed in to the portal pseudonymise in their browser: it calls the key holder
with their OAuth access token (vir.keyholder.bearer) instead of a client certificate.
For each organisation that allows this, ``keyholder_oidc`` holds its OpenID
provider's issuer, the audience a token must name, the ``acr`` it must carry (None:
any), a claim that must equal the OIN (None: the provider is the organisation's
own) and the clients whose tokens are taken (the ``client_id`` claim: the portal's
client; none: any client of that audience). Every value is checked here, whoever sets
it.

An issuer names exactly one organisation for a token: a provider without an
organisation claim may serve one organisation only, and a provider shared by several
(the development provider, a sector's broker) must have every one of them identified
by an organisation claim.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.domain.errors import InputError
from vir.domain.oidc import check_issuer, check_value, is_claim_name
from vir.store import rows
from vir.store.tables import KeyholderOidcRow, OrganisationRow

# Claims that say something else than the organisation: never accepted as its claim.
_RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "acr", "amr", "azp", "client_id", "scope"}
)


MAX_CLIENTS = 8


@dataclass(frozen=True)
class OidcTrust:
    oin: str
    issuer: str
    audience: str
    acr: str | None
    organisation_claim: str | None
    # The OAuth clients whose tokens are taken (RFC 9068 ``client_id``): the portal's.
    # Empty: any client the provider issues tokens of this audience to, which makes
    # every such client a way to pseudonymise on the organisation's account.
    client_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_issuer(self.issuer)
        check_value("audience", self.audience)
        for client in self.client_ids:
            check_value("client_id", client)
        if len(self.client_ids) > MAX_CLIENTS:
            raise InputError("client_id", f"at most {MAX_CLIENTS}")
        if self.acr is not None:
            check_value("acr", self.acr)
        claim = self.organisation_claim
        if claim is not None and (not is_claim_name(claim) or claim in _RESERVED_CLAIMS):
            raise InputError(
                "organisation_claim",
                "a claim name (letters, digits and _.:-, at most 64), not a registered one",
            )


def save(session: Session, trust: OidcTrust, now: dt.datetime) -> None:
    """Store (or replace) ``trust`` for its organisation, which must be registered here.
    InputError when the issuer would then name more than one organisation."""
    row = session.get(OrganisationRow, trust.oin)
    if row is None or row.left_at is not None:
        raise InputError("oin", "no organisation with this OIN (vir keyholder org add first)")
    others = [t for t in for_issuer(session, trust.issuer) if t.oin != trust.oin]
    if others and (
        trust.organisation_claim is None or any(t.organisation_claim is None for t in others)
    ):
        raise InputError(
            "organisation_claim",
            "this issuer serves another organisation here: each organisation it serves "
            "needs an organisation claim",
        )
    values = {
        "issuer": trust.issuer,
        "audience": trust.audience,
        "acr": trust.acr,
        "organisation_claim": trust.organisation_claim,
        "client_ids": json.dumps(list(trust.client_ids)) if trust.client_ids else None,
        "updated_at": now,
    }
    rows.put(session, KeyholderOidcRow, trust.oin, values)


def remove(session: Session, oin: str) -> bool:
    return rows.drop(session, KeyholderOidcRow, oin)


def for_issuer(session: Session, issuer: str) -> list[OidcTrust]:
    """The organisations whose people's tokens from ``issuer`` are accepted."""
    rows = session.scalars(select(KeyholderOidcRow).where(KeyholderOidcRow.issuer == issuer)).all()
    return [_trust(row) for row in rows]


def listing(session: Session) -> list[OidcTrust]:
    rows = session.scalars(select(KeyholderOidcRow).order_by(KeyholderOidcRow.oin)).all()
    return [_trust(row) for row in rows]


def _trust(row: KeyholderOidcRow) -> OidcTrust:
    clients = tuple(json.loads(row.client_ids)) if row.client_ids else ()
    return OidcTrust(row.oin, row.issuer, row.audience, row.acr, row.organisation_claim, clients)
