"""The privacy report counts evaluations where they now happen: at the key holder.

The index no longer evaluates, so its own log has no ``oprf.evaluate`` entries; the
report reads the key holder's hourly counts (``GET /v1/oprf/usage``) with the index's
own certificate (role ``index_service``). When the key holder cannot be asked, the
report says so (``evaluation_counts.available`` false, and a sentence in the PDF)
instead of showing zero evaluations.
"""

from __future__ import annotations

import datetime as dt
import io
import ssl
from collections.abc import Iterator

import httpx
import pytest
from pypdf import PdfReader
from support.service import RunningService, free_ports, start_service

from vir.client.canonical import nl_bsn
from vir.client.connection import ServiceError, VirClient

TODAY = dt.datetime.now(dt.UTC).date()
# The day before to the day after (UTC) of when the module was loaded: a run that passes
# midnight between loading and evaluating still counts the evaluations in the period.
PERIOD = {
    "from": (TODAY - dt.timedelta(days=1)).isoformat(),
    "to": (TODAY + dt.timedelta(days=2)).isoformat(),
}
GP = "00000009000000000002"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    port = free_ports(1)
    running = start_service(
        tmp_path_factory.mktemp("counts"),
        VIR_KEYHOLDER_PORT=str(port),
        VIR_USAGE_KEYHOLDERS=f"https://127.0.0.1:{port}",
    )
    try:
        yield running
    finally:
        running.stop()


def _evaluations(report: dict[str, object], oin: str) -> int:
    volumes = report["volumes"]
    assert isinstance(volumes, list)
    return sum(int(v["evaluations"]) for v in volumes if v["oin"] == oin)


def test_the_report_counts_the_key_holders_evaluations(service: RunningService) -> None:
    with VirClient.from_dev("gp", service.dev) as gp:
        gp.pseudonymise([nl_bsn("123456782"), nl_bsn("999999990"), nl_bsn("111222333")])
        gp.pseudonymise([nl_bsn("123456782")])
    with VirClient.from_dev("national_privacy_officer", service.dev) as officer:
        report = officer.request("GET", "/v1/privacy/reports/events", params=PERIOD).json()
    counts = report["evaluation_counts"]
    assert (counts["available"], counts["method"], counts["answered"]) == (True, "at_least", 1)
    assert _evaluations(report, GP) == 4
    # The index's own log has none: it evaluated nothing.
    assert service.sql("SELECT count(*) FROM audit_entries WHERE action = 'oprf.evaluate'") == [
        (0,)
    ]


def test_only_the_index_operator_reads_the_counts(service: RunningService) -> None:
    with VirClient.from_dev("gp", service.dev) as gp, pytest.raises(ServiceError) as refused:
        gp.request("GET", "/v1/oprf/usage", params=PERIOD, via=gp._holders[0])
    assert refused.value.status == 403
    context = ssl.create_default_context(cafile=service.ca)
    context.load_cert_chain(service.dev / "index-service.crt", service.dev / "index-service.key")
    with httpx.Client(base_url=service.keyholder_urls[0], verify=context) as http:
        answer = http.get("/v1/oprf/usage", params=PERIOD)
        assert answer.status_code == 200
        assert {item["oin"] for item in answer.json()["items"]} >= {GP}
        assert (
            http.get(
                "/v1/oprf/usage", params={"from": "2026-01-02", "to": "2026-01-01"}
            ).status_code
            == 422
        )


def test_without_the_key_holder_the_report_says_the_counts_are_missing(
    service: RunningService,
) -> None:
    for holder in service.keyholders:
        holder.terminate()
        holder.wait(timeout=10)
    with VirClient.from_dev("national_privacy_officer", service.dev) as officer:
        report = officer.request("GET", "/v1/privacy/reports/events", params=PERIOD).json()
        pdf = officer.request(
            "GET", "/v1/privacy/reports/events", params=PERIOD | {"format": "pdf"}
        ).content
    counts = report["evaluation_counts"]
    assert (counts["source"], counts["available"], counts["reason"]) == (
        "keyholder",
        False,
        "unreachable",
    )
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "sleutelhouder was niet bereikbaar" in " ".join(text.split())
