"""The portal (``vir portal serve``) as a real HTTPS process, with the development
OpenID provider beside it and demo organisations that sign in through it."""

from __future__ import annotations

import datetime as dt
import os
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
from support.oidc import USERS, RunningIdp, running_idp, server_files, test_ca
from support.service import database_url, free_port, run_vir, stop_process

from vir.domain.organisations import Category, Oin, Organisation
from vir.services.onboarding import register_organisation
from vir.store.db import Database
from vir.store.migrate import upgrade

GP = Organisation(
    Oin("00000009000000000002"), "Huisartsenpraktijk Kralingen", Category.GP, "Rotterdam", "c-1"
)
SCHOOL = Organisation(
    Oin("00000009000000000001"), "Basisschool De Regenboog", Category.EDUCATION, "Rotterdam", "c-2"
)


@dataclass
class RunningPortal:
    url: str
    ca: str
    idp: RunningIdp
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def http(self) -> httpx.Client:
        """A client that trusts the portal and the provider (one test CA), keeps cookies
        and does not follow redirects."""
        context = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.url, verify=context, timeout=15)

    def database(self) -> Database:
        return Database.connect(self.database_url)

    def sign_in(self, http: httpx.Client, oin: str, sub: str) -> httpx.Response:
        """The whole redirect flow without a browser: the portal's answer to the callback."""
        start = http.get("/inloggen", params={"organisatie": oin})
        assert start.status_code == 303, start.text
        location = httpx.URL(start.headers["location"])
        params = dict(location.params)
        chosen = http.post(f"{self.idp.issuer}/authorize", data=params | {"sub": sub})
        assert chosen.status_code == 302, chosen.text
        return http.get(chosen.headers["location"])


@contextmanager
def running_portal(
    folder: Path, users: list[dict[str, Any]] | None = None, **env: str
) -> Iterator[RunningPortal]:
    """Database with the demo GP and school, each signing in through the development
    provider (the GP checked by an organisation claim and an assurance level), and the
    portal; ``env`` adds VIR_PORTAL_* settings."""
    ca = test_ca(folder)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    db_url = database_url(folder)
    upgrade(db_url)
    db = Database.connect(db_url)
    now = dt.datetime.now(dt.UTC)
    for org in (GP, SCHOOL):
        register_organisation(db, org, now)
    db.dispose()
    cert, key = server_files(ca[0], folder, "portal")
    base = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    base |= {"VIR_DATABASE_URL": db_url, "VIR_KEYS_DIR": str(folder / "keys")}
    run_vir(folder, base, "keys", "init")  # the key that seals the client secrets
    with running_idp(folder, (f"{url}/auth/callback",), ca, users) as idp:
        secret_file = folder / "client-secret"
        secret_file.write_text(idp.client_secret + "\n")
        secret_file.chmod(0o600)
        common = ("--issuer", idp.issuer, "--client-id", "vir-portal")
        run_vir(
            folder,
            base,
            *("org", "oidc", "--oin", str(GP.oin), *common),
            *("--client-secret-file", str(secret_file), "--organisation-claim", "vir_oin"),
            *("--acr", str(USERS[0]["acr"]), "--role", "professional=professional"),
        )
        run_vir(
            folder,
            base,
            *("org", "oidc", "--oin", str(SCHOOL.oin), *common),
            *("--client-secret-file", str(secret_file), "--organisation-claim", "vir_oin"),
        )
        portal_env = base | {
            "VIR_PORTAL_PORT": str(port),
            "VIR_PORTAL_PUBLIC_URL": url,
            "VIR_PORTAL_TLS_CERT": str(cert),
            "VIR_PORTAL_TLS_KEY": str(key),
            "VIR_PORTAL_OIDC_CA": str(ca[1]),
            "VIR_LOG_FORMAT": "text",
            **{f"VIR_PORTAL_{k.upper()}": v for k, v in env.items()},
        }
        log = folder / "portal.log"
        with log.open("ab") as out:
            process = launch.popen(
                [sys.executable, "-m", "vir.cli", "portal", "serve"],
                cwd=folder,
                env=portal_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        portal = RunningPortal(url, str(ca[1]), idp, db_url, process, log, portal_env)
        try:
            _wait(portal)
            yield portal
        finally:
            stop_process(process)


def _wait(portal: RunningPortal) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if portal.process.poll() is not None:
            raise AssertionError(f"the portal exited:\n{portal.log.read_text()}")
        try:
            with portal.http() as http:
                if http.get("/health").status_code == 200:
                    return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the portal did not start:\n{portal.log.read_text()}")
