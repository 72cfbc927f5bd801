"""The notification cursor: an opaque token for a position among one organisation's
own notifications.

Positions count only the organisation's own notifications (``notifications.position``),
so nothing in a cursor, or in the gaps between two, tells an organisation how many
notifications others received. The token is base64url of a version byte and the
position (8 bytes, big-endian); clients must treat it as opaque.
"""

from __future__ import annotations

from vir.domain.encoding import b64url_decode, b64url_encode

_VERSION = 1
_MAX_POSITION = 2**63 - 1


def encode_cursor(position: int) -> str:
    return b64url_encode(bytes([_VERSION]) + position.to_bytes(8, "big"))


def decode_cursor(text: str) -> int | None:
    """The position a cursor stands for, or None if ``text`` is no cursor of this format."""
    raw = b64url_decode(text) if text.isascii() else None
    if raw is None or len(raw) != 9 or raw[0] != _VERSION:
        return None
    position = int.from_bytes(raw[1:], "big")
    return position if position <= _MAX_POSITION else None


def legacy_seq(text: str) -> int | None:
    """The global sequence number of a cursor issued before per-organisation positions
    (plain decimal digits), or None. Accepted so that clients holding one carry on."""
    if text.isascii() and text.isdigit() and len(text) < 19 and (text == "0" or text[0] != "0"):
        return int(text)
    return None
