"""GET /metrics: Prometheus text format, counts after commit, and never an identifier."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support.inapp import in_app, realistic_run
from support.instore import T0, fresh_store, template

from vir.api.metrics import Counter, Histogram, Metrics, code_label
from vir.audit.chain import AuditEvent, Outcome
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
    counter = Counter("vir_x_total", 'Help with \\ and\nnewline "quoted".', ("reason",))
    counter.inc(reason='a"b\\c\nd')
    counter.inc(2, reason="plain")
    assert counter.lines() == [
        '# HELP vir_x_total Help with \\\\ and\\nnewline "quoted".',
        "# TYPE vir_x_total counter",
        'vir_x_total{reason="a\\"b\\\\c\\nd"} 1',
        'vir_x_total{reason="plain"} 2',
    ]
    with pytest.raises(ValueError):
        counter.inc(other="x")
    histogram = Histogram("vir_t_seconds", "Time.", ("route",), (0.1, 1.0))
    histogram.observe(0.05, route="/a")
    histogram.observe(0.5, route="/a")
    histogram.observe(7, route="/a")
    assert histogram.lines()[2:] == [
        'vir_t_seconds_bucket{route="/a",le="0.1"} 1',
        'vir_t_seconds_bucket{route="/a",le="1.0"} 2',
        'vir_t_seconds_bucket{route="/a",le="+Inf"} 3',
        'vir_t_seconds_sum{route="/a"} 7.55',
        'vir_t_seconds_count{route="/a"} 3',
    ]


def test_label_values_are_codes_or_other() -> None:
    assert code_label("match.created") == "match.created"
    assert code_label("no_client_certificate") == "no_client_certificate"
    for bad in (None, "", "00000009000000000100", "Anna", "a b", "x" * 65, 'a"b'):
        assert code_label(bad) == "other"


def test_counts_only_committed_transactions(tmp_path: Path) -> None:
    metrics = Metrics()
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        store.db.observe_commits(metrics.committed)

        def event(action: str, **objects: Any) -> AuditEvent:
            return audit_log.new_event(action, Outcome.SUCCESS, T0, objects=objects)

        with pytest.raises(RuntimeError), store.db.write() as session:
            audit_log.append(session, event("match.created", match="m1"))
            raise RuntimeError("rolled back")
        assert "vir_matches_created_total 0\n" in metrics.render()
        with store.db.write() as session:
            audit_log.append(session, event("match.created", match="m2"))
            audit_log.append(session, event("oprf.evaluate", elements=5, epoch=1))
            audit_log.append(session, event("consultation.made", consultation="c", results=0))
            audit_log.append(
                session, event("lifecycle.run", archived=2, erased=1, destroyed=0, as_of="x")
            )
            audit_log.append(session, event("notification.created", type="match.created"))
            assert "vir_matches_created_total 0\n" in metrics.render()  # not yet committed
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
        response = app.request("GET", "/metrics")
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
    assert value(found, "vir_oprf_evaluated_elements_total") == 1
    assert value(found, "vir_lifecycle_runs_total") == 1
    refused = found["vir_requests_refused_total"]
    assert refused['reason="invalid_input"'] >= 1
    assert refused['reason="no_client_certificate"'] >= 1
    for labels in (*found["vir_http_requests_total"], *refused):
        for part in re.findall(r'="([^"]*)"', labels):
            assert re.fullmatch(r"[A-Za-z0-9_./{}]+|\+Inf", part), labels


def test_metrics_only_for_allowed_peers(tmp_path: Path) -> None:
    with in_app(tmp_path, metrics_allow="10.1.2.0/24") as app:
        assert app.request("GET", "/metrics", peer="10.1.2.3").status_code == 200
        refused = app.request("GET", "/metrics", peer="127.0.0.1")
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert app.request("GET", "/metrics", peer="testclient").status_code == 403
        assert "/metrics" not in app.request("GET", "/openapi.json").json()["paths"]


def test_metrics_refused_through_the_reverse_proxy(tmp_path: Path) -> None:
    with in_app(
        tmp_path, tls_mode="proxy", trusted_proxies="127.0.0.1", metrics_allow="127.0.0.0/8"
    ) as app:
        assert app.request("GET", "/metrics", peer="127.0.0.1").status_code == 403
        assert app.request("GET", "/metrics", peer="127.0.0.2").status_code == 200


def test_time_is_measured_per_route_template(tmp_path: Path) -> None:
    with in_app(tmp_path) as app:
        for _ in range(3):
            assert app.request("GET", "/health").status_code == 200
        found = parse(app.request("GET", "/metrics").text)
    buckets = found["vir_http_request_duration_seconds_bucket"]
    assert buckets['route="/health",le="+Inf"'] == 3
    assert found["vir_http_requests_total"]['method="GET",route="/health",status="200"'] == 3
    assert found["vir_http_request_duration_seconds_sum"]['route="/health"'] > 0
