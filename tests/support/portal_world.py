"""The whole development set-up behind the portal's professional pages, as real
processes: ``vir dev init`` (demo organisations, their sign-in through the development
OpenID provider), the key holder(s) and the index (``support.service``), the provider
(``python -m vir.devidp``) and ``vir portal serve``, each on a free port, all with
the development CA's certificates. The portal finds the key holders in the set-up's
endpoints.json, as under ``make run``."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support import launch, postgres
from support.service import RunningService, start_service, stop_processes

from vir.services.devsetup import DEMO_ORGANISATIONS
from vir.services.devsetup import MUNICIPALITY as _MUNICIPALITY

SCHOOL, GP, YOUTH_CARE, VEILIG_THUIS = (str(o.oin) for o in DEMO_ORGANISATIONS[:4])
MUNICIPALITY = str(_MUNICIPALITY.oin)
# The development provider's subjects (vir.portal.devsetup): "<OIN>-<subject>".
TEACHER, DOCTOR, CARER, COORDINATOR = (
    f"{SCHOOL}-leerkracht",
    f"{GP}-huisarts",
    f"{YOUTH_CARE}-jeugdhulp",
    f"{YOUTH_CARE}-coordinator",
)
PRIVACY_OFFICER = f"{MUNICIPALITY}-privacy"


# The marks of a test module of the portal's HTTP layer: an integration test, on SQLite
# only (the portal's services run on both databases in their own tests).
PORTAL_HTTP_MARKS = [
    pytest.mark.integration,
    pytest.mark.skipif(
        postgres.on_postgresql(),
        reason="the portal's HTTP layer; its services run on both databases elsewhere",
    ),
]


@dataclass
class PortalWorld:
    service: RunningService
    url: str
    idp_url: str
    portal: subprocess.Popen[bytes]
    idp: subprocess.Popen[bytes]
    portal_log: Path
    idp_log: Path

    @property
    def dev(self) -> Path:
        return self.service.dev

    @property
    def certificates(self) -> list[Path]:
        """The certificates the browser must trust: the servers' and the key holders'."""
        return [self.dev / "server.crt", *sorted(self.dev.glob("keyholder*.crt"))]

    def http(self) -> httpx.Client:
        """A client trusting the development CA, keeping cookies, not following redirects."""
        context = ssl.create_default_context(cafile=str(self.dev / "ca.crt"))
        return httpx.Client(base_url=self.url, verify=context, timeout=15)

    def sign_in(self, http: httpx.Client, oin: str, sub: str) -> str:
        """The redirect flow without a browser; the session's CSRF token."""
        start = http.get("/inloggen", params={"organisatie": oin})
        assert start.status_code == 303, start.text
        params = dict(httpx.URL(start.headers["location"]).params)
        chosen = http.post(f"{self.idp_url}/authorize", data=params | {"sub": sub})
        assert chosen.status_code == 302, chosen.text
        assert http.get(chosen.headers["location"]).status_code == 200
        return csrf_of(http.get("/").text)

    def logs(self) -> str:
        """Everything the portal, the provider, the index and the key holders wrote."""
        texts = [path.read_text(errors="replace") for path in (self.portal_log, self.idp_log)]
        texts.append(self.service.log())
        texts += [
            path.read_text(errors="replace")
            for path in sorted(self.service.root.glob("keyholder-*.log"))
        ]
        return "\n".join(texts)


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


@contextmanager
def portal_world(
    root: Path, *, threshold: str = "1-of-1", refusals_per_minute: int = 1000
) -> Iterator[PortalWorld]:
    """The index, its key holder(s), the development provider and the portal, each a
    process. The portal's cap on a person's audited refusals is raised far above its
    default (``refusals_per_minute``): hostile tests refuse one person many times a
    minute; ``test_portal_refusal_flood`` holds the default to its word."""
    # The portal's and the provider's ports stay bound while the index and the key
    # holders start (vir dev init needs them first): nothing else can take them.
    with socket.socket() as portal_socket, socket.socket() as idp_socket:
        portal_socket.bind(("127.0.0.1", 0))
        idp_socket.bind(("127.0.0.1", 0))
        port, idp_port = portal_socket.getsockname()[1], idp_socket.getsockname()[1]
        url = f"https://127.0.0.1:{port}"
        service = start_service(
            root,
            threshold=threshold,
            VIR_PORTAL_PUBLIC_URL=url,
            VIR_DEV_IDP_PORT=str(idp_port),
        )
    dev = service.dev
    processes: list[subprocess.Popen[bytes]] = []
    try:
        idp_log = root / "idp.log"
        with idp_log.open("ab") as out:
            idp = launch.popen(
                [
                    *(sys.executable, "-m", "vir.devidp", "--config", str(dev / "idp.json")),
                    *("--port", str(idp_port), "--cert", str(dev / "server.crt")),
                    *("--key", str(dev / "server.key")),
                ],
                cwd=root,
                env=service.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(idp)
        portal_log = root / "portal.log"
        env = service.env | {
            "VIR_PORTAL_PORT": str(port),
            "VIR_PORTAL_PUBLIC_URL": url,
            "VIR_PORTAL_TLS_CERT": str(dev / "server.crt"),
            "VIR_PORTAL_TLS_KEY": str(dev / "server.key"),
            "VIR_PORTAL_OIDC_CA": str(dev / "ca.crt"),
            "VIR_PORTAL_DEV_ENDPOINTS": str(dev / "endpoints.json"),
            "VIR_LOG_FORMAT": "text",
            "VIR_PORTAL_REFUSALS_PER_MINUTE": str(refusals_per_minute),
        }
        with portal_log.open("ab") as out:
            portal = launch.popen(
                [sys.executable, "-m", "vir.cli", "portal", "serve"],
                cwd=root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(portal)
        world = PortalWorld(
            service, url, f"https://127.0.0.1:{idp_port}", portal, idp, portal_log, idp_log
        )
        _wait(world)
        yield world
    finally:
        stop_processes([*processes, service.process, *service.keyholders])


def _wait(world: PortalWorld) -> None:
    deadline = time.monotonic() + 60
    context = ssl.create_default_context(cafile=str(world.dev / "ca.crt"))
    for process, url, log in (
        (world.idp, f"{world.idp_url}/.well-known/openid-configuration", world.idp_log),
        (world.portal, f"{world.url}/health", world.portal_log),
    ):
        while True:
            if process.poll() is not None:
                raise AssertionError(f"exited early:\n{log.read_text()}")
            try:
                if httpx.get(url, verify=context, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"did not start:\n{log.read_text()}")
            time.sleep(0.1)
