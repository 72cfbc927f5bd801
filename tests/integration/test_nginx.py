"""vir behind a real nginx: mutual TLS at nginx, two ``vir serve`` processes in proxy
mode (``VIR_TLS_MODE=proxy``) on one database, the certificate forwarded in
``Client-Cert``, believed only from the trusted proxy address (127.0.0.1). Clients
pseudonymise at the key holder (``vir keyholder serve``, its own mutual TLS) beside it.

Needs the nginx binary: ``scripts/ensure-nginx.sh`` (``make test`` runs it).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from support import postgres
from support.maximal import maximal_signal
from support.nginx import (
    PROXY_SOURCE,
    Nginx,
    ProxiedApp,
    nginx_binary,
    prepare,
    proxy_env,
    start_nginx,
    start_proxied_apps,
)
from support.service import run_vir, start_keyholders, stop_process

from vir.client.canonical import nl_bsn
from vir.client.connection import ServiceError, VirClient
from vir.client.demo import made_up_bsn
from vir.crypto import pki
from vir.store.db import Database

# A request of every organisation's that the index audits with its organisation.
PROBE = "/v1/notifications"
# Not in VIR_TRUSTED_PROXIES; Linux routes all of 127/8 over the loopback interface.
UNTRUSTED_SOURCE = "127.0.0.3"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        postgres.on_postgresql(),
        reason="the reverse proxy's TLS, not storage: runs once, on SQLite",
    ),
]


@dataclass
class Deployment:
    root: Path
    env: dict[str, str]
    apps: list[ProxiedApp]
    nginx: Nginx
    orgs: dict[str, dict[str, str]]  # by category, paths absolute
    keyholder_urls: list[str]

    @property
    def dev(self) -> Path:
        return self.root / "dev"

    def client(self, category: str) -> VirClient:
        org = self.orgs[category]
        return VirClient(
            self.nginx.url,
            self.dev / "ca.crt",
            Path(org["cert"]),
            Path(org["key"]),
            keyholders=self.keyholder_urls,
        )

    def audit(self) -> list[dict[str, Any]]:
        database = Database.connect(self.env["VIR_DATABASE_URL"])
        try:
            database.integrate()  # what the apps committed, as their integrators would
        finally:
            database.dispose()
        engine = create_engine(self.env["VIR_DATABASE_URL"], poolclass=NullPool)
        try:
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT body FROM audit_entries ORDER BY seq"))
                return [json.loads(bytes(body)) for (body,) in rows]
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    binary = nginx_binary()
    if binary is None:
        pytest.fail("nginx is not installed: run scripts/ensure-nginx.sh (make test does)")
    root = tmp_path_factory.mktemp("vir-nginx")
    env = proxy_env(root)
    prepare(root, env)
    holders, holder_urls = start_keyholders(root, env)
    apps: list[ProxiedApp] = []
    try:
        apps = start_proxied_apps(root, env, 2)
        nginx = start_nginx(root, apps, binary)
    except BaseException:
        for app in apps:
            app.stop()
        for holder in holders:
            stop_process(holder)
        raise
    orgs = {
        o["category"]: {
            **o,
            "cert": str(root / "dev" / o["cert"]),
            "key": str(root / "dev" / o["key"]),
        }
        for o in json.loads((root / "dev" / "orgs.json").read_text())
    }
    yield Deployment(root, env, apps, nginx, orgs, holder_urls)
    nginx.stop()
    for app in apps:
        app.stop()
    for holder in holders:
        stop_process(holder)


def _tls(deployment: Deployment, category: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(deployment.dev / "ca.crt"))
    if category is not None:
        org = deployment.orgs[category]
        context.load_cert_chain(org["cert"], org["key"])
    return context


def _via_nginx(
    deployment: Deployment, category: str | None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", deployment.nginx.port, context=_tls(deployment, category), timeout=30
    )
    try:
        conn.request("GET", PROBE, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def _direct(
    app: ProxiedApp, source: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Plain HTTP straight to one app process, from ``source`` (bypassing nginx)."""
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", PROBE, headers=headers)
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def _rfc9440(cert_file: str) -> str:
    cert = pki.load_certificate(Path(cert_file).read_bytes())
    der = ssl.PEM_cert_to_DER_cert(pki.cert_pem(cert).decode("ascii"))
    return ":" + base64.b64encode(der).decode("ascii") + ":"


