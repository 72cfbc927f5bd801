"""The privacy report's evaluation counts from three real key holders, any two of which
answer (2-of-3), as an operator walks them: all up, one stopped, two stopped.

The Python client asks the first two key holders of its list, so key holder 3 counts
nothing: with key holder 1 stopped, key holder 2's count is still every element; with
two stopped, the one left cannot have seen every pseudonymisation and the report has no
figure (not 0).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from support.service import RunningService, free_ports, start_service
from support.signal_body import signal_body

from vir.client.canonical import nl_bsn

pytestmark = pytest.mark.integration

TODAY = dt.datetime.now(dt.UTC).date()
# The day before to the day after (UTC): a run that passes midnight still counts.
FROM, TO = (TODAY - dt.timedelta(days=1)).isoformat(), (TODAY + dt.timedelta(days=2)).isoformat()
GP = "00000009000000000002"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    port = free_ports(3)
    running = start_service(
        tmp_path_factory.mktemp("counts-2-of-3"),
        threshold="2-of-3",
        VIR_KEYHOLDER_PORT=str(port),
        VIR_USAGE_KEYHOLDERS=",".join(f"https://127.0.0.1:{port + i}" for i in range(3)),
        VIR_USAGE_THRESHOLD="2",
    )
    try:
        yield running
    finally:
        running.stop()


def _report(service: RunningService) -> tuple[dict[str, object], str]:
    """``vir report privacy --json`` as the operator runs it; the report and its stderr."""
    path = service.root / "priv.json"
    ran = service.vir("report", "privacy", "--from", FROM, "--to", TO, "--json", str(path))
    return json.loads(path.read_text(encoding="utf-8")), ran.stderr


def _gp(report: dict[str, object]) -> list[object]:
    volumes = report["volumes"]
    assert isinstance(volumes, list)
    return [v["evaluations"] for v in volumes if v["oin"] == GP]


def test_the_counts_of_a_threshold_deployment_as_key_holders_stop(
    service: RunningService,
) -> None:
    with service.client("gp") as gp:
        made = gp.pseudonymise([nl_bsn("123456782"), nl_bsn("999999990"), nl_bsn("111222333")])
        # A signal: the GP has a row of volumes in the index's own log, counted or not.
        gp.register_signal(signal_body("counts-1", made.pseudonyms[0], made.epoch))
    urls = service.keyholder_urls

    report, err = _report(service)
    all_up = report["evaluation_counts"]
    assert isinstance(all_up, dict)
    assert sum(int(n) for n in _gp(report)) == 3  # type: ignore[call-overload]
    assert all_up["available"] is True and "NOT counted" not in err

    # Key holder 1 stopped: 2 and 3 answer, and every element reached 2.
    service.keyholders[0].terminate()
    service.keyholders[0].wait(timeout=10)
    report, err = _report(service)
    counts = report["evaluation_counts"]
    assert isinstance(counts, dict)
    assert counts["available"] is True, counts["detail"]
    assert sum(int(n) for n in _gp(report)) == 3  # type: ignore[call-overload]
    assert counts["not_answered"] == [urls[0]]
    assert f"counted from 2 of the 3 key holders ({urls[0]} did not answer)" in err
    assert (all_up["method"], all_up["answered"], all_up["keyholders"]) == ("at_least", 3, 3)
    assert all_up["threshold"] == 2 and "not_answered" not in all_up

    # Key holder 2 stopped too: 3 alone may have seen none of them.
    service.keyholders[1].terminate()
    service.keyholders[1].wait(timeout=10)
    report, err = _report(service)
    counts = report["evaluation_counts"]
    assert isinstance(counts, dict)
    assert (counts["available"], counts["reason"]) == (False, "unreachable")
    assert _gp(report) and all(n is None for n in _gp(report))
    assert err.count("\n") == 1 and err.startswith(
        "vir: pseudonymisations are NOT counted: 1 of the 3 key holders answered"
    )
