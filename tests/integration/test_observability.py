"""A real ``vir serve`` and ``vir keyholder serve``: a signal registered over mutual TLS
shows up in the index's /metrics, an evaluation in the key holder's, and each server's
log is JSON event lines with request ids and no identifiers."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import refclient
from support.https import Reply, request
from support.service import Org, RunningService, start_service

from vir import logs

pytestmark = pytest.mark.integration

BSN = "123456782"
REFS = ("OBS-LLN-000123", "OBS-HA-998877")


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("observability"))
    yield running
    running.stop()


def call(
    service: RunningService,
    org: Org | None,
    method: str,
    path: str,
    body: Any = None,
    *,
    port: int | None = None,
) -> Reply:
    """A request to the index (``port``: another server of the service, a key holder)."""
    data = json.dumps(body).encode() if body is not None else None
    cert = (org.cert, org.key) if org is not None else None
    return request(port or service.port, service.ca, method, path, data, cert)


def scrape(service: RunningService, path: str, *, port: int | None = None) -> Reply:
    """``GET path`` as a monitoring system: its own client certificate, from this host."""
    return request(port or service.port, service.ca, "GET", path, cert=service.monitor())


def signal(local_ref: str, person: str) -> dict[str, Any]:
    return {
        "local_ref": local_ref,
        "epoch": 1,
        "person": person,
        "professional": {"name": "Anna de Wit", "email": "anna@example.nl"},
    }


def log_lines(log: str) -> list[dict[str, Any]]:
    found = []
    for line in log.splitlines():
        # `vir serve` and `vir keyholder serve` say where they serve, in a plain line.
        if line.startswith(("vir: serving ", "vir: key holder serving ")):
            continue
        found.append(json.loads(line))  # anything else must be a JSON event line
    return found


def test_metrics_and_logs_of_a_real_service(observed: RunningService) -> None:
    school, other = observed.orgs[0], observed.orgs[1]
    blind = refclient.random_blind()
    blinded = refclient.blind(f"nl-bsn:{BSN}".encode(), blind)
    _epoch, (person,) = refclient.pseudonymise(
        observed.keyholder_url,
        observed.ca,
        school.cert,
        school.key,
        [f"nl-bsn:{BSN}".encode()],
        [blind],
    )
    pseudonym = refclient.b64url_encode(person)
    assert call(observed, school, "POST", "/v1/signals", signal(REFS[0], pseudonym)).status == 201
    assert call(observed, other, "POST", "/v1/signals", signal(REFS[1], pseudonym)).status == 201
    bad = call(observed, other, "DELETE", f"/v1/signals/{REFS[1]}?reason=bsn-{BSN}")
    assert bad.status == 422
    invalid = refclient.b64url_encode(b"\xff" * 32)
    body = {"blinded_elements": [invalid]}
    holder = observed.keyholder_port
    assert call(observed, school, "POST", "/v1/oprf/evaluate", body, port=holder).status == 422
    # The index evaluates nothing.
    assert call(observed, school, "POST", "/v1/oprf/evaluate", body).status == 404
    assert call(observed, None, "GET", f"/v1/matches?local_ref={REFS[0]}").status == 401
    given = str(uuid.uuid4())
    health = request(observed.port, observed.ca, "GET", "/health", headers={"X-Request-Id": given})
    assert health.headers["x-request-id"] == given

    # /metrics and /ready over mutual TLS, as every endpoint but /health and the
    # OpenAPI document: the monitoring system's own certificate, of no organisation.
    assert call(observed, None, "GET", "/metrics").status == 401
    assert call(observed, None, "GET", "/metrics", port=observed.keyholder_port).status == 401
    scraped = scrape(observed, "/metrics")
    assert scraped.status == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = scraped.body.decode()
    assert 'vir_http_requests_total{method="POST",route="/v1/signals",status="201"} 2' in text
    assert 'route="/v1/signals/{local_ref}",status="422"} 1' in text
    assert "vir_matches_created_total 1.0\n" in text
    assert 'vir_notifications_created_total{type="match.created"} 2.0\n' in text
    assert not re.search(r"vir_oprf_evaluated_elements_total [1-9]", text)
    assert 'vir_requests_refused_total{reason="no_client_certificate"} 1.0\n' in text
    assert 'vir_requests_refused_total{reason="invalid_input"} 1.0\n' in text
    # The process, the periodic jobs (refusals.flush ran at start) and the newest checkpoint.
    assert re.search(r"^process_resident_memory_bytes [0-9.e+]+$", text, re.MULTILINE)
    assert re.search(r"^python_info\{", text, re.MULTILINE)
    flushed = re.search(
        r'^vir_job_last_success_timestamp_seconds\{task="refusals.flush"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    assert flushed and 0 < float(flushed.group(1)) <= time.time()
    assert re.search(r"^vir_audit_checkpoint_last_timestamp_seconds \S+$", text, re.MULTILINE)
    assert not re.search(r"_created\{|_created [0-9]", text)  # no creation-time series
    ready = scrape(observed, "/ready")
    assert (ready.status, ready.body) == (200, b'{"status":"ready"}')

    # The key holder's metrics: what it evaluated and refused, never an element.
    held = scrape(observed, "/metrics", port=holder)
    assert held.status == 200
    held_text = held.body.decode()
    assert re.search(r"vir_oprf_evaluated_elements_total [1-9]", held_text)
    evaluate = 'vir_http_requests_total{method="POST",route="/v1/oprf/evaluate",status="%d"} 1'
    assert evaluate % 200 in held_text and evaluate % 422 in held_text

    deadline = time.monotonic() + 10  # the log is written as requests end
    while '"route":"/metrics"' not in observed.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    while '"route":"/metrics"' not in observed.keyholder_log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log, held_log = observed.log(), observed.keyholder_log()
    oins = [o.oin for o in observed.orgs]
    sent = refclient.b64url_encode(blinded)
    for secret in (BSN, pseudonym, invalid, sent, person.hex(), blinded.hex(), *REFS, *oins):
        for where in (text, log, held_text, held_log):
            assert secret not in where, secret
    for where in (log, held_log):
        assert "/v1/matches?" not in where
        assert "Traceback" not in where
    held_lines = log_lines(held_log)
    assert {"/v1/oprf/evaluate", "/metrics"} <= {
        line["route"] for line in held_lines if line["event"] == "http.request"
    }
    lines = log_lines(log)
    for line in [*lines, *held_lines]:
        assert (
            set(line)
            <= {"ts", "level", "event", "request_id"} | logs.CATALOGUE[line["event"]].fields
        ), line
    access = [line for line in lines if line["event"] == "http.request"]
    assert {"/v1/signals", "/v1/signals/{local_ref}", "/v1/matches", "/metrics"} <= {
        line["route"] for line in access
    }
    assert any(line["request_id"] == given and line["route"] == "/health" for line in access)
    assert any(line["event"] == "server.log" for line in lines)  # uvicorn's start-up lines


def test_metrics_are_not_served_to_other_addresses(tmp_path: Path) -> None:
    running = start_service(tmp_path / "closed", keyholders=False, VIR_METRICS_ALLOW="10.9.9.9")
    try:
        assert scrape(running, "/metrics").status == 403
        assert call(running, None, "GET", "/health").status == 200
    finally:
        running.stop()
