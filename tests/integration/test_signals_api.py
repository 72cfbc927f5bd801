"""Signals, matches and notifications over real mTLS, with a client written from the
contract alone (the stdlib reference client and plain JSON)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from itertools import count
from typing import Any

import pytest
from support import refclient
from support.https import Reply, request
from support.service import Org, RunningService

_bsn_counter = count(1)


def fresh_bsn() -> str:
    """A new 11-proof BSN per call, so tests sharing one service never collide."""
    while True:
        candidate = f"7{next(_bsn_counter):08d}"
        weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
        if sum(int(d) * w for d, w in zip(candidate, weights, strict=True)) % 11 == 0:
            return candidate


def pseudonyms(service: RunningService, org: Org, *bsns: str) -> list[str]:
    """Pseudonyms made at the key holder, as an organisation's client makes them."""
    _epoch, ns = refclient.pseudonymise(
        service.keyholder_url,
        service.ca,
        org.cert,
        org.key,
        [f"nl-bsn:{b}".encode() for b in bsns],
    )
    return [refclient.b64url_encode(n) for n in ns]


def call(service: RunningService, org: Org, method: str, path: str, body: Any = None) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    return request(service.port, service.ca, method, path, data, (org.cert, org.key))


def signal(
    local_ref: str, person: str, parents: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "local_ref": local_ref,
        "epoch": 1,
        "person": person,
        "parents": parents or [],
        "professional": {
            "name": "Anna de Wit",
            "email": "anna@example.nl",
            "phone": "010-1234567",
            # A code every category lists (GET /v1/functions): these bodies go to
            # organisations of several categories.
            "function": "overig",
        },
        **extra,
    }


