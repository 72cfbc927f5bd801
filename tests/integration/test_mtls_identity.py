"""Organisation identity over real mutual TLS against a running ``vir serve`` (the index)
and ``vir keyholder serve`` (the key holder): each refuses, answers and audits on its own,
from its own registry of organisations and certificates, into its own audit log."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.https import Reply, request
from support.service import RunningService, start_service

from vir.crypto import pki

EVALUATE = "/v1/oprf/evaluate"
# A valid element: the RFC 9497 test vector's blinded element.
BODY = json.dumps({"blinded_elements": ["YJoK5owVo89pA3ZkYTB-XIuy-V5-ZVDh_6Lcmd5RgDw"]}).encode()


@dataclass
class Target:
    """One of the two services, and a request every registered organisation may make."""

    name: str
    port: int
    method: str
    path: str
    body: bytes | None
    sql: Callable[..., list[Any]]
    ca: str

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def call(self, cert: tuple[str, str] | None = None) -> Reply:
        return request(self.port, self.ca, self.method, self.path, self.body, cert)

    def audit(self) -> list[dict[str, Any]]:
        return [
            json.loads(bytes(body))
            for (body,) in self.sql("SELECT body FROM audit_entries ORDER BY seq")
        ]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A deployment of this module's own. Refusals are counted per endpoint, network and
    minute: on the worker's shared service, another module's request without a
    certificate in the same minute went into the entry this module expects to see made."""
    running = start_service(tmp_path_factory.mktemp("mtls"))
    yield running
    running.stop()


@pytest.fixture(params=["index", "keyholder"])
def target(request: pytest.FixtureRequest, service: RunningService) -> Target:
    if request.param == "index":
        return Target(
            "index", service.port, "GET", "/v1/notifications", None, service.sql, service.ca
        )
    return Target(
        "keyholder",
        service.keyholder_port,
        "POST",
        EVALUATE,
        BODY,
        service.keyholder_sql,
        service.ca,
    )


def _write(tmp: Path, issued: pki.Issued, name: str) -> tuple[str, str]:
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    pki.save_issued(issued, cert, key)
    return str(cert), str(key)


def _ca(service: RunningService) -> pki.Issued:
    return pki.load_issued(service.dev / "ca.crt", service.dev / "ca.key")


def test_health_and_openapi_need_no_certificate(service: RunningService) -> None:
    assert request(service.port, service.ca, "GET", "/health").json() == {"status": "ok"}
    spec = request(service.port, service.ca, "GET", "/openapi.json").json()
    # The index evaluates nothing: the key holder does.
    assert "/v1/signals" in spec["paths"]
    assert not [p for p in spec["paths"] if p.startswith("/v1/oprf")]
    holder = service.keyholder_port
    assert request(holder, service.ca, "GET", "/health").json() == {"status": "ok"}
    spec = request(holder, service.ca, "GET", "/openapi.json").json()
    assert {"/v1/oprf/evaluate", "/v1/oprf/epochs"} <= spec["paths"].keys()
    assert "/v1/signals" not in spec["paths"]


def test_demo_organisations_are_accepted(target: Target, service: RunningService) -> None:
    assert len({o.category for o in service.orgs}) >= 3
    for org in service.orgs:
        reply = target.call((org.cert, org.key))
        assert reply.status == 200, reply.body


def test_no_certificate_is_refused_with_problem_and_audited(target: Target) -> None:
    before = len(target.audit())
    reply = target.call()
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["type"].endswith("client-certificate-required")
    assert {"type", "title", "status", "detail"} <= problem.keys()
    entries = target.audit()[before:]
    assert [(e["action"], e["outcome"], e["reason"]) for e in entries] == [
        ("request.refused", "refused", "no_client_certificate")
    ]
    # One refusal: an entry at once, with its count, minute and the peer's network.
    objects = entries[0]["objects"]
    assert objects.pop("minute") == entries[0]["occurred_at"][:16] + "Z"
    assert objects == {"endpoint": target.endpoint, "count": 1, "peer": "127.0.0.0/24"}


