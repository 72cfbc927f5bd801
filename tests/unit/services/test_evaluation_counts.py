"""The privacy report's evaluation counts from a 2-of-3 deployment's key holders.

Each key holder answers ``GET /v1/oprf/usage`` with its own log's counts (here a mock
transport in place of three processes). A pseudonymisation reaches t of them with the
Python client, all of them from the portal, and a key holder whose log was lost (a
repaired one) starts counting from zero: the report shows the highest count of one
key holder, which is a lower bound in every one of these cases, and flags a burst by
that or by the key holders' total divided by t.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.instore import ORGS
from support.world import World, world

from vir.services.evaluation_counts import KeyholderCounts, tally
from vir.services.reports import privacy_report

START, END = dt.date(2026, 8, 1), dt.date(2026, 12, 1)
HOUR = dt.datetime(2026, 10, 5, 10, tzinfo=dt.UTC)
GP = str(ORGS[1].oin)
URLS = ("https://kh1.test:8444", "https://kh2.test:8444", "https://kh3.test:8444")


class _Context(ssl.SSLContext):
    """An SSL context that needs no certificate files: the mock transport never uses it."""

    def load_cert_chain(self, *_args: Any, **_kwargs: Any) -> None:
        return None


@pytest.fixture
def active(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        w.clock.to(dt.date(2026, 10, 5))
        w.register(1, "a child")  # the GP has a row of volumes whatever is counted
        w.clock.now = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
        yield w


def _holders(monkeypatch: pytest.MonkeyPatch, answers: Mapping[str, int | None]) -> KeyholderCounts:
    """Three key holders, each answering with its count of the GP's elements in ``HOUR``
    (None: it does not answer)."""
    real = httpx.Client

    def handler(request: httpx.Request) -> httpx.Response:
        elements = answers[f"https://{request.url.host}:{request.url.port}"]
        if elements is None:
            raise httpx.ConnectError("refused", request=request)
        items = [{"oin": GP, "hour": "2026-10-05T10:00:00Z", "elements": elements}]
        return httpx.Response(200, json={"items": items})

    def client(**kwargs: Any) -> httpx.Client:
        return real(base_url=kwargs["base_url"], transport=httpx.MockTransport(handler))

    monkeypatch.setattr(httpx, "Client", client)
    monkeypatch.setattr(
        ssl, "create_default_context", lambda **_: _Context(ssl.PROTOCOL_TLS_CLIENT)
    )
    files = Path("unused")
    return KeyholderCounts(URLS, 2, files, files, files)


def _report(w: World, holders: KeyholderCounts) -> dict[str, Any]:
    return privacy_report(w.store.db, w.clock, None, START, END, evaluation_counts=holders.counts)


def _gp(report: dict[str, Any]) -> list[int | None]:
    return [v["evaluations"] for v in report["volumes"] if v["oin"] == GP]


def _burst(report: dict[str, Any]) -> dict[str, Any] | None:
    found = [f for f in report["flags"] if f["kind"] == "evaluation_burst" and f["oin"] == GP]
    return found[0]["figures"] if found else None


def test_a_repaired_key_holders_empty_log_does_not_lower_the_count(
    active: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's case: the client asked kh1 and kh2; kh2 was lost and repaired
    (its log starts empty) and kh3 answered while kh2 was away. Adding up and dividing
    by t gave 1512: half of what the GP sent."""
    holders = _holders(monkeypatch, {URLS[0]: 3012, URLS[1]: 5, URLS[2]: 6})
    report = _report(active, holders)
    assert _gp(report) == [0, 0, 3012, 0]  # August to November
    counts = report["evaluation_counts"]
    assert (counts["available"], counts["method"]) == (True, "at_least")
    assert (counts["keyholders"], counts["threshold"], counts["answered"]) == (3, 2, 3)
    assert "not_answered" not in counts
    assert "highest count of one key holder" in counts["detail"]
    assert _burst(report) == {
        "from": "2026-10-05T10:00:00.000000Z",
        "elements": 3012,
        "limit": 1000,
        "counted": "at_least",
    }


def test_two_of_three_key_holders_answering_still_count(
    active: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pseudonymisation reached two of the three: with kh2 down it reached kh1
    or kh3, so their counts still give a lower bound."""
    report = _report(active, _holders(monkeypatch, {URLS[0]: 3012, URLS[1]: None, URLS[2]: 6}))
    counts = report["evaluation_counts"]
    assert counts["available"] is True
    assert (counts["answered"], counts["not_answered"]) == (2, [URLS[1]])
    assert _gp(report) == [0, 0, 3012, 0]


def test_with_too_few_key_holders_the_volumes_show_no_figure_not_zero(
    active: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One of three could have missed every pseudonymisation (kh2 and kh3 could have
    made them all): no count, and no zero in the volumes."""
    report = _report(active, _holders(monkeypatch, {URLS[0]: None, URLS[1]: None, URLS[2]: 6}))
    assert report["volumes"] and all(v["evaluations"] is None for v in report["volumes"])
    assert [v["registrations"] for v in report["volumes"] if v["oin"] == GP] == [0, 0, 1, 0]
    counts = report["evaluation_counts"]
    assert (counts["available"], counts["reason"]) == (False, "unreachable")
    assert counts["detail"].startswith("1 of the 3 key holders answered with their counts")
    assert URLS[0] in counts["detail"] and "2 must" in counts["detail"]


def test_a_client_spreading_its_elements_over_the_key_holders_is_still_flagged(
    active: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1050 elements, each to two key holders chosen in turn: each holder saw 700. The
    figure shown is 700 (at least); the flag also looks at the total divided by t."""
    report = _report(active, _holders(monkeypatch, {url: 700 for url in URLS}))
    assert _gp(report) == [0, 0, 700, 0]
    assert _burst(report) == {
        "from": "2026-10-05T10:00:00.000000Z",
        "elements": 1050,
        "limit": 1000,
        "counted": "per_threshold",
        "threshold": 2,
    }


def test_tally_keeps_a_lower_bound_whoever_the_client_asked() -> None:
    gp, school = (GP, HOUR), (str(ORGS[0].oin), HOUR)
    later = (GP, HOUR + dt.timedelta(hours=1))
    # The Python client asks the first two of its list; the portal asks all three.
    python = [{gp: 40}, {gp: 40}, {}]
    portal = [{gp: 40}, {gp: 40}, {gp: 40}]
    assert [(c.at_least, c.per_threshold) for c in tally(python, 2)] == [(40, 40)]
    assert [(c.at_least, c.per_threshold) for c in tally(portal, 2)] == [(40, 60)]
    # Per organisation and hour, oldest hour first, then by OIN; a holder without an
    # hour counts nothing there.
    counted = tally([{later: 3, gp: 5}, {gp: 4, school: 1}], 2)
    assert [(c.oin, c.hour, c.at_least, c.per_threshold) for c in counted] == [
        (str(ORGS[0].oin), HOUR, 1, 1),
        (GP, HOUR, 5, 5),
        (GP, HOUR + dt.timedelta(hours=1), 3, 2),
    ]
