"""Hostile input: schemathesis against the OpenAPI document the real service serves.

A ``vir serve`` of its own (so the generated signals never meet other tests' data) is
fuzzed over real HTTPS with real client certificates: the demo organisations for the
signal endpoints, the Veilig Thuis certificate for consultations, the coordinator for
``PUT /v1/organisation/coordinator`` and the municipality's privacy officer for
``/v1/privacy/*``. Every operation gets schemathesis's examples, coverage (boundary and
type-confusion cases) and fuzzing phases, in positive and negative mode, derandomized
so CI repeats the same requests. Every answer must be no 5xx and exactly what the served
document says: a documented status code, its media type, its headers and its schema.
``test_totals`` prints how many requests were sent, per status code.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support import postgres
from support.https import Reply, request
from support.service import RunningService, start_service

pytestmark = pytest.mark.integration

# Fuzzed examples per operation and generation mode, on top of the examples and the
# coverage phase's deterministic boundary cases (NUL bytes, integer bounds, wrong types,
# missing fields), which both databases get in full. What differs between the databases
# lies at those boundaries, and generating requests is half of this module's time, so
# PostgreSQL gets half the fuzzing.
ON_SQLITE = postgres.backend() == "sqlite"
MAX_EXAMPLES = 50 if ON_SQLITE else 25
# A floor for the total, so a change that quietly stops generating requests fails here.
MIN_REQUESTS = 2000 if ON_SQLITE else 1500
SEED = 20260501


def rejected_or_too_large(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """``negative_data_rejection``, with 413 counted as a rejection too: a schema-violating
    body over ``VIR_MAX_BODY_BYTES`` (a batch of more than 500 large items, say) is
    refused by the body limit before it is read, as it should be."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    rejected_or_too_large,
]

SENT: Counter[tuple[str, int]] = Counter()
MODES: Counter[str] = Counter()


@dataclass(frozen=True)
class Identity:
    cert: str
    key: str


@dataclass
class Callers:
    """Who calls which operation, with a kept-alive session per certificate."""

    ca: str
    organisation: Identity
    veilig_thuis: Identity
    coordinator: Identity
    privacy_officer: Identity
    sessions: dict[Identity, requests.Session]

    def identity(self, method: str, path: str) -> Identity:
        if path.startswith("/v1/privacy/"):
            return self.privacy_officer
        if path == "/v1/consultations":
            return self.veilig_thuis
        if path == "/v1/organisation/coordinator":
            return self.coordinator
        return self.organisation

    def session(self, who: Identity) -> requests.Session:
        if who not in self.sessions:
            self.sessions[who] = requests.Session()
        return self.sessions[who]


@pytest.fixture(scope="module")
def hostile_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    # The index alone: nothing fuzzed here reaches a key holder.
    running = start_service(tmp_path_factory.mktemp("hostile"), keyholders=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def callers(hostile_service: RunningService) -> Iterator[Callers]:
    dev = hostile_service.dev

    def identity(entry: dict[str, Any]) -> Identity:
        return Identity(str(dev / entry["cert"]), str(dev / entry["key"]))

    orgs = {o["category"]: o for o in json.loads((dev / "orgs.json").read_text())}
    roles = {r["role"]: r for r in json.loads((dev / "roles.json").read_text())}
    made = Callers(
        ca=hostile_service.ca,
        organisation=identity(orgs["youth_care"]),
        veilig_thuis=identity(orgs["veilig_thuis"]),
        coordinator=identity(roles["coordinator"]),
        privacy_officer=identity(roles["privacy_officer"]),
        sessions={},
    )
    yield made
    for session in made.sessions.values():
        session.close()


@pytest.fixture(scope="module")
def served_schema(hostile_service: RunningService) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "allow-x00": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )
    return schemathesis.openapi.from_url(
        f"{hostile_service.url}/openapi.json", config=config, verify=hostile_service.ca
    )


@pytest.fixture(autouse=True)
def _node_id_shim(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read and write ``node._nodeid``, which pytest 9.2
    no longer has (``nodeid`` is computed from ``_id``): give the node the attribute."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("served_schema")


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    print_blob=False,
)
def test_hostile_input(
    case: schemathesis.Case, hostile_service: RunningService, callers: Callers
) -> None:
    who = callers.identity(case.method, case.path)
    response = case.call(
        base_url=hostile_service.url,
        session=callers.session(who),
        verify=callers.ca,
        cert=(who.cert, who.key),
        timeout=30,
    )
    SENT[(case.operation.label, response.status_code)] += 1
    if case.meta is not None:
        MODES[case.meta.generation.mode.value] += 1
    case.validate_response(response, checks=CHECKS)


def test_totals(record_property: Callable[[str, object], None]) -> None:
    """The numbers docs/api.md quotes: requests per operation and status, and the total
    (printed at the end of the run, by tests/conftest.py, from whichever worker ran it)."""
    if not SENT:
        pytest.skip("test_hostile_input did not run in this session")
    total = sum(SENT.values())
    lines = [f"schemathesis: {total} requests ({dict(sorted(MODES.items()))})"]
    operations = sorted({label for label, _ in SENT})
    for label in operations:
        statuses = {status: n for (op, status), n in sorted(SENT.items()) if op == label}
        lines.append(f"  {label}: {sum(statuses.values())} {statuses}")
    record_property("terminal_summary", "\n".join(lines))
    assert not [key for key in SENT if key[1] >= 500]
    assert total >= MIN_REQUESTS


# Regressions: what fuzzing and probing found, pinned down one by one.


def _problem_fields(reply: Reply) -> list[str]:
    assert reply.headers["content-type"] == "application/problem+json", reply.body
    return [item["field"] for item in reply.json().get("errors", [])]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        # Were 500s: the number overflowed the database's integers (SQLite 64-bit,
        # PostgreSQL 32-bit).
        ("/v1/audit/proof/inclusion?seq=1&size=99999999999999999999", "size"),
        ("/v1/audit/proof/consistency?from=1&to=99999999999999999999", "to"),
        ("/v1/audit/proof/inclusion?seq=1&size=2147483648", "size"),
        ("/v1/audit/proof/consistency?from=1&to=2147483648", "to"),
        ("/v1/audit/proof/inclusion?seq=9223372036854775808", "seq"),
        ("/v1/audit/proof/consistency?from=9223372036854775808", "from"),
        # Reached the database as text: PostgreSQL refuses NUL in a string (a 500).
        ("/v1/signals?after=%00", "after"),
        ("/v1/signals?status=archived&after=x%00" + "0" * 34, "after"),
    ],
)
def test_hostile_query_values_are_named_in_a_422(
    hostile_service: RunningService, callers: Callers, path: str, field: str
) -> None:
    who = callers.organisation
    reply = request(hostile_service.port, callers.ca, "GET", path, cert=(who.cert, who.key))
    assert reply.status == 422, reply.body
    assert _problem_fields(reply) == [field]