def test_certificate_from_another_ca_fails_the_handshake(
    service: RunningService, target: Target, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    foreign = pki.create_ca("someone else's CA", now)
    member = service.orgs[0]
    files = _write(
        tmp_path,
        pki.issue_client_certificate(
            foreign,
            member.oin,
            member.name,
            now - dt.timedelta(hours=1),
            now + dt.timedelta(days=1),
        ),
        "foreign",
    )
    with pytest.raises((ssl.SSLError, ConnectionError)):
        target.call(files)


def test_expired_certificate_is_refused_and_audited(
    service: RunningService, target: Target, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    member = service.org("gp")
    issued = pki.issue_client_certificate(
        _ca(service),
        member.oin,
        member.name,
        now - dt.timedelta(days=30),
        now - dt.timedelta(days=1),
    )
    files = _write(tmp_path, issued, "expired")
    before = len(target.audit())
    reply = target.call(files)
    assert reply.status == 401
    assert reply.json()["type"].endswith("certificate-not-valid-now")
    (entry,) = target.audit()[before:]
    assert entry["reason"] == "certificate_not_valid_now"
    assert entry["organisation"] == member.oin
    assert entry["certificate"] == pki.fingerprint(issued.cert)


def test_unknown_organisation_is_refused_and_audited(
    service: RunningService, target: Target, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    files = _write(
        tmp_path,
        pki.issue_client_certificate(
            _ca(service),
            "00000009999999999999",
            "Not Onboarded BV",
            now - dt.timedelta(hours=1),
            now + dt.timedelta(days=1),
        ),
        "stranger",
    )
    before = len(target.audit())
    reply = target.call(files)
    assert reply.status == 403
    assert reply.json()["type"].endswith("unknown-organisation")
    (entry,) = target.audit()[before:]
    assert (entry["organisation"], entry["reason"]) == (
        "00000009999999999999",
        "unknown_organisation",
    )


def test_unregistered_certificate_of_known_organisation_is_refused(
    service: RunningService, target: Target, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    member = service.org("education")
    files = _write(
        tmp_path,
        pki.issue_client_certificate(
            _ca(service),
            member.oin,
            member.name,
            now - dt.timedelta(hours=1),
            now + dt.timedelta(days=1),
        ),
        "second",
    )
    reply = target.call(files)
    assert reply.status == 403
    assert reply.json()["type"].endswith("unknown-certificate")


def test_org_add_issues_a_certificate_that_works(service: RunningService) -> None:
    out = service.root / "onboarded"
    result = service.vir(
        "org",
        "add",
        "--oin",
        "00000009000000000042",
        "--name",
        "Politie Rotterdam",
        "--category",
        "police",
        "--region",
        "Rotterdam",
        "--convenant",
        "RTM-2026-017",
        "--dev-dir",
        str(service.dev),
        "--out",
        str(out),
    )
    assert "registered Politie Rotterdam" in result.stdout
    assert (out / "00000009000000000042.key").stat().st_mode & 0o077 == 0
    files = (str(out / "00000009000000000042.crt"), str(out / "00000009000000000042.key"))
    reply = request(service.port, service.ca, "GET", "/v1/notifications", None, files)
    assert reply.status == 200
    listing = service.vir("org", "list").stdout
    assert "00000009000000000042  police" in listing
    assert "(convenant RTM-2026-017)" in listing
    # The key holder keeps its own registry: unknown there until its operator registers
    # the same certificate; then the organisation pseudonymises with it.
    holder = service.keyholder_port
    reply = request(holder, service.ca, "POST", EVALUATE, BODY, files)
    assert reply.status == 403
    assert reply.json()["type"].endswith("unknown-organisation")
    args = ["--oin", "00000009000000000042", "--name", "Politie Rotterdam"]
    args += ["--category", "police", "--region", "Rotterdam", "--convenant", "RTM-2026-017"]
    service.keyholder("org", "add", *args, "--cert", files[0])
    assert request(holder, service.ca, "POST", EVALUATE, BODY, files).status == 200
    assert "00000009000000000042  police" in service.keyholder("org", "list").stdout


def test_org_add_needs_a_convenant_to_report(service: RunningService) -> None:
    args = ["org", "add", "--oin", "00000009000000000044", "--name", "Halt Rijnmond"]
    args += ["--category", "halt", "--region", "Rotterdam", "--dev-dir", str(service.dev)]
    result = service.vir(*args, check=False)
    assert result.returncode == 2 and "convenant" in result.stderr
    assert "00000009000000000044" not in service.vir("org", "list").stdout


def test_org_add_rejects_an_unknown_category(service: RunningService) -> None:
    result = service.vir(
        "org",
        "add",
        "--oin",
        "00000009000000000043",
        "--name",
        "X",
        "--category",
        "bakery",
        "--region",
        "R",
        check=False,
    )
    assert result.returncode == 2
    assert "category" in result.stderr
