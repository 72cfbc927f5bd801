"""GET /metrics: Prometheus text format, counts after commit, and never an identifier."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter, Histogram
from support.inapp import in_app, in_keyholder, keyholder_run, realistic_run
from support.instore import T0, fresh_store, template

from vir import logs
from vir.api.lifespan import Once, Periodic, periodic_lifespan
from vir.api.metrics import JOBS, Metrics, code_label
from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.services.refusals import Recorded
from vir.store import audit_log

_SAMPLE = re.compile(r"^([a-z_]+)(\{(.*)\})? (\S+)$")


def parse(text: str) -> dict[str, dict[str, float]]:
    """``{metric: {label-text: value}}``; checks every line's shape on the way."""
    found: dict[str, dict[str, float]] = {}
    types: dict[str, str] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, line
        name = match.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, line
        found.setdefault(name, {})[match.group(3) or ""] = float(match.group(4))
    return found


def value(metrics: dict[str, dict[str, float]], name: str, labels: str = "") -> float:
    return metrics.get(name, {}).get(labels, 0.0)


def test_exposition_format_and_escaping() -> None:
    metrics = Metrics(process=False)
    counter = Counter(
        "vir_x_total",
        'Help with \\ and\nnewline "quoted".',
        ("reason",),
        registry=metrics.registry,
    )
    counter.labels(reason='a"b\\c\nd').inc()
    counter.labels(reason="plain").inc(2)
    text = metrics.render()
    assert (
        '# HELP vir_x_total Help with \\\\ and\\nnewline "quoted".\n'
        "# TYPE vir_x_total counter\n"
        'vir_x_total{reason="a\\"b\\\\c\\nd"} 1.0\n'
        'vir_x_total{reason="plain"} 2.0\n'
    ) in text
    assert not re.search(r"_created(\{| )", text)  # no creation-time series per label set
    with pytest.raises(ValueError):
        counter.labels(other="x")
    histogram = Histogram(
        "vir_t_seconds", "Time.", ("route",), buckets=(0.1, 1.0), registry=metrics.registry
    )
    histogram.labels(route="/a").observe(0.05)
    histogram.labels(route="/a").observe(0.5)
    histogram.labels(route="/a").observe(7)
    found = parse(metrics.render())
    assert found["vir_t_seconds_bucket"] == {
        'le="0.1",route="/a"': 1,
        'le="1.0",route="/a"': 2,
        'le="+Inf",route="/a"': 3,
    }
    assert found["vir_t_seconds_sum"] == {'route="/a"': 7.55}
    assert found["vir_t_seconds_count"] == {'route="/a"': 3}


def test_registries_are_per_app() -> None:
    """create_app may run many times in one process: nothing is registered globally."""
    first, second = Metrics(), Metrics()
    first.refused_request("invalid_input", Recorded.AUDITED)
    assert 'vir_requests_refused_total{reason="invalid_input"} 1.0' in first.render()
    assert "vir_requests_refused_total{" not in second.render()
    for name in ("process_cpu_seconds_total", "process_start_time_seconds", "python_info"):
        assert name in first.render(), name


def test_job_and_checkpoint_gauges() -> None:
    moments: list[dt.datetime | None] = [None]
    metrics = Metrics(lambda: moments[0], process=False)
    metrics.job_scheduled("lifecycle.run")
    metrics.job_succeeded("audit.checkpoint", 1_700_000_000.5)
    found = parse(metrics.render())
    jobs = found["vir_job_last_success_timestamp_seconds"]
    assert jobs == {'task="lifecycle.run"': 0, 'task="audit.checkpoint"': 1_700_000_000.5}
    assert value(found, "vir_audit_checkpoint_last_timestamp_seconds") == 0
    moments[0] = dt.datetime(2026, 12, 1, 9, 0)  # as stored: naive UTC
    found = parse(metrics.render())
    expected = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC).timestamp()
    assert value(found, "vir_audit_checkpoint_last_timestamp_seconds") == expected

    def broken() -> dt.datetime | None:
        raise OSError("database gone")

    failing = Metrics(broken, process=False)
    assert "vir_audit_checkpoint_last_timestamp_seconds " not in failing.render()


