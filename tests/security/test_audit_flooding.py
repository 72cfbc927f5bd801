"""Growing the audit log from outside, tried the way an attacker would (issue 11, point 2).

Every refused request used to be a hash-chained entry of its own: 300 requests without
a client certificate added 300 entries in 2 s, 930 rate-limited OPRF calls 930. Now a
refusal is counted per key (reason, endpoint, claimed organisation and certificate,
peer network) and minute: an entry at once for a key's first refusal, one more with
the count of the rest once the minute is over, at most VIR_REFUSAL_ENTRIES_PER_MINUTE
entries a minute for all instances together, past that one overflow entry, and the
overflow in ``vir_refusals_overflow_total``. Accountable all the same: the counts sum
to the requests refused, and survive an instance that crashes. The index and the key
holder share this edge: each is flooded here, on its own log.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.instances import ATTACKER, MINUTE, Instances, instances, refused_count
from support.instore import ORGS
from support.world import person

from vir.crypto import oprf
from vir.domain.encoding import b64url_encode
from vir.keyholder import evaluation
from vir.services.identity import Caller
from vir.services.refusals import OVERFLOW, itemised_keys, network_of

EVALUATE = "/v1/oprf/evaluate"
BODY = {"blinded_elements": [b64url_encode(person("Kim"))]}


@dataclass(frozen=True)
class Target:
    """The index or the key holder, and a request to it that needs a certificate."""

    name: str
    method: str
    path: str
    json: Any = None

    @property
    def keyholder(self) -> bool:
        return self.name == "keyholder"

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


INDEX = Target("index", "GET", "/v1/signals")
KEYHOLDER = Target("keyholder", "POST", EVALUATE, BODY)
on_both = pytest.mark.parametrize("target", [INDEX, KEYHOLDER], ids=["index", "keyholder"])


def _metric(text: str, name: str, **labels: str) -> int:
    # prometheus_client writes labels sorted by name and counts as floats: 300.0
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{re.escape(name)}{{{re.escape(inner)}}} (\d+)\.0$", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _total(flood: Instances, name: str, **labels: str) -> int:
    return sum(_metric(flood.metrics(n), name, **labels) for n in range(len(flood.apps)))


def _no_certificate(flood: Instances, peers: Sequence[str], target: Target) -> list[httpx.Response]:
    """One request without a client certificate per peer, the instances taking turns."""

    async def run() -> list[httpx.Response]:
        replies = []
        for i, peer in enumerate(peers):
            app = flood.apps[i % len(flood.apps)]
            transport = httpx.ASGITransport(app=app, client=(peer, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://vir") as client:
                replies.append(await client.request(target.method, target.path, json=target.json))
        return replies

    return asyncio.run(run())


@on_both
def test_300_requests_without_a_certificate_make_two_entries_counting_300(
    tmp_path: Path, target: Target
) -> None:
    with instances(tmp_path, keyholder=target.keyholder) as flood:
        before = len(flood.events())
        replies = _no_certificate(flood, [ATTACKER] * 300, target)
        assert {r.status_code for r in replies} == {401}
        # The first refusal is on the record at once, with all it says.
        (first,) = flood.events()[before:]
        assert (first.action, first.reason, first.organisation) == (
            "request.refused",
            "no_client_certificate",
            None,
        )
        assert first.objects == {
            "endpoint": target.endpoint,
            "count": 1,
            "minute": "2026-11-22T09:00Z",
            "peer": "203.0.113.0/24",  # the network, not the address
        }
        assert flood.flush_refusals() == 1
        refused = flood.events("request.refused")
        assert len(refused) == 2 and refused_count(refused) == 300
        assert refused[1].objects["minute"] == "2026-11-22T09:00Z"
        assert flood.flush_refusals() == 0  # written once
        assert flood.chain_intact()
        # Both instances answered; their metrics count every request refused.
        assert _total(flood, "vir_requests_refused_total", reason="no_client_certificate") == 300
        labels = {"reason": "no_client_certificate", "cause": "cap"}
        assert _total(flood, "vir_refusals_overflow_total", **labels) == 0


@on_both
def test_a_flood_from_many_networks_is_capped_across_instances_and_the_rest_counted(
    tmp_path: Path, target: Target
) -> None:
    cap = 20
    keys = itemised_keys(cap)  # 9 keys, 2 entries each, and the overflow entry
    with instances(tmp_path, keyholder=target.keyholder, refusal_entries_per_minute=cap) as flood:
        before = len(flood.events())
        peers = [f"198.51.{n}.9" for n in range(100) for _ in range(3)]  # 100 networks
        assert {r.status_code for r in _no_certificate(flood, peers, target)} == {401}
        assert len(flood.events()) - before == keys  # at once: each key's first refusal
        flood.flush_refusals()
        refused = flood.events("request.refused")
        assert len(refused) <= cap
        assert len(refused) == 2 * keys + 1
        assert refused_count(refused) == 300
        (overflow,) = [e for e in refused if e.reason == OVERFLOW]
        past_cap = 300 - 3 * keys
        assert overflow.objects["count"] == past_cap
        assert overflow.organisation is None and "peer" not in overflow.objects
        # The overflow is in the metrics too, summed over the instances.
        labels = {"reason": "no_client_certificate", "cause": "cap"}
        assert _total(flood, "vir_refusals_overflow_total", **labels) == past_cap
        assert _total(flood, "vir_requests_refused_total", reason="no_client_certificate") == 300
        # The next minute has a cap of its own.
        _no_certificate(flood, ["192.0.2.1"], target)
        assert flood.events()[-1].objects["peer"] == "192.0.2.0/24"
        assert flood.chain_intact()


def test_930_rate_limited_oprf_calls_add_two_refusal_entries_and_no_evaluations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluated: list[bytes] = []

    def counted(secret: bytes, elements: Sequence[bytes]) -> list[bytes]:
        """The real evaluation, counted: how often it runs is the point here."""
        evaluated.extend(elements)
        return oprf.evaluate_batch(secret, elements)

    # What the key holder's evaluation service calls for each element.
    assert evaluation.oprf is oprf
    monkeypatch.setattr(evaluation, "oprf", _Counting(counted))
    settings = {"oprf_burst": 64, "oprf_rate_per_second": 1}
    with instances(tmp_path, keyholder=True, **settings) as flood:
        org = Caller(ORGS[0], "a" * 64)
        flood.act_as(org)
        replies = flood.requests([(n % 2, "POST", EVALUATE, {"json": BODY}) for n in range(930)])
        statuses = [r.status_code for r in replies]
        assert statuses[:64] == [200] * 64
        assert statuses[64:] == [429] * (930 - 64)  # the clock stands still: no refill
        assert replies[64].headers["retry-after"] == "1"
        assert replies[64].headers["content-type"] == "application/problem+json"
        # Past the limit no work is done: one evaluation found the bucket empty, after
        # which each instance refuses from what it saw (at most one wasted per instance).
        assert 64 <= len(evaluated) <= 64 + 2
        flood.flush_refusals()
        refused = flood.events("request.refused")
        assert len(refused) == 2
        assert refused_count(refused) == 930 - 64
        assert {(e.reason, e.organisation, e.certificate) for e in refused} == {
            ("rate_limited", str(ORGS[0].oin), "a" * 64)
        }
        assert len(flood.events("oprf.evaluate")) == 64
        assert flood.chain_intact()


class _Counting:
    """``vir.crypto.oprf`` as the evaluation service sees it, with ``evaluate_batch``
    replaced."""

    def __init__(self, evaluate_batch: Any) -> None:
        self.evaluate_batch = evaluate_batch

    def __getattr__(self, name: str) -> Any:
        return getattr(oprf, name)


@on_both
def test_counts_of_an_instance_that_crashed_are_written_by_the_next_to_start(
    tmp_path: Path, target: Target
) -> None:
    with instances(tmp_path, keyholder=target.keyholder) as flood:
        _no_certificate(flood, [ATTACKER] * 50, target)  # both instances; neither stops cleanly
        assert refused_count(flood.events("request.refused")) == 1
        flood.clock.now += MINUTE

        async def restart() -> None:
            async with flood.lifespan(1):  # its start writes what the minute counted
                pass

        asyncio.run(restart())
        refused = flood.events("request.refused")
        assert [e.objects["count"] for e in refused] == [1, 49]


@on_both
def test_an_instance_that_stops_writes_its_minute_so_far_and_keeps_the_cap(
    tmp_path: Path, target: Target
) -> None:
    with instances(tmp_path, count=1, keyholder=target.keyholder) as flood:

        async def serve_then_stop() -> None:
            async with flood.lifespan(0):
                transport = httpx.ASGITransport(app=flood.apps[0], client=(ATTACKER, 1))
                async with httpx.AsyncClient(transport=transport, base_url="http://vir") as c:
                    for _ in range(10):
                        reply = await c.request(target.method, target.path, json=target.json)
                        assert reply.status_code == 401

        asyncio.run(serve_then_stop())
        refused = flood.events("request.refused")
        assert [e.objects["count"] for e in refused] == [1, 9]
        # The same key again within that minute: its two entries are spent, so it goes
        # to the minute's overflow entry once the minute is over.
        _no_certificate(flood, [ATTACKER] * 5, target)
        assert len(flood.events("request.refused")) == 2
        flood.flush_refusals()
        refused = flood.events("request.refused")
        assert [(e.reason, e.objects["count"]) for e in refused[2:]] == [(OVERFLOW, 5)]
        assert refused_count(refused) == 15


@pytest.mark.parametrize(
    ("peer", "network"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        ("2001:db8:1:2::7", "2001:db8:1::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("/run/vir.sock", "unknown"),
        (None, "unknown"),
    ],
)
def test_a_peer_is_recorded_as_its_network_only(peer: str | None, network: str) -> None:
    assert network_of(peer) == network