def _fingerprint(cert_file: str) -> str:
    return pki.fingerprint(pki.load_certificate(Path(cert_file).read_bytes()))


def test_person_and_household_matches_through_nginx(deployment: Deployment) -> None:
    clients = {c: deployment.client(c) for c in ("education", "gp", "youth_care")}
    try:
        cursors = {c: clients[c].all_notifications()[1] for c in clients}
        family = {"child": made_up_bsn(), "sibling": made_up_bsn(), "mother": made_up_bsn()}
        today = dt.date.today()
        for category, who in (("education", "child"), ("gp", "child"), ("youth_care", "sibling")):
            client = clients[category]
            made = client.pseudonymise([nl_bsn(family[who]), nl_bsn(family["mother"])])
            person, mother = made.pseudonyms
            client.register_signal(
                {
                    "local_ref": f"nginx-{category}",
                    "epoch": made.epoch,
                    "person": person,
                    "parents": [mother],
                    "remove_on": (today + dt.timedelta(days=300)).isoformat(),
                    "professional": {"name": "Sanne de Jong", "email": "s.dejong@x.example"},
                }
            )
        seen = {
            c: [
                (item["type"], item["match"]["kind"])
                for item in clients[c].all_notifications(cursors[c])[0]
            ]
            for c in clients
        }
    finally:
        for client in clients.values():
            client.close()
    for category in ("education", "gp"):
        assert ("match.created", "person") in seen[category], seen
    assert any(kind == "household" for _type, kind in seen["youth_care"]), seen
    assert any(kind == "household" for _type, kind in seen["education"]), seen
    # Both app processes behind nginx served requests (least_conn spreads them).
    served_by = {line.split()[-1] for line in deployment.nginx.access_log().splitlines()}
    assert {f"127.0.0.1:{app.port}" for app in deployment.apps} <= served_by


def test_the_access_log_names_routes_never_a_local_ref_or_a_query(
    deployment: Deployment,
) -> None:
    ref = "LOGCHECK-2026-000777"
    with deployment.client("education") as client:
        made = client.pseudonymise([nl_bsn(made_up_bsn())])
        client.register_signal(
            {
                "local_ref": ref,
                "epoch": made.epoch,
                "person": made.pseudonyms[0],
                "professional": {"name": "Sanne de Jong", "email": "s.dejong@x.example"},
            }
        )
        client.matches(ref)  # GET /v1/matches?local_ref=...
        client.withdraw_signal(ref, "risk_ended")  # DELETE /v1/signals/...?reason=...
        with pytest.raises(ServiceError):  # a path that is no route, holding a BSN
            client.request("GET", "/v1/signals/123456782/x", params={"after": "123456782"})
    # nginx writes a line once the answer has gone out: wait for the last one.
    deadline = time.monotonic() + 10
    while '"GET {other}" 404 ' not in (log := deployment.nginx.access_log()):
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert '"DELETE /v1/signals/{local_ref}" 204 ' in log, log
    assert '"GET /v1/matches" 200 ' in log, log
    assert '"GET {other}" 404 ' in log, log
    for secret in (ref, "risk_ended", "reason", "local_ref=", "123456782", "?"):
        assert secret not in log, secret


def test_dot_references_reach_vir_percent_encoded_through_nginx(deployment: Deployment) -> None:
    """``proxy_pass`` without a URI part passes /v1/signals/%2E%2E on as the client sent
    it (nginx's own $uri resolves it to /v1/, which only picks the location)."""
    with deployment.client("education") as client:
        for ref, encoded in ((".", "%2E"), ("..", "%2E%2E")):
            made = client.pseudonymise([nl_bsn(made_up_bsn())])
            body = {
                "local_ref": ref,
                "epoch": made.epoch,
                "person": made.pseudonyms[0],
                "professional": {"name": "Sanne de Jong", "email": "s.dejong@x.example"},
            }
            assert client.register_signal(body)["local_ref"] == ref
            assert client.request("GET", f"/v1/signals/{encoded}").json()["local_ref"] == ref
            client.withdraw_signal(ref, "risk_ended")
            with pytest.raises(ServiceError) as gone:
                client.request("GET", f"/v1/signals/{encoded}")
            assert gone.value.status == 404