def test_lifespan_tells_the_metrics_of_successful_runs() -> None:
    metrics = Metrics(process=False)

    def fails() -> None:
        raise RuntimeError("busy")

    lifespan = periodic_lifespan(
        [
            Periodic("audit.checkpoint", 0.01, lambda: None),
            Periodic("lifecycle.run", 0.01, fails),
            Periodic("refusals.flush", 0, lambda: None),  # switched off: no gauge
        ],
        observer=metrics,
    )

    async def run() -> None:
        async with lifespan(object()):
            await asyncio.sleep(0.2)

    before = time.time()
    asyncio.run(run())
    jobs = parse(metrics.render())["vir_job_last_success_timestamp_seconds"]
    assert jobs['task="audit.checkpoint"'] >= before
    assert jobs['task="lifecycle.run"'] == 0  # scheduled, never succeeded
    assert 'task="refusals.flush"' not in jobs


def test_only_jobs_switched_on_get_a_gauge_from_their_runs_at_start_and_stop() -> None:
    # A run at start or stop (starting a thread) is no job: a gauge it set would stay at
    # the process's start time and look like a stuck job to an alert.
    metrics = Metrics(process=False)
    lifespan = periodic_lifespan(
        [
            Periodic("refusals.flush", 3600, lambda: None),
            Periodic("lifecycle.run", 0, lambda: None),
        ],
        [Once("refusals.flush", lambda: None), Once("delivery.start", lambda: None)],
        [Once("delivery.stop", lambda: None), Once("lifecycle.run", lambda: None)],
        observer=metrics,
    )

    async def run() -> None:
        async with lifespan(object()):
            pass

    before = time.time()
    asyncio.run(run())
    jobs = parse(metrics.render())["vir_job_last_success_timestamp_seconds"]
    assert set(jobs) == {'task="refusals.flush"'}
    assert jobs['task="refusals.flush"'] >= before


@pytest.mark.parametrize("holder", [False, True], ids=["index", "keyholder"])
def test_the_integrators_gauge_moves_on_a_quiet_system(tmp_path: Path, holder: bool) -> None:
    # Nothing to integrate is no failure: the thread's gauge keeps moving after start, so
    # that a gauge standing still means the thread is stuck or failing.
    with (in_keyholder if holder else in_app)(tmp_path) as app:
        metrics = app.app.state.metrics

        async def run() -> tuple[float, str]:
            async with app.app.router.lifespan_context(app.app):
                started = time.time()
                await asyncio.sleep(0.8)
                return started, metrics.render()  # while running: not the pass at stop

        started, text = asyncio.run(run())
        jobs = parse(text)["vir_job_last_success_timestamp_seconds"]
    assert jobs['task="audit.integrate"'] > started
    assert set(jobs) <= {f'task="{job}"' for job in JOBS}
    assert 'task="delivery.start"' not in jobs


def test_label_values_are_codes_or_other() -> None:
    assert code_label("match.created") == "match.created"
    assert code_label("no_client_certificate") == "no_client_certificate"
    for bad in (None, "", "00000009000000000100", "Anna", "a b", "x" * 65, 'a"b'):
        assert code_label(bad) == "other"


def test_counts_only_committed_transactions(tmp_path: Path) -> None:
    metrics = Metrics()
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        store.db.observe_commits(metrics.committed)

        def event(action: Action, **objects: Any) -> AuditEvent:
            return audit_log.new_event(action, Outcome.SUCCESS, T0, objects=objects)

        with pytest.raises(RuntimeError), store.db.write() as session:
            audit_log.append(session, event(Action.MATCH_CREATED, match="m1"))
            raise RuntimeError("rolled back")
        assert "vir_matches_created_total 0.0\n" in metrics.render()
        with store.db.write() as session:
            audit_log.append(session, event(Action.MATCH_CREATED, match="m2"))
            audit_log.append(session, event(Action.OPRF_EVALUATE, elements=5, epoch=1))
            audit_log.append(session, event(Action.CONSULTATION_MADE, consultation="c", results=0))
            audit_log.append(
                session, event(Action.LIFECYCLE_RUN, archived=2, erased=1, destroyed=0, as_of="x")
            )
            audit_log.append(session, event(Action.NOTIFICATION_CREATED, type="match.created"))
            assert "vir_matches_created_total 0.0\n" in metrics.render()  # not yet committed
    found = parse(metrics.render())
    assert value(found, "vir_matches_created_total") == 1
    assert value(found, "vir_oprf_evaluated_elements_total") == 5
    assert value(found, "vir_consultations_total") == 1
    assert value(found, "vir_lifecycle_runs_total") == 1
    assert value(found, "vir_lifecycle_signals_total", 'outcome="archived"') == 2
    assert value(found, "vir_lifecycle_signals_total", 'outcome="erased"') == 1
    assert value(found, "vir_notifications_created_total", 'type="match.created"') == 1
    assert value(found, "vir_notifications_created_total", 'type="match.left"') == 0
    assert value(found, "vir_audit_events_total", 'action="match.created",outcome="success"') == 1


