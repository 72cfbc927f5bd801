"""base64url without padding, strictly canonical, as on the wire. (Signed JSON
documents, each key once: ``strict_json``.)"""

from __future__ import annotations

import base64
import binascii


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Decode, or None if ``text`` is not the canonical unpadded encoding of some bytes."""
    if "=" in text:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Re-encoding must give the same text: rejects stray bits in the last character.
    return data if b64url_encode(data) == text else None
