"""``POST /v1/signals/batch``: each item is a ``POST /v1/signals`` of its own, in order.

The oracle is the single endpoint itself: the same items sent one by one to a second
app on a fresh store give the same statuses and matches, and every refused item's
problem is exactly the single endpoint's answer to that item.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.inapp import InApp, in_app, person, signal_body
from support.instore import ORGS

from vir.api.identity import require_caller
from vir.api.routes.signals_batch import CHUNK
from vir.domain.encoding import b64url_encode
from vir.domain.organisations import Role
from vir.services.identity import Caller
from vir.store.tables import RefusalCountRow, SignalRow

BATCH = "/v1/signals/batch"
SCHOOL, GP = 0, 1


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path / "batch") as made:
        yield made


def _items(epoch: int) -> list[dict[str, Any]]:
    """A back office's day: new signals, repeats, conflicts and invalid items mixed."""
    changed = signal_body("gp-1", "Kim", epoch)
    changed["professional"] = {"name": "Karim Bouali", "email": "k.bouali@gp.example"}
    bad_element = signal_body("gp-4", "Noor", epoch)
    bad_element["person"] = b64url_encode(b"\xff" * 32)
    free_text = signal_body("gp-5", "Daan", epoch)
    free_text["professional"]["name"] = "Anna de Wit vermoedt mishandeling door stiefvader"
    return [
        signal_body("gp-1", "Kim", epoch),  # 201, matches the school's signal on Kim
        signal_body("gp-1", "Kim", epoch),  # 200: the same again
        changed,  # 409: other content under gp-1
        signal_body("gp-2", "Kim", epoch),  # 409: a second signal on Kim
        bad_element,  # 422 person
        free_text,  # 422 professional.name
        {"local_ref": "gp-6", "epoch": epoch},  # 422: person, professional missing
        signal_body("gp-3", "Lex", epoch),  # 201
    ]


def _without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer with its generated ids and timestamps left out, to compare two stores."""
    stripped = {k: v for k, v in answer.items() if k not in ("signal_id",)}
    if "matches" in stripped:
        # Listed in match id order, and ids are drawn at random: compared sorted.
        stripped["matches"] = sorted(
            (
                {
                    "kind": m["kind"],
                    "via": m["via"],
                    "participants": [p["organisation"]["oin"] for p in m["participants"]],
                }
                for m in stripped["matches"]
            ),
            key=repr,
        )
    return stripped


def test_a_batch_answers_what_the_items_one_by_one_would(app: InApp, tmp_path: Path) -> None:
    epoch = app.epoch
    app.as_caller(SCHOOL)
    assert app.request("POST", "/v1/signals", json=signal_body("s-1", "Kim", epoch)).is_success
    app.as_caller(GP)
    answer = app.request("POST", BATCH, json={"signals": _items(epoch)})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 200, 409, 409, 422, 422, 422, 201]
    assert [r["local_ref"] for r in results] == [
        "gp-1",
        "gp-1",
        "gp-1",
        "gp-2",
        "gp-4",
        "gp-5",
        "gp-6",
        "gp-3",
    ]
    assert results[0]["signal_id"] == results[1]["signal_id"]
    # The second signal on Kim names the organisation's own reference for the first, so
    # that its back office finds the case its two references share; the other conflict
    # names none.
    assert results[3]["existing_local_ref"] == "gp-1" and "gp-1" in results[3]["detail"]
    assert "existing_local_ref" not in results[2]
    single = app.request("POST", "/v1/signals", json=signal_body("gp-7", "Kim", epoch))
    assert single.status_code == 409
    assert single.json()["type"] == "urn:vir:problem:conflict"
    assert single.json()["existing_local_ref"] == "gp-1"
    (match,) = results[0]["matches"]
    assert match["participants"][0]["organisation"]["oin"] == str(ORGS[SCHOOL].oin)
    assert results[4]["errors"] == [
        {"field": "person", "message": results[4]["errors"][0]["message"]}
    ]
    assert [e["field"] for e in results[5]["errors"]] == ["professional.name"]
    assert "mishandeling" not in answer.text

    # The same items, one by one, on a fresh store: the same answers.
    with in_app(tmp_path / "single") as single:
        single.as_caller(SCHOOL)
        single.request("POST", "/v1/signals", json=signal_body("s-1", "Kim", epoch))
        single.as_caller(GP)
        one_by_one = [single.request("POST", "/v1/signals", json=i) for i in _items(epoch)]
    for result, alone in zip(results, one_by_one, strict=True):
        assert result["status"] == alone.status_code
        expected = _without_ids(alone.json())
        if alone.status_code >= 400:
            # The problem, member for member, as the single endpoint answers it.
            assert {k: v for k, v in result.items() if k != "local_ref"} == alone.json()
        else:
            assert _without_ids(result) == {**expected, "status": alone.status_code}

    # What the batch stored is what it said: one signal per accepted local_ref.
    with app.app.state.services.db.read() as session:
        refs = session.scalars(
            select(SignalRow.local_ref).where(SignalRow.oin == str(ORGS[GP].oin))
        )
        assert sorted(refs) == ["gp-1", "gp-3"]


def _household_items(epoch: int, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` items over a small world: young persons sharing parents and addresses,
    repeats and second signals on one child, in an order that takes group locks in
    every order (several chunks of ``CHUNK``)."""
    rng = random.Random(seed)
    items = []
    for i in range(count):
        if items and i % 10 == 9:
            items.append(dict(rng.choice(items)))  # a repeat, or a conflict by then
            continue
        body = signal_body(f"h-{rng.randrange(count)}", f"child-{rng.randrange(40)}", epoch)
        parents = rng.sample(range(10), rng.randrange(3))
        body["parents"] = [b64url_encode(person(f"parent-{p}")) for p in parents]
        if rng.random() < 0.5:
            body["address"] = b64url_encode(person(f"address-{rng.randrange(6)}"))
        items.append(body)
    return items