def test_a_realistic_run_is_counted_without_identifiers(tmp_path: Path) -> None:
    with in_app(tmp_path) as app:
        secrets = realistic_run(app)
        response = app.scrape("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    found = parse(text)
    for kind, values in secrets.items():
        for secret in values:
            assert secret not in text, (kind, secret)
    assert secrets["ids"], "the run made signals and matches"
    requests = found["vir_http_requests_total"]
    assert requests['method="POST",route="/v1/signals",status="201"'] == 2
    assert requests['method="DELETE",route="/v1/signals/{local_ref}",status="422"'] == 1
    assert requests['method="DELETE",route="/v1/signals/{local_ref}",status="401"'] == 1
    assert requests['method="GET",route="unmatched",status="404"'] == 1
    latency = found["vir_http_request_duration_seconds_count"]
    assert latency['route="/v1/signals"'] == 2
    assert value(found, "vir_matches_created_total") == 1
    assert value(found, "vir_notifications_created_total", 'type="match.created"') == 2
    assert value(found, "vir_oprf_evaluated_elements_total") == 0  # the index evaluates nothing
    assert value(found, "vir_lifecycle_runs_total") == 1
    refused = found["vir_requests_refused_total"]
    assert refused['reason="invalid_input"'] >= 1
    assert refused['reason="no_client_certificate"'] >= 1
    for labels in (*found["vir_http_requests_total"], *refused):
        for part in re.findall(r'="([^"]*)"', labels):
            assert re.fullmatch(r"[A-Za-z0-9_./{}]+|\+Inf", part), labels
    jobs = found.get("vir_job_last_success_timestamp_seconds", {})
    assert set(jobs) <= {f'task="{job}"' for job in JOBS}
    assert "vir_audit_checkpoint_last_timestamp_seconds" in found
    assert "process_resident_memory_bytes" in found


def test_a_realistic_key_holder_run_is_counted_without_identifiers(tmp_path: Path) -> None:
    with in_keyholder(tmp_path) as holder:
        secrets = keyholder_run(holder)
        response = holder.scrape("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    found = parse(text)
    for kind, values in secrets.items():
        for secret in values:
            assert secret not in text, (kind, secret)
    assert secrets["ids"], "the run was audited"
    requests = found["vir_http_requests_total"]
    assert requests['method="POST",route="/v1/oprf/evaluate",status="200"'] == 1
    assert requests['method="POST",route="/v1/oprf/evaluate",status="422"'] == 1
    assert requests['method="POST",route="/v1/oprf/evaluate",status="401"'] == 1
    assert requests['method="GET",route="/v1/oprf/epochs",status="200"'] == 1
    assert requests['method="GET",route="unmatched",status="404"'] == 1
    # three POSTs and the PUT (405): timed per route template, whatever the method
    assert found["vir_http_request_duration_seconds_count"]['route="/v1/oprf/evaluate"'] == 4
    assert value(found, "vir_oprf_evaluated_elements_total") == 1
    assert value(found, "vir_matches_created_total") == 0
    refused = found["vir_requests_refused_total"]
    assert refused['reason="invalid_element"'] >= 1
    assert refused['reason="no_client_certificate"'] >= 1
    for labels in (*found["vir_http_requests_total"], *refused):
        for part in re.findall(r'="([^"]*)"', labels):
            assert re.fullmatch(r"[A-Za-z0-9_./{}]+|\+Inf", part), labels
    jobs = found.get("vir_job_last_success_timestamp_seconds", {})
    assert set(jobs) <= {f'task="{job}"' for job in JOBS}
    assert "process_resident_memory_bytes" in found


def test_metrics_only_for_allowed_peers(tmp_path: Path) -> None:
    with in_app(tmp_path, metrics_allow="10.1.2.0/24") as app:
        assert app.scrape("/metrics", peer="10.1.2.3").status_code == 200
        refused = app.scrape("/metrics", peer="127.0.0.1")
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert app.scrape("/metrics", peer="testclient").status_code == 403
        assert "/metrics" not in app.request("GET", "/openapi.json").json()["paths"]


def test_metrics_refused_through_the_reverse_proxy(tmp_path: Path) -> None:
    with in_app(
        tmp_path, tls_mode="proxy", trusted_proxies="127.0.0.1", metrics_allow="127.0.0.0/8"
    ) as app:
        # The instance's port is internal: a local scraper needs no certificate there.
        assert app.request("GET", "/metrics", peer="127.0.0.1").status_code == 403
        assert app.request("GET", "/metrics", peer="127.0.0.2").status_code == 200


@pytest.mark.parametrize("service", ["index", "keyholder"])
def test_metrics_need_a_client_certificate_with_the_embedded_server(
    tmp_path: Path, service: str
) -> None:
    """API-CONTRACT.md: mutual TLS on every endpoint but /health and the OpenAPI document.
    Any certificate the TLS layer verified will do (the monitoring system's own)."""
    made = in_app if service == "index" else in_keyholder
    with made(tmp_path, metrics_allow="127.0.0.1") as app:
        app.anonymous()
        for peer in ("127.0.0.1", "10.9.9.9"):  # the certificate first, then the address
            refused = app.request("GET", "/metrics", peer=peer)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            problem = refused.json()
            assert problem["type"] == "urn:vir:problem:client-certificate-required"
            assert problem["status"] == 401
        assert app.scrape("/metrics").status_code == 200
        assert app.scrape("/metrics", peer="10.9.9.9").status_code == 403


def test_time_is_measured_per_route_template(tmp_path: Path) -> None:
    with in_app(tmp_path) as app:
        for _ in range(3):
            assert app.request("GET", "/health").status_code == 200
        found = parse(app.scrape("/metrics").text)
    buckets = found["vir_http_request_duration_seconds_bucket"]
    assert buckets['le="+Inf",route="/health"'] == 3
    assert found["vir_http_requests_total"]['method="GET",route="/health",status="200"'] == 3
    assert found["vir_http_request_duration_seconds_sum"]['route="/health"'] > 0


@pytest.mark.parametrize("holder", [False, True], ids=["index", "keyholder"])
def test_every_route_is_counted_under_its_template(
    tmp_path: Path, holder: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # FastAPI's own /openapi.json and requests refused before routing (the body checks)
    # belong to a route too: only a path that is no route's is "unmatched".
    post = "/v1/oprf/evaluate" if holder else "/v1/signals"
    deep = b"[" * 100 + b"]" * 100
    with (in_keyholder if holder else in_app)(tmp_path) as app, caplog.at_level("INFO"):
        assert app.request("GET", "/openapi.json").status_code == 200
        assert app.request("GET", "/v1/openapi.json").status_code == 200
        assert app.request("GET", "/health").status_code == 200
        headers = {"content-type": "application/json"}
        assert app.request("POST", post, content=deep, headers=headers).status_code == 400
        assert app.request("POST", post, content=b"x" * 70_000, headers=headers).status_code == 413
        assert app.request("POST", "/nowhere", content=b"x" * 70_000).status_code == 413
        assert app.request("GET", "/nowhere").status_code == 404
        requests = parse(app.scrape("/metrics").text)["vir_http_requests_total"]
    assert requests['method="GET",route="/openapi.json",status="200"'] == 1
    assert requests['method="GET",route="/v1/openapi.json",status="200"'] == 1
    assert requests['method="GET",route="/health",status="200"'] == 1
    assert requests[f'method="POST",route="{post}",status="400"'] == 1
    assert requests[f'method="POST",route="{post}",status="413"'] == 1
    assert requests['method="POST",route="unmatched",status="413"'] == 1
    assert requests['method="GET",route="unmatched",status="404"'] == 1
    assert not [labels for labels in requests if "unmatched" in labels and "404" not in labels][1:]
    logged = [r for r in caplog.records if r.getMessage() == "http.request"]
    routes = [logs.record_fields(r)["route"] for r in logged]
    assert routes[:7] == [
        "/openapi.json",
        "/v1/openapi.json",
        "/health",
        post,
        post,
        "unmatched",
        "unmatched",
    ]
