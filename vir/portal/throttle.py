"""Failed sign-in callbacks counted per client address, in the portal's memory.

A callback with a good sign-in cookie makes the portal call the organisation's token
endpoint and write an audit entry; a sign-in cookie costs nothing to get
(``GET /inloggen``). So an address whose callbacks failed ``limit`` times within
``window`` is answered 429 until the oldest of them is ``window`` old, before the
database or the provider is touched. People do not fail that often: a refused sign-in
(another organisation's account, a lower assurance level) is rare and is shown as such.
The portal serves its own TLS, so the peer address is the browser's (or its network's
NAT: the limit is set for many people behind one address). Per process; at most
``MAX_ADDRESSES`` addresses are remembered (the oldest forgotten first).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict, deque

LIMIT = 30
WINDOW = dt.timedelta(minutes=5)
MAX_ADDRESSES = 10_000


class FailedSignIns:
    __slots__ = ("_failed", "_limit", "_lock", "_window")

    def __init__(self, limit: int = LIMIT, window: dt.timedelta = WINDOW) -> None:
        self._limit = limit
        self._window = window
        self._failed: OrderedDict[str, deque[dt.datetime]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def retry_after(self) -> int:
        """Seconds to tell a refused browser to wait (the whole window: at most that)."""
        return math.ceil(self._window.total_seconds())

    def _recent(self, address: str, now: dt.datetime) -> deque[dt.datetime] | None:
        times = self._failed.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failed[address]
            return None
        return times

    def exceeded(self, address: str, now: dt.datetime) -> bool:
        """Whether ``address`` failed ``limit`` times within the window before ``now``."""
        with self._lock:
            times = self._recent(address, now)
            return times is not None and len(times) >= self._limit

    def add(self, address: str, now: dt.datetime) -> None:
        """Count a failed callback of ``address``."""
        with self._lock:
            times = self._recent(address, now)
            if times is None:
                times = self._failed[address] = deque(maxlen=self._limit)
                while len(self._failed) > MAX_ADDRESSES:
                    self._failed.popitem(last=False)
            else:
                self._failed.move_to_end(address)
            times.append(now)
