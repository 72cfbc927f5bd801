"""Asking "is this child in the index?" in bulk, tried the way an attacker would (issue 11,
point 3).

Registering a signal answers with the other reporters' names and e-mail addresses;
withdrawing it at once as ``unjustified`` leaves no signal behind. That loop ran at
140 probes a second, and a privacy officer's access lookups at 200 a second. Now
registrations, withdrawals, privacy-officer lookups (access requests and erasures),
and consultations pay from per-organisation token buckets kept in the database, in
the transaction of the action itself, and so do OPRF evaluations at the key holder
(per second and per hour): the limits hold across app instances (two ``create_app``,
or two ``create_keyholder_app``, on one database here; the PostgreSQL run of the suite
does the same on PostgreSQL). Past a limit: 429 problem+json with Retry-After. And the
privacy officer's report flags the loop, the lookups and the refusals.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import httpx
from support.instances import Instances, instances, refused_count
from support.instore import ORGS
from support.world import MUNICIPALITY, VEILIG_THUIS, person

from vir.api.app import rate_limits
from vir.domain.encoding import b64url_encode
from vir.domain.organisations import Role
from vir.domain.ratelimit import Bucket, LimitKind, take
from vir.services.identity import Caller
from vir.settings import Settings

PROBER = Caller(ORGS[0], "a" * 64)
OFFICER = Caller(MUNICIPALITY, "f" * 64, Role.PRIVACY_OFFICER)
REGISTER_BURST, WITHDRAW_BURST = 30, 20


def _signal(n: int) -> dict[str, Any]:
    return {
        "local_ref": f"probe-{n}",
        "epoch": 1,
        "person": b64url_encode(person(f"child-{n}")),
        "professional": {"name": "Anna de Vries", "email": "anna@school.example"},
    }


def _probe_loop(flood: Instances, probes: int) -> list[tuple[str, int]]:
    """Register and at once withdraw as unjustified, the instances taking turns."""
    statuses = []
    for n in range(probes):
        registered = flood.request(n % 2, "POST", "/v1/signals", json=_signal(n))
        statuses.append(("register", registered.status_code))
        if registered.status_code == 201:
            withdrawn = flood.request(
                (n + 1) % 2, "DELETE", f"/v1/signals/probe-{n}", params={"reason": "unjustified"}
            )
            statuses.append(("withdraw", withdrawn.status_code))
            if withdrawn.status_code == 429:
                _check_refusal(withdrawn, per_hour=200)
    return statuses


def _check_refusal(reply: httpx.Response, per_hour: float) -> None:
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == "urn:vir:problem:rate-limited"
    assert int(reply.headers["retry-after"]) == math.ceil(3600 / per_hour)


def _access(flood: Instances, n: int, who: str) -> httpx.Response:
    body = {"epoch": 1, "person": b64url_encode(person(who))}
    return flood.request(n % 2, "POST", "/v1/privacy/access", json=body)


def test_register_withdraw_loop_is_cut_off_across_two_instances(tmp_path: Path) -> None:
    with instances(tmp_path, register_burst=REGISTER_BURST, withdraw_burst=WITHDRAW_BURST) as flood:
        flood.act_as(PROBER)
        statuses = _probe_loop(flood, 40)
        withdrawals = [s for kind, s in statuses if kind == "withdraw"]
        registrations = [s for kind, s in statuses if kind == "register"]
        # One budget for both instances, not one each.
        assert withdrawals == [204] * WITHDRAW_BURST + [429] * (REGISTER_BURST - WITHDRAW_BURST)
        assert registrations == [201] * REGISTER_BURST + [429] * (40 - REGISTER_BURST)
        # Retry-After is honest: after it, one more withdrawal goes through.
        flood.clock.now += dt.timedelta(seconds=math.ceil(3600 / 200))
        reply = flood.request(1, "DELETE", "/v1/signals/probe-25", params={"reason": "unjustified"})
        assert reply.status_code == 204
        # A refused withdrawal stored nothing: its signal is still there.
        signals = flood.request(0, "GET", "/v1/signals").json()["items"]
        assert sorted(s["local_ref"] for s in signals) == sorted(
            f"probe-{n}" for n in range(WITHDRAW_BURST, REGISTER_BURST) if n != 25
        )
        # Another organisation has budgets of its own.
        flood.act_as(Caller(ORGS[1], "b" * 64))
        assert flood.request(1, "POST", "/v1/signals", json=_signal(99)).status_code == 201


def test_privacy_officer_lookup_flood_is_cut_off_across_two_instances(tmp_path: Path) -> None:
    with instances(tmp_path) as flood:
        flood.act_as(OFFICER)
        burst = Settings().privacy_lookup_burst
        replies = [_access(flood, n, f"someone-{n}") for n in range(burst + 10)]
        # Nothing is held on them: every lookup paid all the same.
        assert [r.status_code for r in replies] == [404] * burst + [429] * 10
        _check_refusal(replies[-1], per_hour=Settings().privacy_lookups_per_hour)
        # An erasure answers "nothing held" just as well: same budget.
        erasure = {"epoch": 1, "person": b64url_encode(person("x")), "kind": "erasure"}
        assert flood.request(0, "POST", "/v1/privacy/erasure", json=erasure).status_code == 429
        assert len(flood.events("access.requested")) == burst


def _evaluate_twice(flood: Instances, count: int) -> list[httpx.Response]:
    """``count`` evaluations of two elements each, the key holder instances taking turns."""
    two = {"blinded_elements": [b64url_encode(person("a")), b64url_encode(person("b"))]}
    return flood.requests(
        [(n % 2, "POST", "/v1/oprf/evaluate", {"json": two}) for n in range(count)]
    )


def test_oprf_limits_hold_across_two_key_holder_instances(tmp_path: Path) -> None:
    with instances(tmp_path, keyholder=True, oprf_burst=64) as flood:
        flood.act_as(PROBER)
        replies = _evaluate_twice(flood, 40)
        assert [r.status_code for r in replies] == [200] * 32 + [429] * 8
        assert replies[-1].json()["type"] == "urn:vir:problem:rate-limited"
        assert "retry-after" in replies[-1].headers
        # Only the evaluations that were answered are audited, with their counts.
        answered = flood.events("oprf.evaluate")
        assert [e.objects["elements"] for e in answered] == [2] * 32
        # Another organisation has budgets of its own.
        flood.act_as(Caller(ORGS[1], "b" * 64))
        assert _evaluate_twice(flood, 1)[0].status_code == 200


def test_the_hourly_oprf_quota_holds_across_two_key_holder_instances(tmp_path: Path) -> None:
    per_hour = 64
    with instances(tmp_path, keyholder=True, oprf_per_hour=per_hour) as flood:
        flood.act_as(PROBER)
        replies = _evaluate_twice(flood, 40)
        assert [r.status_code for r in replies] == [200] * 32 + [429] * 8
        # The per-second bucket is far from empty: it is the hourly quota that refuses,
        # and says when two more elements will be granted.
        _check_refusal(replies[-1], per_hour=per_hour / 2)
        flood.clock.now += dt.timedelta(minutes=1)  # the per-second bucket is full again
        assert _evaluate_twice(flood, 1)[0].status_code == 429
        flood.clock.now += dt.timedelta(seconds=math.ceil(2 * 3600 / per_hour))
        assert _evaluate_twice(flood, 1)[0].status_code == 200
        assert len(flood.events("oprf.evaluate")) == 33


def test_consultation_limits_hold_across_two_instances(tmp_path: Path) -> None:
    with instances(tmp_path, consult_burst=5) as flood:
        flood.act_as(Caller(VEILIG_THUIS, "e" * 64))
        body = {"epoch": 1, "person": b64url_encode(person("a")), "purpose": "triage"}
        replies = flood.requests(
            [(n % 2, "POST", "/v1/consultations", {"json": body}) for n in range(8)]
        )
        assert [r.status_code for r in replies] == [200] * 5 + [429] * 3


def test_the_index_has_no_evaluation_to_flood(tmp_path: Path) -> None:
    with instances(tmp_path) as index:
        index.act_as(PROBER)
        two = {"blinded_elements": [b64url_encode(person("a"))]}
        assert index.request(0, "POST", "/v1/oprf/evaluate", json=two).status_code == 404


def test_the_privacy_report_flags_the_loop_the_lookups_and_the_refusals(tmp_path: Path) -> None:
    with instances(tmp_path, register_burst=REGISTER_BURST, withdraw_burst=WITHDRAW_BURST) as flood:
        flood.act_as(PROBER)
        statuses = _probe_loop(flood, 40)
        limited = sum(1 for _kind, status in statuses if status == 429)
        flood.act_as(OFFICER)
        burst = Settings().privacy_lookup_burst
        lookups = [_access(flood, n, f"someone-{n}").status_code for n in range(burst + 5)]
        assert lookups.count(429) == 5
        flood.flush_refusals()
        assert refused_count(flood.events("request.refused")) == limited + 5 + burst  # 404s too
        report = flood.request(
            0,
            "GET",
            "/v1/privacy/reports/events",
            params={"from": "2026-11-01", "to": "2026-12-01"},
        ).json()
        flags = {(f["oin"], f["kind"]): f["figures"] for f in report["flags"]}
        prober, officer = str(PROBER.oin), str(OFFICER.oin)
        assert flags[(prober, "quick_withdrawals")] == {
            "signals": WITHDRAW_BURST,
            "within_minutes": 10,
            "unjustified": WITHDRAW_BURST,
        }
        assert flags[(officer, "lookup_burst")] == {
            "from": "2026-11-22T09:00:00.000000Z",
            "lookups": burst,
            "limit": 10,
        }
        assert flags[(prober, "rate_limited")] == {
            "refusals": limited,
            "endpoints": "DELETE /v1/signals/{local_ref}, POST /v1/signals",
        }
        assert flags[(officer, "rate_limited")] == {
            "refusals": 5,
            "endpoints": "POST /v1/privacy/access",
        }
        csv = flood.request(
            0,
            "GET",
            "/v1/privacy/reports/events",
            params={"from": "2026-11-01", "to": "2026-12-01", "format": "csv"},
        ).text
        assert f"flags,{prober},School A,quick_withdrawals,,signals={WITHDRAW_BURST}" in csv


def test_default_limits_let_a_back_office_through_and_stop_a_probe() -> None:
    """The numbers in vir/settings.py, played out over the arithmetic the store uses."""
    limits = rate_limits(Settings())

    def granted(kind: LimitKind, per_second: float, seconds: float) -> int:
        limit = limits.limit(kind)
        assert limit is not None
        bucket: Bucket | None = None
        done, moments = 0, int(per_second * seconds)
        for i in range(moments):
            bucket, wait = take(bucket, limit, 1, i / per_second)
            done += wait == 0
        return done

    # A region migrating: one organisation's whole case load of 10,000 signals as fast
    # as it can send them (50 a second); a school's 300 at the start of term.
    assert granted(LimitKind.REGISTER, 50, 200) == 10_000
    assert granted(LimitKind.WITHDRAW, 10, 50) == 500  # end of the school year
    # The probe loop at the rate it ran (140 a second) for an hour: 1,200 withdrawals
    # instead of 504,000.
    assert granted(LimitKind.WITHDRAW, 140, 3600) <= 1000 + 200 + 1
    # A privacy officer's lookups flat out for an hour: 80 instead of 720,000.
    assert granted(LimitKind.PRIVACY_LOOKUP, 200, 3600) <= 20 + 60 + 1