def _post_via_nginx(deployment: Deployment, path: str, body: bytes) -> tuple[int, str, bytes]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", deployment.nginx.port, context=_tls(deployment, "education"), timeout=60
    )
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        return reply.status, reply.getheader("content-type") or "", reply.read()
    finally:
        conn.close()


def test_the_batch_has_its_own_body_limit_at_nginx(deployment: Deployment) -> None:
    """500 of the largest valid signals pass nginx to POST /v1/signals/batch; every other
    path keeps 64k, refused by nginx itself with vir's problem+json."""
    items = [maximal_signal(n, "education", 1, dt.date.today()) for n in range(500)]
    batch = json.dumps({"signals": items}).encode()
    assert len(batch) > 10 * 65536
    status, media, body = _post_via_nginx(deployment, "/v1/signals/batch", batch)
    assert status == 200, body[:500]
    results = json.loads(body)["results"]
    assert len(results) == 500 and {r["status"] for r in results} == {201}
    for path, size in (("/v1/signals", 65536), ("/v1/signals/batch", 1024 * 1024)):
        status, media, body = _post_via_nginx(deployment, path, b" " * size + b"{}")
        assert status == 413, (path, body[:200])
        assert media == "application/problem+json"
        assert json.loads(body)["type"] == "urn:vir:problem:body-too-large"


def test_metrics_are_scraped_on_the_host_and_refused_through_nginx(
    deployment: Deployment,
) -> None:
    """The documented layout: nginx connects from 127.0.0.2 (VIR_NGINX_PROXY_SOURCE, in
    VIR_TRUSTED_PROXIES), a scraper on the host from 127.0.0.1 (VIR_METRICS_ALLOW).
    Before, both were 127.0.0.1, and the instance took the scraper for the proxy: 403."""
    scraper = http.client.HTTPConnection("127.0.0.1", deployment.apps[0].port, timeout=30)
    status, body = _get_metrics(scraper)
    assert status == 200 and b"vir_http_requests_total" in body
    through = http.client.HTTPSConnection(
        "127.0.0.1", deployment.nginx.port, context=_tls(deployment, "gp"), timeout=30
    )
    status, body = _get_metrics(through)
    assert status == 403 and b"metrics-not-allowed" in body


def _get_metrics(conn: http.client.HTTPConnection) -> tuple[int, bytes]:
    try:
        conn.request("GET", "/metrics")
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_a_client_supplied_client_cert_header_is_replaced_by_nginx(
    deployment: Deployment,
) -> None:
    # The education certificate on the TLS connection, the GP's in a forged header:
    # nginx overwrites the header, so the request is the school's, not the GP's.
    before = len(deployment.audit())
    forged = _rfc9440(deployment.orgs["gp"]["cert"])
    status, _headers, body = _via_nginx(deployment, "education", {"Client-Cert": forged})
    assert status == 200, body
    entries = deployment.audit()[before:]
    assert [(e["action"], e["organisation"]) for e in entries] == [
        ("notifications.read", deployment.orgs["education"]["oin"])
    ], entries


def test_no_client_certificate_is_refused_by_nginx_with_a_problem(
    deployment: Deployment,
) -> None:
    status, headers, body = _via_nginx(deployment, None)
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"] == "urn:vir:problem:client-certificate-required"