def test_a_batch_of_several_chunks_matches_households_as_one_by_one(
    app: InApp, tmp_path: Path
) -> None:
    """Chunks of ``CHUNK`` items are each one transaction with its locks taken in two
    rounds: the statuses and matches are still those of the items one by one."""
    epoch = app.epoch
    items = _household_items(epoch, 2 * CHUNK + 20, seed=7)
    earlier = _household_items(epoch, 30, seed=8)
    app.as_caller(SCHOOL)
    for item in earlier:
        app.request("POST", "/v1/signals", json=item)
    app.as_caller(GP)
    answer = app.request("POST", BATCH, json={"signals": items})
    assert answer.status_code == 200
    results = answer.json()["results"]
    with in_app(tmp_path / "single") as single:
        single.as_caller(SCHOOL)
        for item in earlier:
            single.request("POST", "/v1/signals", json=item)
        single.as_caller(GP)
        one_by_one = [single.request("POST", "/v1/signals", json=i) for i in items]
    assert {r["status"] for r in results} >= {200, 201, 409}
    for result, alone in zip(results, one_by_one, strict=True):
        assert result["status"] == alone.status_code
        if alone.status_code < 400:
            assert _without_ids(result) == {
                **_without_ids(alone.json()),
                "status": alone.status_code,
            }


def test_a_repeated_item_is_answered_as_a_repeat_afterwards_too(app: InApp) -> None:
    epoch = app.epoch
    app.as_caller(GP)
    first = app.request("POST", BATCH, json={"signals": [signal_body("r-1", "Kim", epoch)]})
    again = app.request("POST", BATCH, json={"signals": [signal_body("r-1", "Kim", epoch)]})
    single = app.request("POST", "/v1/signals", json=signal_body("r-1", "Kim", epoch))
    assert [first.json()["results"][0]["status"], again.json()["results"][0]["status"]] == [
        201,
        200,
    ]
    assert single.status_code == 200
    assert single.json()["signal_id"] == first.json()["results"][0]["signal_id"]


def test_refused_items_are_accounted_for_as_refusals_of_the_batch(app: InApp) -> None:
    epoch = app.epoch
    app.as_caller(GP)
    items = [signal_body("a-1", "Kim", epoch), signal_body("a-2", "Kim", epoch), {"x": 1}]
    assert app.request("POST", BATCH, json={"signals": items}).status_code == 200
    with app.app.state.services.db.read() as session:
        counted = {
            row.reason: row.count
            for row in session.scalars(
                select(RefusalCountRow).where(RefusalCountRow.endpoint == "POST /v1/signals/batch")
            )
        }
    assert counted == {"second_signal_on_person": 1, "invalid_input": 1}


