"""``VirClient`` sends a request refused with 429 or 503 again, after ``Retry-After``,
within a bounded budget, and only when repeating it is safe."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import httpx
import pytest

from vir.client import cli
from vir.client.connection import (
    ClientError,
    RetryPolicy,
    ServiceError,
    VirClient,
    repeatable,
)

Handler = Callable[[httpx.Request], httpx.Response]
PROBLEM = {"type": "urn:vir:problem:rate-limited", "title": "t", "status": 429, "detail": "d"}


def refused(status: int = 429, retry_after: str | None = "2") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, json={**PROBLEM, "status": status}, headers=headers)


class Fixture:
    def __init__(self, answers: list[httpx.Response], policy: RetryPolicy | None = None) -> None:
        self.answers = answers
        self.sent: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self.client = object.__new__(VirClient)  # no certificate: a mock transport
        self.client._http = httpx.Client(
            base_url="https://vir.test", transport=httpx.MockTransport(self.answer)
        )
        self.client._sleep = self.slept.append  # no real sleeping
        self.client._rng = random.Random(1)
        if policy is not None:
            self.client.retry = policy

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_a_rate_limited_get_is_sent_again_after_retry_after() -> None:
    f = Fixture([refused(429, "2"), refused(503, "1"), httpx.Response(200, json={"items": []})])
    assert f.client.request("GET", "/v1/notifications").json() == {"items": []}
    assert len(f.sent) == 3
    assert 2 <= f.slept[0] <= 2.2 and 1 <= f.slept[1] <= 1.1  # Retry-After plus ≤10 % jitter
    assert f.slept[0] != 2 or f.slept[1] != 1  # jitter is applied


def test_at_most_three_retries_then_the_refusal_is_raised() -> None:
    f = Fixture([refused(429, "1")])
    with pytest.raises(ServiceError) as error:
        f.client.request("DELETE", "/v1/signals/x", params={"reason": "risk_ended"})
    assert error.value.status == 429
    assert len(f.sent) == 4 and len(f.slept) == 3


def test_the_total_wait_stays_within_the_budget() -> None:
    # 12 s each: a third wait would pass 30 s, so it is not started.
    f = Fixture([refused(503, "12")])
    with pytest.raises(ServiceError):
        f.client.request("GET", "/v1/signals")
    assert len(f.slept) == 2 and sum(f.slept) <= 30
    # A Retry-After past the budget: raised at once, no waiting.
    g = Fixture([refused(429, "3600")])
    with pytest.raises(ServiceError):
        g.client.request("GET", "/v1/signals")
    assert g.slept == [] and len(g.sent) == 1


def test_the_policy_is_configurable_and_zero_switches_retrying_off() -> None:
    f = Fixture([refused(429, "1")], RetryPolicy(max_retries=0))
    with pytest.raises(ServiceError):
        f.client.request("GET", "/v1/signals")
    assert f.slept == [] and len(f.sent) == 1
    g = Fixture([refused(429, "5")], RetryPolicy(max_retries=10, max_wait=12, jitter=0))
    with pytest.raises(ServiceError):
        g.client.request("GET", "/v1/signals")
    assert g.slept == [5, 5]


def test_without_retry_after_the_default_wait_is_used() -> None:
    for value in (None, "Wed, 21 Oct 2026 07:28:00 GMT", "-1", "x"):
        f = Fixture([refused(503, value), httpx.Response(204)], RetryPolicy(jitter=0))
        f.client.request("PUT", "/v1/organisation/coordinator", {"name": "A"})
        assert f.slept == [1.0], value


def test_registration_and_evaluation_are_repeated_other_posts_are_not() -> None:
    ok = httpx.Response(200, json={"signal_id": "s"})
    for path in ("/v1/signals", "/v1/oprf/evaluate"):
        f = Fixture([refused(429, "1"), ok])
        assert f.client.request("POST", path, {}).status_code == 200
        assert len(f.sent) == 2, path
    for method, path in [
        ("POST", "/v1/consultations"),
        ("POST", "/v1/privacy/access"),
        ("POST", "/v1/privacy/erasure"),
        ("PATCH", "/v1/signals/x"),
    ]:
        f = Fixture([refused(429, "1"), ok])
        with pytest.raises(ServiceError):
            f.client.request(method, path, {})
        assert len(f.sent) == 1 and f.slept == [], path


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500, 502])
def test_other_refusals_are_not_repeated(status: int) -> None:
    f = Fixture([refused(status, "1"), httpx.Response(200, json={})])
    with pytest.raises(ServiceError):
        f.client.request("GET", "/v1/signals")
    assert len(f.sent) == 1 and f.slept == []


def test_repeatable() -> None:
    assert repeatable("get", "/v1/matches?local_ref=a")
    assert repeatable("POST", "/v1/signals")
    assert not repeatable("POST", "/v1/signals/x")
    assert not repeatable("POST", "/v1/consultations")
    assert not repeatable("PATCH", "/v1/signals/x")


def test_vir_client_takes_its_retry_policy_from_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[RetryPolicy | None] = []

    def from_dev(
        *_args: object, retry: RetryPolicy | None = None, **_endpoints: object
    ) -> VirClient:
        seen.append(retry)
        raise ClientError("not connecting in this test")

    monkeypatch.setattr(cli.VirClient, "from_dev", from_dev)
    monkeypatch.setattr("sys.stdin", io.StringIO("123456782\n"))
    argv = ["--dev-org", "gp", "--retries", "5", "--retry-budget", "10", "pseudonymise", "bsn"]
    assert cli.main(argv) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("123456782\n"))
    assert cli.main(["--dev-org", "gp", "pseudonymise", "bsn"]) == 1
    assert seen == [RetryPolicy(max_retries=5, max_wait=10.0), RetryPolicy()]
    with pytest.raises(SystemExit):
        cli.main(["--dev-org", "gp", "--retries", "-1", "pseudonymise", "bsn"])