def notifications(
    service: RunningService, org: Org, after: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    path = "/v1/notifications?limit=500" + (f"&after={after}" if after else "")
    page = call(service, org, "GET", path).json()
    return page["items"], page["next"]


def cursor(service: RunningService, org: Org) -> str:
    return notifications(service, org)[1]


def summary(items: list[dict[str, Any]]) -> list[tuple[str, str, str, list[str]]]:
    return [
        (
            i["type"],
            i["local_ref"],
            i["match"]["via"],
            sorted(p["organisation"]["oin"] for p in i["match"]["participants"]),
        )
        for i in items
    ]


def test_school_gp_youth_care_scenario_and_a_bystander(service: RunningService) -> None:
    school, gp, youth, vt = (
        service.org(c) for c in ("education", "gp", "youth_care", "veilig_thuis")
    )
    child, sibling, mother = fresh_bsn(), fresh_bsn(), fresh_bsn()
    start = {o.oin: cursor(service, o) for o in (school, gp, youth, vt)}

    p_child, p_mother = pseudonyms(service, school, child, mother)
    assert (
        call(service, school, "POST", "/v1/signals", signal("sc-1", p_child, [p_mother])).status
        == 201
    )
    p_child_gp, p_mother_gp = pseudonyms(service, gp, child, mother)
    assert (p_child_gp, p_mother_gp) == (p_child, p_mother)  # same pseudonym for everyone
    reply = call(service, gp, "POST", "/v1/signals", signal("gp-1", p_child, [p_mother]))
    assert reply.status == 201
    assert [m["kind"] for m in reply.json()["matches"]] == ["person"]
    p_sibling, p_mother_yc = pseudonyms(service, youth, sibling, mother)
    assert (
        call(service, youth, "POST", "/v1/signals", signal("yc-1", p_sibling, [p_mother_yc])).status
        == 201
    )

    got = {
        o.oin: summary(notifications(service, o, start[o.oin])[0]) for o in (school, gp, youth, vt)
    }
    assert sorted(got[school.oin]) == [
        ("match.created", "sc-1", "parent", sorted([gp.oin, youth.oin])),
        ("match.created", "sc-1", "person", [gp.oin]),
    ]
    assert sorted(got[gp.oin]) == [
        ("match.created", "gp-1", "parent", sorted([school.oin, youth.oin])),
        ("match.created", "gp-1", "person", [school.oin]),
    ]
    assert got[youth.oin] == [("match.created", "yc-1", "parent", sorted([school.oin, gp.oin]))]
    assert got[vt.oin] == []
    item = notifications(service, youth, start[youth.oin])[0][0]
    assert item["match"]["kind"] == "household"
    assert item["match"]["participants"][0]["professional"]["email"] == "anna@example.nl"
    text = json.dumps(item)
    for pseudonym in (p_child, p_sibling, p_mother):
        assert pseudonym not in text


def test_withdraw_reregister_withdraw_notifies_exactly(service: RunningService) -> None:
    school, gp = service.org("education"), service.org("gp")
    (child,) = pseudonyms(service, school, fresh_bsn())
    start = {o.oin: cursor(service, o) for o in (school, gp)}
    # Read after every step: a notification goes when a signal it shows goes
    # (docs/matching.md, Retention), so what was sent is only seen on the way.
    after, seen = dict(start), {school.oin: [], gp.oin: []}

    def step(org: Org, method: str, path: str, body: Any = None) -> int:
        status = call(service, org, method, path, body).status
        for o in (school, gp):
            items, after[o.oin] = notifications(service, o, after[o.oin])
            seen[o.oin] += summary(items)
        return status

    assert step(school, "POST", "/v1/signals", signal("w-1", child)) == 201
    assert step(gp, "POST", "/v1/signals", signal("w-2", child)) == 201
    assert step(gp, "DELETE", "/v1/signals/w-2?reason=risk_ended") == 204
    assert step(gp, "POST", "/v1/signals", signal("w-3", child)) == 201
    assert step(gp, "DELETE", "/v1/signals/w-3?reason=unjustified") == 204
    school_items, gp_items = seen[school.oin], seen[gp.oin]
    assert school_items == [
        ("match.created", "w-1", "person", [gp.oin]),
        ("match.left", "w-1", "person", []),
        ("match.created", "w-1", "person", [gp.oin]),
        ("match.left", "w-1", "person", []),
    ]
    assert gp_items == [
        ("match.created", "w-2", "person", [school.oin]),
        ("match.created", "w-3", "person", [school.oin]),
    ]
    # What is still held: the school's two notices that show nobody; nothing of the GP's.
    assert summary(notifications(service, school, start[school.oin])[0]) == [
        ("match.left", "w-1", "person", []),
        ("match.left", "w-1", "person", []),
    ]
    assert notifications(service, gp, start[gp.oin])[0] == []
    assert call(service, school, "GET", "/v1/matches?local_ref=w-1").json()["matches"] == []


def test_concurrent_registrations_make_exactly_one_match(service: RunningService) -> None:
    school, gp = service.org("education"), service.org("gp")
    for round_ in range(10):
        (child,) = pseudonyms(service, school, fresh_bsn())
        start = {o.oin: cursor(service, o) for o in (school, gp)}
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def register(
            org: Org,
            ref: str,
            child: str = child,
            barrier: threading.Barrier = barrier,
            statuses: list[int] = statuses,
        ) -> None:
            barrier.wait()
            statuses.append(call(service, org, "POST", "/v1/signals", signal(ref, child)).status)

        threads = [
            threading.Thread(target=register, args=(school, f"c{round_}-s")),
            threading.Thread(target=register, args=(gp, f"c{round_}-g")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [201, 201]
        got = {o.oin: summary(notifications(service, o, start[o.oin])[0]) for o in (school, gp)}
        assert got[school.oin] == [("match.created", f"c{round_}-s", "person", [gp.oin])]
        assert got[gp.oin] == [("match.created", f"c{round_}-g", "person", [school.oin])]
        match_ids = {
            call(service, o, "GET", f"/v1/matches?local_ref={ref}").json()["matches"][0]["id"]
            for o, ref in ((school, f"c{round_}-s"), (gp, f"c{round_}-g"))
        }
        assert len(match_ids) == 1


def test_idempotent_repeat_and_conflicts(service: RunningService) -> None:
    school = service.org("education")
    a, b = pseudonyms(service, school, fresh_bsn(), fresh_bsn())
    first = call(service, school, "POST", "/v1/signals", signal("i-1", a))
    assert first.status == 201
    repeat = call(service, school, "POST", "/v1/signals", signal("i-1", a))
    assert repeat.status == 200
    assert repeat.json()["signal_id"] == first.json()["signal_id"]
    changed = call(service, school, "POST", "/v1/signals", signal("i-1", b))
    assert changed.status == 409
    assert changed.headers["content-type"] == "application/problem+json"
    same_person = call(service, school, "POST", "/v1/signals", signal("i-2", a))
    assert same_person.status == 409


def test_only_the_owner_can_withdraw(service: RunningService) -> None:
    school, gp = service.org("education"), service.org("gp")
    (a,) = pseudonyms(service, school, fresh_bsn())
    assert call(service, school, "POST", "/v1/signals", signal("o-1", a)).status == 201
    assert call(service, gp, "DELETE", "/v1/signals/o-1?reason=unjustified").status == 404
    assert call(service, gp, "GET", "/v1/matches?local_ref=o-1").status == 404
    assert call(service, school, "GET", "/v1/matches?local_ref=o-1").status == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reason": "suspected abuse"}, "reason"),
        ({"person": "AAAA"}, "person"),
        ({"person": refclient.b64url_encode(bytes(32))}, "person"),
        ({"parents": [refclient.b64url_encode(b"\xff" * 32)]}, "parents[0]"),
        ({"parents": ["x" * 43] * 5}, "parents"),
        ({"epoch": "1"}, "epoch"),
        ({"epoch": 2}, "epoch"),
        ({"local_ref": "has space"}, "local_ref"),
        ({"remove_on": "2020-01-01"}, "remove_on"),
        ({"remove_on": (dt.date.today() + dt.timedelta(days=800)).isoformat()}, "remove_on"),
        ({"remove_on": "2027-02-30"}, "remove_on"),
        ({"professional": {"name": "Anna"}}, "professional"),
        (
            {"professional": {"name": "Anna", "email": "anna@example.nl", "note": "x"}},
            "professional.note",
        ),
        (
            {"professional": {"name": "Anna; risk: neglect", "email": "a@example.nl"}},
            "professional.name",
        ),
    ],
)
def test_bad_signals_are_refused_naming_the_field(
    service: RunningService, change: dict[str, Any], field: str
) -> None:
    school = service.org("education")
    (a,) = pseudonyms(service, school, fresh_bsn())
    body = signal(f"bad-{abs(hash(field)) % 10**6}", a) | change
    reply = call(service, school, "POST", "/v1/signals", body)
    assert reply.status == 422, reply.body
    assert field in [e["field"] for e in reply.json()["errors"]]
    # Nothing was stored: the same person can still be registered.
    assert (
        call(
            service,
            school,
            "POST",
            "/v1/signals",
            signal(f"ok-{len(field)}-{abs(hash(str(change))) % 10**6}", a),
        ).status
        == 201
    )


def test_withdraw_needs_a_known_reason(service: RunningService) -> None:
    school = service.org("education")
    (a,) = pseudonyms(service, school, fresh_bsn())
    call(service, school, "POST", "/v1/signals", signal("r-1", a))
    reply = call(service, school, "DELETE", "/v1/signals/r-1?reason=bored")
    assert reply.status == 422
    assert reply.json()["errors"][0]["field"] == "reason"
    assert call(service, school, "GET", "/v1/matches?local_ref=r-1").status == 200


def test_notification_cursor_never_repeats_or_skips(service: RunningService) -> None:
    school, gp = service.org("education"), service.org("gp")
    for i in range(4):
        (a,) = pseudonyms(service, school, fresh_bsn())
        call(service, school, "POST", "/v1/signals", signal(f"p-{i}", a))
        call(service, gp, "POST", "/v1/signals", signal(f"p-{i}", a))
    everything, _ = notifications(service, school)
    seen: list[str] = []
    after = None
    while True:
        page = call(
            service,
            school,
            "GET",
            "/v1/notifications?limit=1" + (f"&after={after}" if after else ""),
        ).json()
        if not page["items"]:
            break
        seen += [i["id"] for i in page["items"]]
        after = page["next"]
    assert seen == [i["id"] for i in everything]
    assert len(set(seen)) == len(seen)
    bad = call(service, school, "GET", "/v1/notifications?after=abc")
    assert bad.status == 422 and bad.json()["errors"][0]["field"] == "after"


def test_audit_log_holds_ids_not_pseudonyms(service: RunningService) -> None:
    school = service.org("education")
    (a,) = pseudonyms(service, school, fresh_bsn())
    call(service, school, "POST", "/v1/signals", signal("au-1", a))
    bodies = [bytes(b) for (b,) in service.sql("SELECT body FROM audit_entries")]
    actions = {json.loads(b)["action"] for b in bodies}
    assert {
        "signal.registered",
        "match.created",
        "notification.created",
        "notifications.read",
        "request.refused",
    } <= actions
    # The evaluation is logged by the key holder, in its own log; the index made none.
    assert "oprf.evaluate" not in actions
    held = [bytes(b) for (b,) in service.keyholder_sql("SELECT body FROM audit_entries")]
    assert "oprf.evaluate" in {json.loads(b)["action"] for b in held}
    raw = refclient.b64url_decode(a)
    for logged in (bodies, held):
        assert not any(a.encode() in b or raw in b or raw.hex().encode() in b for b in logged)
    assert "intact" in service.vir("audit", "verify").stdout
    assert "intact" in service.keyholder("audit", "verify").stdout


def test_excluded_address_ends_and_prevents_household_matches(service: RunningService) -> None:
    school, gp = service.org("education"), service.org("gp")
    a, b = pseudonyms(service, school, fresh_bsn(), fresh_bsn())
    _, (shelter,) = refclient.pseudonymise(
        service.keyholder_url, service.ca, school.cert, school.key, [b"nl-address:3012CD:5:"]
    )
    home = refclient.b64url_encode(shelter)
    start = {o.oin: cursor(service, o) for o in (school, gp)}
    call(service, school, "POST", "/v1/signals", signal("x-1", a, address=home))
    call(service, gp, "POST", "/v1/signals", signal("x-2", b, address=home))
    assert summary(notifications(service, school, start[school.oin])[0]) == [
        ("match.created", "x-1", "address", [gp.oin])
    ]
    # The operator's way (an address officer's client: test_client_cli): the pseudonym
    # made at the key holder, and its epoch.
    service.vir(
        "address", "exclude", "--label", "Opvang De Haven", "--epoch", "1", stdin=home + "\n"
    )
    assert summary(notifications(service, school, start[school.oin])[0])[1:] == [
        ("match.left", "x-1", "address", [gp.oin])
    ]
    assert call(service, school, "GET", "/v1/matches?local_ref=x-1").json()["matches"] == []
    c = pseudonyms(service, school, fresh_bsn())[0]
    call(service, service.org("youth_care"), "POST", "/v1/signals", signal("x-3", c, address=home))
    assert len(notifications(service, school, start[school.oin])[0]) == 2
    assert "Opvang De Haven" in service.vir("address", "list").stdout


def test_vir_demo_prints_each_organisations_notifications(service: RunningService) -> None:
    result = service.vir("demo", "--url", service.url, "--dev-dir", str(service.dev))
    out = result.stdout
    assert "Basisschool De Regenboog (education): 2 notification(s)" in out
    assert "Huisartsenpraktijk Kralingen (gp): 2 notification(s)" in out
    assert "Jeugdzorg Rijnmond (youth_care): 1 notification(s)" in out
    assert "Veilig Thuis Rotterdam Rijnmond (veilig_thuis): 0 notification(s)" in out
    assert "household/parent" in out and "person/person" in out
    # Partners see the function's Dutch label (the demo sends codes such as intern_begeleider).
    assert "Els Visser, Intern begeleider" in out and "Dr. Karim Bouali, Huisarts" in out
