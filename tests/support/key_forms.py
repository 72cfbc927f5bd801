"""Every way a 32-byte secret could be written down: what a test searches a process's
environment, a directory, a database dump or a log for, to show the secret is not there."""

from __future__ import annotations

import base64

from vir.domain.encoding import b64url_encode


def written_forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        b64url_encode(secret).encode(),
        base64.b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        str(int.from_bytes(secret, "little")).encode(),
    ]