def test_the_envelope_is_checked_as_a_whole(app: InApp) -> None:
    app.as_caller(GP)
    for body, field in [
        ({"signals": []}, "signals"),
        ({}, "signals"),
        ({"signals": [signal_body("e-1", "Kim", app.epoch), 7]}, "signals[1]"),
        ({"signals": [signal_body("e-2", "Kim", app.epoch)], "note": "x"}, "note"),
    ]:
        answer = app.request("POST", BATCH, json=body)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in answer.json()["errors"]] == [field]
    with app.app.state.services.db.read() as session:
        assert session.scalars(select(SignalRow.local_ref)).all() == []


def test_only_a_reporting_organisation_may_send_a_batch(app: InApp) -> None:
    officer = Caller(ORGS[GP], "f" * 64, Role.PRIVACY_OFFICER)
    app.app.dependency_overrides[require_caller] = lambda: officer
    answer = app.request("POST", BATCH, json={"signals": [signal_body("o-1", "Kim", app.epoch)]})
    assert answer.status_code == 403
    assert answer.json()["type"] == "urn:vir:problem:not-permitted"


def test_the_document_describes_the_batch(app: InApp) -> None:
    spec = app.app.openapi()
    operation = spec["paths"][BATCH]["post"]
    assert operation["operationId"] == "registerSignalBatch"
    request = spec["components"]["schemas"]["SignalBatchIn"]["properties"]["signals"]
    assert (request["minItems"], request["maxItems"]) == (1, 500)
    result = spec["components"]["schemas"]["SignalBatchOut"]["properties"]["results"]
    assert {r["$ref"].rsplit("/", 1)[1] for r in result["items"]["anyOf"]} == {
        "BatchRegistered",
        "BatchRefused",
    }


def test_the_client_stops_at_the_rate_limit_and_resumes_without_resending(
    tmp_path: Path,
) -> None:
    """``vir.client.bulk`` over the batch endpoint, in-process: rows over the registration
    limit are waited for (``retry_after``) and, past the client's retry policy, left for
    the next run, which skips the rows the state file holds."""
    from vir.client import bulk

    waits: list[float] = []
    with _limited_client(tmp_path, "rl", 8, retries=2) as (app, client, path):
        options = bulk.Options(progress=False)
        first = bulk.Summary()
        with pytest.raises(bulk.Stopped, match="refused more registrations"):
            bulk.import_file(client, path, options, None, summary=first, sleep=waits.append)
        # The app's clock stands still: the bucket never refills, two waits, then a stop.
        assert waits == [60.0, 60.0]
        assert (first.registered, first.not_done, first.state_kept) == (5, 3, True)
        assert _refs(app) == [f"rl-{i}" for i in range(5)]

        again = bulk.Summary()
        with pytest.raises(bulk.Stopped):
            bulk.import_file(client, path, options, None, summary=again, sleep=waits.append)
        assert (again.done_earlier, again.registered, again.unchanged) == (5, 0, 0)
        assert _refs(app) == [f"rl-{i}" for i in range(5)]


