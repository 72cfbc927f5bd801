"""The signed-in people's access tokens, in the portal's memory only.

The registration page gives the person's access token (from their organisation's
OpenID provider) to the page's script, which presents it to the key holder(s) for the
OPRF evaluation. The portal never uses it itself, so it is kept nowhere but here:
not in the database (a copy of it gives no token), not in a log. A token is
dropped when the person signs out, when the provider's lifetime for it ends, or when
the portal restarts; the person then signs in again to register (the page says so).
With several portal instances each holds the tokens of the sign-ins it handled.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

MAX_TOKENS = 10_000  # signed-in people at once; the oldest sign-in's token goes first


class AccessTokens:
    """Session (by the hash of its cookie) -> access token, until it expires."""

    def __init__(self, limit: int = MAX_TOKENS) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def keep(self, session: str, token: str, seconds: int) -> None:
        with self._lock:
            self._tokens[session] = (token, time.monotonic() + seconds)
            self._tokens.move_to_end(session)
            while len(self._tokens) > self._limit:
                self._tokens.popitem(last=False)

    def get(self, session: str) -> str | None:
        """The session's token while it is valid (with a minute to spare), else None."""
        with self._lock:
            found = self._tokens.get(session)
            if found is None:
                return None
            if found[1] - 60 < time.monotonic():
                del self._tokens[session]
                return None
            return found[0]

    def drop(self, session: str) -> None:
        with self._lock:
            self._tokens.pop(session, None)
