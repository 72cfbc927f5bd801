"""``POST /v1/signals/batch`` tried as an attacker would (issue 15, part 4).

A batch is 500 registrations in one request: it must not be a way around anything a
single ``POST /v1/signals`` is held to. Too many items, none, or a body over the limit
are refused as a whole; every item is checked as the single endpoint checks its body
(canonical elements, no case content in the contact details, no unknown fields), one
bad item refused on its own without echoing what it sent; the per-organisation
registration rate limit is charged per item, and from the first item over it the rest
are refused; a ``local_ref`` is the caller's own, whoever else uses the same one; and a
``local_ref`` repeated inside one batch is a repeat (200) or a conflict (409), never a
second signal. Over the whole app in-process (``support.inapp``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS
from support.world import person

from vir.domain.encoding import b64url_encode
from vir.settings import Settings
from vir.store.tables import SignalRow

BATCH = "/v1/signals/batch"
SCHOOL, GP = 0, 1
P = 2**255 - 19
MARKER = "mishandeling"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as made:
        yield made


def _stored(app: InApp, oin: int = GP) -> list[str]:
    with app.app.state.services.db.read() as session:
        return sorted(
            session.scalars(select(SignalRow.local_ref).where(SignalRow.oin == str(ORGS[oin].oin)))
        )


def _stored_text(app: InApp) -> str:
    """Every value of every table, as text."""
    engine = app.app.state.services.db.engine
    meta = MetaData()
    meta.reflect(engine)
    parts: list[str] = []
    with engine.connect() as connection:
        for table in meta.sorted_tables:
            for row in connection.execute(select(table)):
                parts.extend(
                    bytes(v).decode("utf-8", "replace")
                    if isinstance(v, bytes | bytearray | memoryview)
                    else str(v)
                    for v in row
                )
    return "\n".join(parts).lower()


def _minimal(ref: str, who: str, epoch: int) -> dict[str, Any]:
    return {
        "local_ref": ref,
        "epoch": epoch,
        "person": b64url_encode(person(who)),
        "professional": {"name": "An Bos", "email": "a@b.nl"},
    }


def _statuses(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [r["status"] for r in answer.json()["results"]]


def test_more_than_500_items_are_refused_whatever_the_body_limit(tmp_path: Path) -> None:
    with in_app(tmp_path, max_body_bytes=1_000_000) as app:
        app.as_caller(GP)
        items = [_minimal(f"n-{i}", f"child {i}", app.epoch) for i in range(501)]
        answer = app.request("POST", BATCH, json={"signals": items})
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["errors"]] == ["signals"]
        assert _stored(app) == []


def test_an_empty_batch_is_refused(app: InApp) -> None:
    app.as_caller(GP)
    answer = app.request("POST", BATCH, json={"signals": []})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "signals"


def test_a_body_over_the_limit_is_413_and_nothing_is_stored(app: InApp) -> None:
    """The batch's own limit (VIR_MAX_BATCH_BODY_BYTES, tests/unit/api/test_batch_body_limit.py
    for what it holds): 500 items padded past it are refused whole."""
    app.as_caller(GP)
    items = [signal_body(f"big-{i}", f"child {i}", app.epoch) for i in range(500)]
    body = json.dumps({"signals": items}).encode()
    body += b" " * (Settings.model_fields["max_batch_body_bytes"].default + 1 - len(body))
    answer = app.request("POST", BATCH, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["type"] == "urn:vir:problem:body-too-large"
    assert _stored(app) == []


def test_another_organisations_local_ref_is_a_signal_of_ones_own(app: InApp) -> None:
    epoch = app.epoch
    app.as_caller(SCHOOL)
    school = app.request("POST", "/v1/signals", json=signal_body("LLN-7", "Kim", epoch)).json()
    app.as_caller(GP)
    answer = app.request(
        "POST",
        BATCH,
        json={"signals": [signal_body("LLN-7", "Sam", epoch), signal_body("LLN-7", "Kim", epoch)]},
    )
    first, second = answer.json()["results"]
    # The school's reference is nothing to the GP: a new signal of the GP's own, no match,
    # and the school's signal untouched.
    assert first["status"] == 201 and first["matches"] == []
    assert first["signal_id"] != school["signal_id"]
    # The same reference again with other content: a conflict with the GP's own signal.
    assert second["status"] == 409
    app.as_caller(SCHOOL)
    mine = app.request("GET", "/v1/signals/LLN-7").json()
    assert mine["signal_id"] == school["signal_id"] and mine["matches"] is None
    assert _stored(app, SCHOOL) == ["LLN-7"] and _stored(app, GP) == ["LLN-7"]


def _noncanonical(element: bytes) -> dict[str, str]:
    s = int.from_bytes(element, "little")
    return {
        "bit 255 set": b64url_encode((s | 1 << 255).to_bytes(32, "little")),
        "s + p": b64url_encode((s + P).to_bytes(32, "little")),
        "identity": b64url_encode(bytes(32)),
        "padding": b64url_encode(element) + "=",
    }


@pytest.mark.parametrize("field", ["person", "parents[1]", "address"])
def test_noncanonical_elements_inside_items_are_refused_one_by_one(app: InApp, field: str) -> None:
    epoch = app.epoch
    app.as_caller(GP)
    items = []
    for i, bad in enumerate(_noncanonical(person("Kim")).values()):
        item = signal_body(f"nc-{i}", "Kim", epoch)
        item["parents"] = [b64url_encode(person("Mum")), b64url_encode(person("Dad"))]
        item["address"] = b64url_encode(person("home"))
        if field == "person":
            item["person"] = bad
        elif field == "address":
            item["address"] = bad
        else:
            item["parents"][1] = bad
        items.append(item)
    items.append(signal_body("nc-ok", "Noor", epoch))
    answer = app.request("POST", BATCH, json={"signals": items})
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [422] * 4 + [201]
    for result, bad in zip(results, _noncanonical(person("Kim")).values(), strict=False):
        assert [e["field"] for e in result["errors"]] == [field], result
        assert bad.rstrip("=") not in answer.text
    assert _stored(app) == ["nc-ok"]


SMUGGLED = [
    ("name", "Anna de Wit vermoedt mishandeling door stiefvader"),
    ("name", "Anna de Wit\u200dmishandeling"),
    ("email", "anna vermoedt mishandeling@school.example"),
    ("phone", "06-12345678 mishandeling"),
    ("function", "mentor, vermoedt mishandeling"),
]


def test_free_text_inside_items_is_refused_and_never_stored(app: InApp) -> None:
    epoch = app.epoch
    app.as_caller(SCHOOL)
    items = []
    for i, (field, value) in enumerate(SMUGGLED):
        item = signal_body(f"ft-{i}", f"child {i}", epoch)
        item["professional"][field] = value
        items.append(item)
    # Case content in a field the contract does not have, and in the reference itself.
    items.append(signal_body("ft-note", "child n", epoch) | {"note": f"{MARKER} thuis"})
    items.append(signal_body(f"ft {MARKER}", "child r", epoch))
    items.append(signal_body("ft-ok", "child ok", epoch))
    answer = app.request("POST", BATCH, json={"signals": items})
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [422] * 7 + [201]
    fields = [[e["field"] for e in r["errors"]] for r in results[:7]]
    assert fields == [[f"professional.{f}"] for f, _v in SMUGGLED] + [["note"], ["local_ref"]]
    # A reference that is no reference is not repeated either: null, not echoed.
    assert results[6]["local_ref"] is None
    assert MARKER not in answer.text.lower() and "stiefvader" not in answer.text.lower()
    assert MARKER not in _stored_text(app)
    assert _stored(app, SCHOOL) == ["ft-ok"]


def test_a_batch_is_no_way_around_the_rate_limit(tmp_path: Path) -> None:
    with in_app(tmp_path, register_burst=3, register_per_hour=1) as app:
        epoch = app.epoch
        app.as_caller(GP)
        # Invalid items cost nothing, as with the single endpoint: they never get that far.
        invalid = [{"local_ref": f"x-{i}"} for i in range(5)]
        assert _statuses(app.request("POST", BATCH, json={"signals": invalid})) == [422] * 5
        items = [signal_body(f"rl-{i}", f"child {i}", epoch) for i in range(6)]
        answer = app.request("POST", BATCH, json={"signals": items})
        results = answer.json()["results"]
        assert [r["status"] for r in results] == [201, 201, 201, 429, 429, 429]
        for refused in results[3:]:
            assert refused["type"] == "urn:vir:problem:rate-limited"
            assert refused["retry_after"] >= 1
        assert _stored(app) == ["rl-0", "rl-1", "rl-2"]
        # The bucket is the single endpoint's: it is empty for both now.
        single = app.request("POST", "/v1/signals", json=items[3])
        assert single.status_code == 429
        assert {k: v for k, v in results[3].items() if k not in ("local_ref", "retry_after")} == (
            single.json()
        )
        assert _statuses(app.request("POST", BATCH, json={"signals": items[3:]})) == [429] * 3
        assert _stored(app) == ["rl-0", "rl-1", "rl-2"]


def test_a_local_ref_repeated_inside_one_batch_is_a_repeat_or_a_conflict(app: InApp) -> None:
    epoch = app.epoch
    app.as_caller(GP)
    other = signal_body("dup-2", "Sam", epoch)
    other["professional"]["email"] = "other@school.example"
    items = [
        signal_body("dup-1", "Kim", epoch),
        signal_body("dup-1", "Kim", epoch),
        signal_body("dup-2", "Sam", epoch),
        other,
        signal_body("dup-1", "Noor", epoch),
    ]
    results = app.request("POST", BATCH, json={"signals": items}).json()["results"]
    assert [r["status"] for r in results] == [201, 200, 201, 409, 409]
    assert results[0]["signal_id"] == results[1]["signal_id"]
    assert _stored(app) == ["dup-1", "dup-2"]
    with app.app.state.services.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SignalRow)) == 2