@contextmanager
def _limited_client(tmp_path: Path, prefix: str, rows: int, retries: int) -> Iterator[Any]:
    """A CSV of ``rows`` made-up rows, and a ``VirClient`` speaking in-process to an index
    with a registration burst of 5 (its clock stands still: nothing refills) and to a
    key holder: yields (app, client, path)."""
    from support.inapp import in_keyholder

    from vir.client.connection import RetryPolicy, VirClient
    from vir.client.demo import made_up_bsn

    path = tmp_path / "rows.csv"
    lines = ["local_ref,bsn,professional_name,professional_email"]
    lines += [f"{prefix}-{i},{made_up_bsn()},Anna de Wit,a@example.nl" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (
        in_app(tmp_path / "index", register_burst=5, register_per_hour=60) as app,
        in_keyholder(tmp_path) as holder,
    ):
        app.as_caller(GP)
        holder.as_caller(GP)
        client = VirClient.__new__(VirClient)  # in-process: no TLS to set up
        client._http = httpx.Client(transport=_InProcess(app), base_url="http://vir")
        client._holders = (httpx.Client(transport=_InProcess(holder), base_url="http://kh"),)
        client.retry = RetryPolicy(max_retries=retries, max_wait=600)
        try:
            yield app, client, path
        finally:
            for http in (client._http, *client._holders):
                http.close()


def _refs(app: InApp) -> list[str]:
    with app.app.state.services.db.read() as session:
        found = session.scalars(
            select(SignalRow.local_ref).where(SignalRow.oin == str(ORGS[GP].oin))
        )
        return sorted(found)


class _InProcess(httpx.BaseTransport):
    """A synchronous transport to an in-process app (what ``VirClient`` speaks)."""

    def __init__(self, app: InApp) -> None:
        self._asgi = httpx.ASGITransport(app=app.app, raise_app_exceptions=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            answer = await self._asgi.handle_async_request(request)
            body = await answer.aread()
            return httpx.Response(answer.status_code, headers=answer.headers, content=body)

        return asyncio.run(call())


def _refusals(app: InApp) -> dict[str, int]:
    with app.app.state.services.db.read() as session:
        return {
            row.reason: row.count
            for row in session.scalars(
                select(RefusalCountRow).where(RefusalCountRow.endpoint == "POST /v1/signals/batch")
            )
        }


def test_a_repeat_of_ones_own_signal_takes_no_registration_token(tmp_path: Path) -> None:
    """A nightly sync repeats every signal the organisation still holds: an idempotent
    repeat (200) tells it nothing new and costs nothing, so it goes through with the
    bucket empty (the app's clock stands still: nothing refills). A new signal is
    still refused, and every item after it."""
    with in_app(tmp_path / "index", register_burst=3, register_per_hour=60) as app:
        epoch = app.epoch
        app.as_caller(GP)
        held = [signal_body(f"t-{i}", name, epoch) for i, name in enumerate(["Kim", "Lex", "Noor"])]
        first = app.request("POST", BATCH, json={"signals": held}).json()["results"]
        assert [r["status"] for r in first] == [201, 201, 201]
        for _night in range(3):
            again = app.request("POST", BATCH, json={"signals": held}).json()["results"]
            assert [r["status"] for r in again] == [200, 200, 200]
        assert app.request("POST", "/v1/signals", json=held[0]).status_code == 200
        mixed = [held[0], signal_body("t-3", "Daan", epoch), held[1]]
        answer = app.request("POST", BATCH, json={"signals": mixed}).json()["results"]
        assert [r["status"] for r in answer] == [200, 429, 429]
        only_new = [signal_body("t-4", "Fem", epoch)]
        assert (
            app.request("POST", BATCH, json={"signals": only_new}).json()["results"][0]["status"]
            == 429
        )
        assert _refs(app) == ["t-0", "t-1", "t-2"]


def test_a_rate_limited_batch_is_one_refusal_not_one_per_untried_item(tmp_path: Path) -> None:
    """Items after the first refused with 429 are not tried: the audit log's refusal
    counts (and the privacy report) hold one refusal for the request, however many
    items, in one chunk or several, it carried."""
    with in_app(tmp_path / "index", register_burst=3, register_per_hour=60) as app:
        epoch = app.epoch
        app.as_caller(GP)
        items = [signal_body(f"u-{i}", f"Kind{i}", epoch) for i in range(CHUNK + 20)]
        answer = app.request("POST", BATCH, json={"signals": items}).json()["results"]
        assert [r["status"] for r in answer] == [201] * 3 + [429] * (CHUNK + 17)
        assert _refusals(app) == {"rate_limited": 1}
        # Refused before anything is tried (the bucket is known to be empty): one too.
        answer = app.request("POST", BATCH, json={"signals": items[3:]}).json()["results"]
        assert {r["status"] for r in answer} == {429}
        assert _refusals(app) == {"rate_limited": 2}


def test_a_rate_limited_sync_leaves_a_bounded_number_of_refusals(tmp_path: Path) -> None:
    """``vir-client sync`` past the registration limit, in-process: each request the
    index refuses is one refusal in the audit log's counts, and after a wait the client
    sends only what the wait bought (one row), not the rest of the batch again. The
    app's clock stands still: no wait buys anything, and the run stops after its
    retries with one refusal for the first request and one for each retry."""
    from vir.client import bulk

    waits: list[float] = []
    with _limited_client(tmp_path, "s", 40, retries=3) as (app, client, path):
        sent: list[int] = []  # the items of each request
        register = client.register_signals

        def counted(signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
            sent.append(len(signals))
            return register(signals)

        client.register_signals = counted  # type: ignore[method-assign]
        summary = bulk.Summary(sync=True)
        with pytest.raises(bulk.Stopped, match="refused more registrations"):
            bulk.sync_file(
                client,
                path,
                bulk.Options(progress=False),
                None,
                summary=summary,
                sleep=waits.append,
            )
        assert waits == [60.0] * 3
        assert sent == [40, 1, 1, 1]
        assert (summary.registered, summary.not_done) == (5, 35)
        assert _refusals(app) == {"rate_limited": 1 + len(waits)}
