"""Sign-ins under way and sessions, server-side.

The browser holds only random values: the session cookie, and (during sign-in) the
state in the provider's redirect. The database holds SHA-256 hashes of them, so a
copy of the database opens no session. A session ends on sign-out, after
``idle`` seconds without a request (15 minutes by default), and after at most
``MAX_SESSION`` whatever happens; each has its own CSRF token for every form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from vir.portal.config import PortalRole
from vir.store.tables import PortalLoginRow, PortalSessionRow

LOGIN_TIME = dt.timedelta(minutes=10)  # from the redirect to the provider to the callback
MAX_SESSION = dt.timedelta(hours=10)  # a working day, whatever the activity
# A session's last-seen time is written at most this often (not on every page).
TOUCH_EVERY = dt.timedelta(seconds=30)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Login:
    oin: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class PortalSession:
    token_hash: str
    oin: str
    person: str
    name: str
    roles: tuple[PortalRole, ...]
    csrf: str

    @property
    def reports(self) -> bool:
        """Whether the person registers signals (a professional or the coordinator)."""
        return PortalRole.PROFESSIONAL in self.roles or PortalRole.COORDINATOR in self.roles


def _login_key(state: str, binding: str) -> str:
    return digest(f"{state}\n{binding}")


def start_login(session: Session, oin: str, now: dt.datetime) -> tuple[str, str, Login]:
    """A new sign-in for ``oin``: the state to send to the provider, the binding for the
    browser's sign-in cookie, and the nonce and verifier. Only a hash of state and
    binding together is stored: the callback must come with both, from the browser
    that started (no one can make another's browser finish their sign-in)."""
    session.execute(delete(PortalLoginRow).where(PortalLoginRow.created_at < now - LOGIN_TIME))
    state, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    login = Login(oin, secrets.token_urlsafe(32), secrets.token_urlsafe(64))
    session.add(
        PortalLoginRow(
            state_hash=_login_key(state, binding),
            oin=oin,
            nonce=login.nonce,
            verifier=login.verifier,
            created_at=now,
        )
    )
    return state, binding, login


def finish_login(session: Session, state: str, binding: str, now: dt.datetime) -> Login | None:
    """The sign-in of ``state`` and the browser's ``binding``, once (the row is deleted);
    None when unknown, used already or older than LOGIN_TIME."""
    row = session.get(PortalLoginRow, _login_key(state, binding))
    if row is None:
        return None
    session.delete(row)
    if row.created_at < now - LOGIN_TIME:
        return None
    return Login(row.oin, row.nonce, row.verifier)


def create(
    session: Session,
    oin: str,
    person: str,
    name: str,
    roles: tuple[PortalRole, ...],
    now: dt.datetime,
) -> str:
    """A new session; returns the cookie's value (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        PortalSessionRow(
            id_hash=digest(token),
            oin=oin,
            person=person,
            name=name,
            roles=",".join(r.value for r in roles),
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    return token


def current(
    session: Session, token: str, now: dt.datetime, idle: dt.timedelta
) -> PortalSession | None:
    """The live session of cookie value ``token``, its last-seen time moved on; None (and
    the row deleted) when it has been idle too long or has lasted MAX_SESSION."""
    row = session.get(PortalSessionRow, digest(token))
    if row is None:
        return None
    if row.last_seen_at < now - idle or row.created_at < now - MAX_SESSION:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return PortalSession(
        token_hash=row.id_hash,
        oin=row.oin,
        person=row.person,
        name=row.name,
        roles=tuple(PortalRole(r) for r in row.roles.split(",") if r),
        csrf=row.csrf,
    )


def end(session: Session, token_hash: str) -> None:
    session.execute(delete(PortalSessionRow).where(PortalSessionRow.id_hash == token_hash))


def purge(session: Session, now: dt.datetime, idle: dt.timedelta) -> int:
    """Delete sessions that can no longer be used; how many."""
    gone = session.execute(
        delete(PortalSessionRow).where(
            (PortalSessionRow.last_seen_at < now - idle)
            | (PortalSessionRow.created_at < now - MAX_SESSION)
        )
    )
    return int(getattr(gone, "rowcount", 0) or 0)
