"""The development OpenID provider (``python -m vir.devidp``) as a real HTTPS process,
with a CA of its own, demo users and one client: for the sign-in tests."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
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

import httpx
from support import launch
from support.service import free_port, stop_process

from vir.crypto import pki

USERS = [
    {
        "sub": "huisarts-1",
        "name": "Dokter Jansen",
        "email": "jansen@huisarts.example",
        "organisation": "00000009000000000002",
        "roles": ["professional"],
        "acr": "urn:etoegang:core:assurance-class:loa3",
    },
    {
        "sub": "huisarts-2",
        "name": "Waarnemer Bakker",
        "email": "bakker@huisarts.example",
        "organisation": "00000009000000000002",
        "roles": ["professional"],
        "acr": "urn:etoegang:core:assurance-class:loa2",
    },
    {
        "sub": "school-1",
        "name": "Juf de Vries",
        "email": "devries@school.example",
        "organisation": "00000009000000000001",
        "roles": ["professional"],
        "acr": "urn:etoegang:core:assurance-class:loa2",
    },
]
CLIENT_ID = "vir-portal"
REDIRECT_URI = "https://127.0.0.1:9/auth/callback"


@dataclass
class RunningIdp:
    issuer: str
    ca: str
    client_secret: str
    process: subprocess.Popen[bytes]
    log: Path

    def http(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.issuer, verify=context, timeout=10)


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization(challenge: str, **overrides: str) -> dict[str, str]:
    """The parameters of a valid authorization request (overrides replace or, with "",
    remove one)."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    } | overrides
    return {k: v for k, v in params.items() if v != ""}


def test_ca(folder: Path) -> tuple[pki.Issued, Path]:
    """A CA for the test servers (provider, portal), its certificate saved in ``folder``."""
    ca = pki.create_ca("vir test CA", dt.datetime.now(dt.UTC))
    path = folder / "test-ca.crt"
    path.write_bytes(pki.cert_pem(ca.cert))
    return ca, path


def server_files(ca: pki.Issued, folder: Path, name: str) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 from ``ca``: (certificate, key) in ``folder``."""
    server = pki.issue_server_certificate(ca, ["127.0.0.1", "localhost"], dt.datetime.now(dt.UTC))
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    pki.save_issued(server, cert, key)
    return cert, key


@contextmanager
def running_idp(
    folder: Path,
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    ca: tuple[pki.Issued, Path] | None = None,
    users: list[dict[str, Any]] | None = None,
) -> Iterator[RunningIdp]:
    """The provider on a free port, its certificate from ``ca`` (else a CA of its own)."""
    issuer_ca, ca_path = ca or test_ca(folder)
    cert, key = server_files(issuer_ca, folder, "idp")
    secret = secrets.token_urlsafe(32)
    config = folder / "idp.json"
    config.write_text(
        json.dumps(
            {
                "users": users or USERS,
                "clients": [
                    {
                        "client_id": CLIENT_ID,
                        "client_secret": secret,
                        "redirect_uris": list(redirect_uris),
                    }
                ],
            }
        )
    )
    port = free_port()
    log = folder / "idp.log"
    with log.open("ab") as out:
        process = launch.popen(
            [
                *(sys.executable, "-m", "vir.devidp", "--config", str(config)),
                *("--port", str(port), "--cert", str(cert), "--key", str(key)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    idp = RunningIdp(f"https://127.0.0.1:{port}", str(ca_path), secret, process, log)
    try:
        _wait(idp)
        yield idp
    finally:
        stop_process(process)


def _wait(idp: RunningIdp) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if idp.process.poll() is not None:
            raise AssertionError(f"the OpenID provider exited:\n{idp.log.read_text()}")
        try:
            with idp.http() as http:
                if http.get("/.well-known/openid-configuration").status_code == 200:
                    return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the OpenID provider did not start:\n{idp.log.read_text()}")


def sign_in(idp: RunningIdp, http: httpx.Client, params: dict[str, str], sub: str) -> Any:
    """Pick ``sub`` on the sign-in page: the provider's answer (a redirect, normally)."""
    return http.post("/authorize", data=params | {"sub": sub})
