"""The organisation's own reference for a signal (``local_ref``): its one shape.

1..64 of ``[A-Za-z0-9._:-]`` (API-CONTRACT.md), ``.`` and ``..`` included. The service
checks it where a reference enters, and so does the client before it puts one in a URL.

In ``/v1/signals/{local_ref}`` no character of the set needs escaping, but the
segments ``.`` and ``..`` are dot segments that a URL path resolves away (RFC 3986
§5.2.4: ``/v1/signals/..`` is ``/v1/``). Those two are sent percent-encoded
(``%2E``, ``%2E%2E``, ``path_segment``): an encoded dot is no dot segment (RFC 3986
§6.2.2.3 leaves it to the server), HTTP clients and proxies pass it on as it is, and
the server decodes it into the route's ``local_ref``.
"""

from __future__ import annotations

import re

LOCAL_REF_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_LOCAL_REF = re.compile(LOCAL_REF_PATTERN)
# The two references that are dot segments, as they go into a URL path.
_DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def is_local_ref(text: str) -> bool:
    return _LOCAL_REF.fullmatch(text) is not None


def path_segment(local_ref: str) -> str:
    """``local_ref`` as the last segment of ``/v1/signals/{local_ref}``: itself, or for
    ``.`` and ``..`` the percent-encoded dots. ``local_ref`` must be a reference."""
    return _DOT_SEGMENTS.get(local_ref, local_ref)
