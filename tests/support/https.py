"""A plain HTTPS helper for tests, with or without a client certificate."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    ca: str,
    method: str,
    path: str,
    body: bytes | None = None,
    cert: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(*cert)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        send = {"Content-Type": "application/json"}
        send.update(headers or {})
        conn.request(method, path, body=body, headers=send)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()
