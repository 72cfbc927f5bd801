"""Sign-ins under way and sessions, server-side.

The browser holds the session cookie, a random value, and during sign-in a sealed
cookie with the sign-in's state, nonce and PKCE verifier (nothing is stored when a
sign-in starts). The database holds SHA-256 hashes of session cookies, and of the
states of sign-ins finished in the last ten minutes, so a copy of the database opens
no session and a callback is taken once. A session ends on sign-out, after
``idle`` seconds without a request (15 minutes by default), and after at most
``MAX_SESSION`` whatever happens; each has its own CSRF token for every form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from vir.crypto.secretbox import SealedSecretError, SecretBox
from vir.portal.config import PortalRole
from vir.store.tables import PortalSessionRow, UsedLoginRow

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
    provider: str  # the organisation's issuer and client when the sign-in started
    replaces: str | None  # the hash of the session the browser had then


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


LOGIN_PURPOSE = "portal-login"  # the sealed sign-in cookie's associated data
MAX_LOGIN_COOKIE = 1024  # a sealed sign-in is about 450 characters


def start_login(
    box: SecretBox, oin: str, provider: str, now: dt.datetime, replaces: str | None
) -> tuple[str, str, Login]:
    """A new sign-in for ``oin`` at ``provider`` (its issuer and client): the state to
    send to the provider, the browser's sign-in cookie, and the sign-in. Nothing is
    stored: the cookie holds the state, nonce, PKCE verifier and start time, sealed
    (AES-256-GCM under the index's secret-box key), so that a flood of starts fills
    nothing, and the callback must come with both the state and the cookie, from the
    browser that started (no one can make another's browser finish their sign-in).
    ``replaces``: the hash of the session this browser had, ended when this one is made."""
    state = secrets.token_urlsafe(32)
    login = Login(oin, secrets.token_urlsafe(32), secrets.token_urlsafe(64), provider, replaces)
    sealed = {
        "state": state,
        "oin": oin,
        "nonce": login.nonce,
        "verifier": login.verifier,
        "provider": provider,
        "at": int(now.timestamp()),
        "replaces": replaces or "",
    }
    return state, box.seal(json.dumps(sealed), "", LOGIN_PURPOSE), login


def open_login(box: SecretBox, state: str, cookie: str, now: dt.datetime) -> Login | None:
    """The sign-in in ``cookie`` when it was sealed here for ``state`` less than
    LOGIN_TIME ago; None otherwise (tampered with, another sign-in's, expired)."""
    if not (0 < len(state) <= 100 and 0 < len(cookie) <= MAX_LOGIN_COOKIE):
        return None
    try:
        found = json.loads(box.open(cookie, "", LOGIN_PURPOSE))
    except (SealedSecretError, ValueError):
        return None
    try:
        fields = [found[k] for k in ("state", "oin", "nonce", "verifier", "provider")]
        at, replaces = found["at"], found["replaces"]
    except (KeyError, TypeError):
        return None
    if not (all(isinstance(f, str) for f in fields) and isinstance(replaces, str)):
        return None
    if type(at) is not int or not secrets.compare_digest(fields[0], state):
        return None
    age = now.timestamp() - at
    if not 0 <= age <= LOGIN_TIME.total_seconds():
        return None
    return Login(fields[1], fields[2], fields[3], fields[4], replaces or None)


def use_login(session: Session, state: str, now: dt.datetime) -> bool:
    """Take the sign-in of ``state`` once: False when it was taken already (a replayed
    callback). Only its hash is kept, for LOGIN_TIME (its cookie is no good after)."""
    session.execute(delete(UsedLoginRow).where(UsedLoginRow.used_at < now - LOGIN_TIME))
    key = digest(state)
    if session.get(UsedLoginRow, key) is not None:
        return False
    session.add(UsedLoginRow(state_hash=key, used_at=now))
    return True


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
    return _session(row)


def find(session: Session, token_hash: str) -> PortalSession | None:
    """The session of cookie hash ``token_hash``, as stored (to end it)."""
    row = session.get(PortalSessionRow, token_hash)
    return None if row is None else _session(row)


def _session(row: PortalSessionRow) -> PortalSession:
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