def test_forged_client_cert_straight_to_an_app_is_refused_and_audited(
    deployment: Deployment,
) -> None:
    gp = deployment.orgs["gp"]
    forged = _rfc9440(gp["cert"])
    for n, app in enumerate(deployment.apps):
        before = len(deployment.audit())
        # Each from a network of its own: refusals of one key in one minute are summed
        # (one entry at once, the rest when the minute is over), whichever app refused.
        source = f"127.0.{n + 1}.2"
        # X-Forwarded-For must not make the peer look like the proxy either.
        status, headers, body = _direct(
            app, source, {"Client-Cert": forged, "X-Forwarded-For": "127.0.0.1"}
        )
        assert status == 401, body
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["type"] == "urn:vir:problem:forwarded-certificate-not-trusted"
        (entry,) = deployment.audit()[before:]
        assert (entry["action"], entry["outcome"], entry["reason"]) == (
            "request.refused",
            "refused",
            "forwarded_certificate_not_trusted",
        )
        assert entry["objects"] == {
            "endpoint": f"GET {PROBE}",
            "count": 1,
            "minute": entry["occurred_at"][:16] + "Z",
            "peer": f"127.0.{n + 1}.0/24",
        }
        # Whom the forger tried to pass for.
        assert (entry["organisation"], entry["certificate"]) == (
            gp["oin"],
            _fingerprint(gp["cert"]),
        )
    # Without a header, from the same address: simply no certificate.
    status, _headers, body = _direct(deployment.apps[0], UNTRUSTED_SOURCE, {})
    assert status == 401
    assert json.loads(body)["type"] == "urn:vir:problem:client-certificate-required"


def test_the_trusted_proxy_address_is_believed_in_both_header_forms(
    deployment: Deployment,
) -> None:
    # What makes the proxy address trustworthy is that only nginx can use it: the
    # app ports must not be reachable from elsewhere (docs/trust-model.md).
    gp = deployment.orgs["gp"]
    pem = Path(gp["cert"]).read_text()
    escaped = "".join(c if c.isalnum() or c in "-_.~" else f"%{ord(c):02X}" for c in pem)
    for value in (_rfc9440(gp["cert"]), escaped):
        status, _headers, body = _direct(deployment.apps[1], PROXY_SOURCE, {"Client-Cert": value})
        assert status == 200, body


def test_revoked_certificate_is_refused_by_the_app_at_once_and_by_nginx_after_reload(
    deployment: Deployment,
) -> None:
    # Runs last in this module: the GP's certificate stays revoked.
    gp = deployment.orgs["gp"]
    fingerprint = _fingerprint(gp["cert"])
    assert _via_nginx(deployment, "gp")[0] == 200  # accepted, and cached by the app
    before = len(deployment.audit())
    result = run_vir(
        deployment.root,
        deployment.env,
        "org",
        "revoke",
        "--fingerprint",
        fingerprint,
        "--dev-dir",
        str(deployment.dev),
    )
    assert "is now revoked" in result.stdout
    crl = pki.load_crl(deployment.dev / "crl.pem")
    assert crl is not None
    assert pki.load_certificate(Path(gp["cert"]).read_bytes()).serial_number in pki.crl_serials(crl)
    (entry,) = deployment.audit()[before:]
    assert (entry["action"], entry["certificate"]) == ("admin.certificate_revoked", fingerprint)

    # nginx still has the old CRL: the app refuses at once (its cache is dropped when
    # the CRL file changes), through nginx and on each process.
    status, _headers, body = _via_nginx(deployment, "gp")
    assert status == 403, body
    assert json.loads(body)["type"] == "urn:vir:problem:certificate-revoked"
    for app in deployment.apps:
        status, _headers, body = _direct(app, PROXY_SOURCE, {"Client-Cert": _rfc9440(gp["cert"])})
        assert status == 403, body
        assert json.loads(body)["type"] == "urn:vir:problem:certificate-revoked"

    deployment.nginx.reload()
    deadline = time.monotonic() + 15
    while True:
        status, headers, body = _via_nginx(deployment, "gp")
        if json.loads(body)["type"] == "urn:vir:problem:certificate-refused":
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert status == 403
    assert headers["content-type"] == "application/problem+json"
    # Others are not affected.
    assert _via_nginx(deployment, "education")[0] == 200
