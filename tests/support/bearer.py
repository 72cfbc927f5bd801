"""People's access tokens at the key holder: a ``vir dev init`` deployment (index, key
holder) with its development OpenID provider running as a real HTTPS process on the
port the set-up names, tokens obtained through that provider's authorization-code
flow, and tokens made with its signing key (for the hostile tests).

The provider signs with a key the test gave it (``--signing-key``), so that the tests
can make tokens the provider would make, then change one thing at a time.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from support import launch
from support.oidc import pkce
from support.service import RunningService, free_port, start_service, stop_process

from vir.devidp.provider import KEYHOLDER_AUDIENCE
from vir.portal.devsetup import ACR

EVALUATE = "/v1/oprf/evaluate"
GP_SUB = "00000009000000000002-huisarts"
SCHOOL_SUB = "00000009000000000001-leerkracht"
YOUTH_CARE_SUB = "00000009000000000003-jeugdhulp"
GP_OIN = "00000009000000000002"
SCHOOL_OIN = "00000009000000000001"
YOUTH_CARE_OIN = "00000009000000000003"
INDEX_OPERATOR_OIN = "00000009000000000020"


@dataclass
class Idp:
    issuer: str
    key: ECKey
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Deployment:
    service: RunningService
    idp: Idp
    portal_origin: str  # VIR_PORTAL_PUBLIC_URL of the set-up (no portal runs there)

    @property
    def ca(self) -> str:
        return self.service.ca

    def token(self, sub: str = GP_SUB, idp: Idp | None = None) -> str:
        """An access token for demo user ``sub`` through the real authorization-code flow."""
        return access_token(idp or self.idp, self.service.dev, sub, self.portal_origin)

    def mint(self, changes: dict[str, Any] | None = None, **header: Any) -> str:
        """A token as the provider makes it for the GP's doctor, with ``changes`` to its
        claims (None: leave the claim out) and to its header."""
        return mint(self.idp.key, self.idp.issuer, changes, **header)


def _signing_key(folder: Path) -> tuple[ECKey, Path]:
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    key.ensure_kid()
    path = folder / "idp-signing-key.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(key.as_dict(private=True)), encoding="utf-8")
    return key, path


def start_idp(root: Path, port: int, name: str = "idp") -> Idp:
    """The development provider of ``root``'s set-up (its idp.json and server
    certificate) on ``port``."""
    dev = root / "dev"
    key, key_file = _signing_key(root)
    log = root / f"{name}.log"
    with log.open("ab") as out:
        process = launch.popen(
            [
                *(sys.executable, "-m", "vir.devidp", "--config", str(dev / "idp.json")),
                *("--port", str(port), "--cert", str(dev / "server.crt")),
                *("--key", str(dev / "server.key"), "--signing-key", str(key_file)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    idp = Idp(f"https://127.0.0.1:{port}", key, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the OpenID provider exited:\n{log.read_text()}")
        try:
            with _http(idp.issuer, str(dev / "ca.crt")) as http:
                if http.get("/.well-known/openid-configuration").status_code == 200:
                    return idp
        except httpx.TransportError:
            time.sleep(0.1)
    stop_process(process)
    raise AssertionError(f"the OpenID provider did not start:\n{log.read_text()}")


@contextmanager
def deployment(root: Path, **overrides: str) -> Iterator[Deployment]:
    """``vir dev init`` with the provider on a port of its own, index and key holder
    running, and the provider started."""
    port, portal = free_port(), f"https://127.0.0.1:{free_port()}"
    service = start_service(
        root, VIR_DEV_IDP_PORT=str(port), VIR_PORTAL_PUBLIC_URL=portal, **overrides
    )
    try:
        idp = start_idp(root, port)
    except BaseException:
        service.stop()
        raise
    try:
        yield Deployment(service, idp, portal)
    finally:
        service.stop(also=[idp.process])  # all at once: each shuts down while the others do


def _http(base: str, ca: str) -> httpx.Client:
    return httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=ca), timeout=10)


def access_token(idp: Idp, dev: Path, sub: str, portal_origin: str) -> str:
    """Sign in as ``sub`` at ``idp`` as the portal does (PKCE, nonce, client secret)."""
    secret = (dev / "portal-client-secret").read_text(encoding="utf-8").strip()
    redirect = f"{portal_origin}/auth/callback"
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": "vir-portal",
        "redirect_uri": redirect,
        "scope": "openid profile",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with _http(idp.issuer, str(dev / "ca.crt")) as http:
        assert http.get("/authorize", params=params).status_code == 200
        answer = http.post("/authorize", data=params | {"sub": sub})
        assert answer.status_code == 302, answer.text
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
            auth=("vir-portal", secret),
        )
    assert tokens.status_code == 200, tokens.text
    token: str = tokens.json()["access_token"]
    return token


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, unverified (the test reads what the provider put in)."""
    payload = token.split(".")[1]
    found: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return found


def mint(key: ECKey, issuer: str, changes: dict[str, Any] | None = None, **header: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": [KEYHOLDER_AUDIENCE],
        "sub": GP_SUB,
        "client_id": "vir-portal",
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 600,
        "scope": "openid profile",
        "acr": ACR,
        "vir_oin": GP_OIN,
    }
    for name, value in (changes or {}).items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid} | header, claims, key)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def evaluate_body(elements: list[bytes]) -> bytes:
    from support import refclient

    return json.dumps({"blinded_elements": [refclient.b64url_encode(e) for e in elements]}).encode()


@contextmanager
def page_server(origin: str, cert: Path, key: Path) -> Iterator[None]:
    """An HTTPS server at ``origin`` (on 127.0.0.1) serving an empty page: where a
    browser's script runs with that origin, as on the portal's pages."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content = b'<!doctype html><html lang="nl"><title>t</title></html>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *_args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(origin.rsplit(":", 1)[1])), Page)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
