"""The organisation's own reference for a signal (``local_ref``): its one shape.

1..64 of ``[A-Za-z0-9._:-]`` (API-CONTRACT.md), but not ``.`` or ``..``: a URL path
resolves those segments away (RFC 3986 §5.2.4), so such a signal could never be
addressed in ``/v1/signals/{local_ref}``. No other character of the set is changed
by a URL path. The service checks it where a reference enters, and so does the
client before it puts one in a URL.
"""

from __future__ import annotations

import re

LOCAL_REF_PATTERN = (
    r"^(?:[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,63}"
    r"|\.[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,62}"
    r"|\.\.[A-Za-z0-9._:-]{1,62})$"
)
_LOCAL_REF = re.compile(LOCAL_REF_PATTERN)


def is_local_ref(text: str) -> bool:
    return _LOCAL_REF.fullmatch(text) is not None
