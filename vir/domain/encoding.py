"""base64url without padding, strictly canonical, as on the wire; and signed JSON
documents' objects, each key once."""

from __future__ import annotations

import base64
import binascii
from typing import Any


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


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` for signed documents: a JSON object whose
    every key is there once (ValueError otherwise): with two, which one is signed?"""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError("duplicate key")
        found[key] = value
    return found
