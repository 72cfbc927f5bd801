"""``VirClient.pseudonymise`` at the key holder(s), against in-process fakes that hold a
real key or real Shamir shares of one: one holder's answer unblinds to ``k·H(x)``;
with a threshold, t answers combine to the same; failing holders are skipped while t
others answer; holders activating a rotation one by one (mixed epochs) are asked until
t answer under one epoch; too few answers under one epoch, or repeated share indices,
are refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from vir.client import connection, consultations
from vir.client.connection import (
    ClientError,
    EpochNotAccepted,
    EpochsDiffer,
    ProtocolError,
    ServiceError,
    VirClient,
)
from vir.crypto import oprf, threshold
from vir.domain.encoding import b64url_decode, b64url_encode

KEY = oprf.hash_to_scalar(b"a test key, not a published one")
DELTA = oprf.hash_to_scalar(b"a test rotation factor")  # epoch 2's key is DELTA * KEY
INPUTS = ["nl-bsn:123456782", "nl-bsn:111222333"]
Handler = Callable[[httpx.Request], httpx.Response]


def holder(secret: bytes, share_index: int | None = None, epoch: int = 1, t: int = 2) -> Handler:
    """A key holder that evaluates with ``secret`` (a share when ``share_index``, of a
    deployment whose answers are combined ``t`` at a time)."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/v1/oprf/evaluate")
        blinded = [b64url_decode(e) for e in json.loads(request.content)["blinded_elements"]]
        body: dict[str, object] = {
            "epoch": epoch,
            "evaluated_elements": [
                b64url_encode(oprf.evaluate(secret, b)) for b in blinded if b is not None
            ],
        }
        if share_index is not None:
            body["share_index"] = share_index
            body["threshold"] = t
        return httpx.Response(200, json=body)

    return answer


def down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def refusing(request: httpx.Request) -> httpx.Response:
    problem = {"type": "urn:vir:problem:forbidden", "title": "t", "status": 403, "detail": "d"}
    return httpx.Response(403, json=problem)


def client(handlers: list[Handler], t: int = 1) -> VirClient:
    made = object.__new__(VirClient)  # no certificate: mock transports
    made._holders = tuple(
        httpx.Client(base_url=f"https://holder-{n}.test", transport=httpx.MockTransport(h))
        for n, h in enumerate(handlers)
    )
    made.threshold = t
    made._sleep = lambda _seconds: None
    return made


def expected(key: bytes = KEY) -> list[str]:
    return [b64url_encode(oprf.scalar_mult(key, oprf.hash_to_group(x.encode()))) for x in INPUTS]


def test_one_key_holder_gives_k_times_h_of_x() -> None:
    made = client([holder(KEY)]).pseudonymise(INPUTS)
    assert (made.epoch, made.pseudonyms) == (1, expected())


def test_any_two_of_three_shares_combine_to_the_same_pseudonyms() -> None:
    shares = threshold.split(KEY, 2, 3)
    holders = [holder(s.secret, s.index) for s in shares]
    for pair in ([0, 1], [1, 2], [0, 2]):
        made = client([holders[i] for i in pair], t=2).pseudonymise(INPUTS)
        assert made.pseudonyms == expected(), pair
    # All three listed: the first two that answer are used.
    assert client(holders, t=2).pseudonymise(INPUTS).pseudonyms == expected()


def test_a_failing_key_holder_is_skipped_while_enough_others_answer() -> None:
    shares = threshold.split(KEY, 2, 3)
    holders = [down, refusing, *(holder(s.secret, s.index) for s in shares[1:])]
    assert client(holders, t=2).pseudonymise(INPUTS).pseudonyms == expected()


def test_too_few_answers_is_a_clear_error() -> None:
    shares = threshold.split(KEY, 2, 3)
    with pytest.raises(ClientError, match="1 of the 2 key holder answers needed") as failed:
        client([down, holder(shares[0].secret, shares[0].index), down], t=2).pseudonymise(INPUTS)
    assert not isinstance(failed.value, ServiceError)
    with pytest.raises(ClientError, match="0 of the 1 key holder answers"):
        client([down]).pseudonymise(INPUTS)
    # A single refusal is the service's own answer (e.g. 403, 429 with its problem).
    with pytest.raises(ServiceError) as refused:
        client([refusing]).pseudonymise(INPUTS)
    assert refused.value.status == 403
    # Which server refused: the key holder keeps its own register of organisations.
    assert str(refused.value).startswith("key holder https://holder-0.test: 403 ")
    with pytest.raises(ClientError) as both:
        client([refusing, refusing], t=2).pseudonymise(INPUTS)
    assert "2 key holder(s) failed (key holder https://holder-0.test: 403 " in str(both.value)
    assert "; key holder https://holder-1.test: 403 " in str(both.value)


def test_no_key_holder_configured_is_a_clear_error() -> None:
    with pytest.raises(ClientError, match="no key holder"):
        client([]).pseudonymise(INPUTS)


def test_answers_that_cannot_be_combined_are_refused() -> None:
    shares = threshold.split(KEY, 2, 3)
    first = holder(shares[0].secret, shares[0].index)
    with pytest.raises(EpochsDiffer, match="different key epochs"):
        client([first, holder(shares[1].secret, shares[1].index, epoch=2)], t=2).pseudonymise(
            INPUTS
        )
    with pytest.raises(ProtocolError, match="share indices"):
        client([first, first], t=2).pseudonymise(INPUTS)
    with pytest.raises(ProtocolError, match="combined 1 at a time"):
        client([first, holder(shares[1].secret)], t=2).pseudonymise(INPUTS)


def _rotated(t: int, n: int) -> tuple[list[threshold.Share], list[threshold.Share]]:
    """Shares of epoch 1 (of KEY) and of epoch 2 (each scaled by DELTA, as rotate does)."""
    old = threshold.split(KEY, t, n)
    return old, [threshold.scale(share, DELTA) for share in old]


def _asking(handler: Handler, number: int, asked: list[int]) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(number)
        return handler(request)

    return answer


def test_holders_activating_a_rotation_one_by_one_still_pseudonymise() -> None:
    """2-of-3, epoch 2 incoming everywhere and activated on holder 1 only: holders 1 and 2
    answer under epochs 2 and 1, so holder 3 is asked too, and the epoch-1 answers of
    holders 2 and 3 are combined (never holder 1's with them): k·H(x) under epoch 1,
    which the index accepts during the rotation and converts."""
    old, new = _rotated(2, 3)
    asked: list[int] = []
    holders = [
        holder(new[0].secret, new[0].index, epoch=2),
        holder(old[1].secret, old[1].index),
        holder(old[2].secret, old[2].index),
    ]
    made = client([_asking(h, n, asked) for n, h in enumerate(holders)], t=2).pseudonymise(INPUTS)
    assert (made.epoch, made.pseudonyms) == (1, expected())
    assert sorted(asked) == [0, 1, 2]
    # Activated on holders 1 and 3: their epoch-2 answers give δ·k·H(x).
    holders[2] = holder(new[2].secret, new[2].index, epoch=2)
    made = client(holders, t=2).pseudonymise(INPUTS)
    assert (made.epoch, made.pseudonyms) == (2, expected(oprf.scalar_product(DELTA, KEY)))


def test_when_t_holders_serve_each_epoch_the_newest_is_used() -> None:
    """2-of-4, two holders on each epoch: once the first two disagree, the other two are
    asked at once, and the newer epoch's pair is combined."""
    old, new = _rotated(2, 4)
    asked: list[int] = []
    holders = [
        holder(old[0].secret, old[0].index),
        holder(new[1].secret, new[1].index, epoch=2),
        holder(old[2].secret, old[2].index),
        holder(new[3].secret, new[3].index, epoch=2),
    ]
    made = client([_asking(h, n, asked) for n, h in enumerate(holders)], t=2).pseudonymise(INPUTS)
    assert (made.epoch, made.pseudonyms) == (2, expected(oprf.scalar_product(DELTA, KEY)))
    assert sorted(asked[:2]) == [0, 1] and sorted(asked[2:]) == [2, 3]


def test_fewer_than_t_holders_under_any_one_epoch_says_so() -> None:
    old, new = _rotated(2, 3)
    holders = [holder(new[0].secret, new[0].index, epoch=2), holder(old[1].secret, old[1].index)]
    with pytest.raises(EpochsDiffer) as mixed:
        client([*holders, down], t=2).pseudonymise(INPUTS)
    assert str(mixed.value) == (
        "the key holders answer under different key epochs (epoch 1: 1, epoch 2: 1), fewer "
        "than 2 under any one; 1 key holder(s) failed (connection refused): a rotation is "
        "being activated; retry once at least 2 key holders serve one epoch"
    )


def test_a_client_set_to_another_threshold_refuses_rather_than_miscombine() -> None:
    """One share unblinded alone is k_i·H(x): a pseudonym of nobody. A client set to t = 1
    in a 2-of-3 deployment (or to 3) must refuse, not register under it."""
    shares = threshold.split(KEY, 2, 3)
    answers = [holder(s.secret, s.index) for s in shares]
    with pytest.raises(ProtocolError, match="combined 2 at a time; this client is set to 1"):
        client(answers, t=1).pseudonymise(INPUTS)
    with pytest.raises(ProtocolError, match="combined 2 at a time; this client is set to 3"):
        client(answers, t=3).pseudonymise(INPUTS)
    with pytest.raises(ProtocolError, match="combined 1 at a time; this client is set to 2"):
        client([holder(KEY), holder(KEY)], t=2).pseudonymise(INPUTS)


def test_a_threshold_beyond_the_key_holders_is_refused() -> None:
    missing = Path("/nonexistent")  # refused before any certificate is read
    with pytest.raises(ClientError, match="threshold"):
        VirClient(
            "https://index.test",
            missing,
            missing,
            missing,
            keyholders=["https://holder.test"],
            threshold=2,
        )


def test_the_t_key_holders_are_asked_at_once_and_a_failure_replaced_after() -> None:
    """The t holders are asked together: each answers only once the other has been
    asked too (a barrier), which asked one after the other would never happen. A
    holder that fails is replaced by the next, asked only then."""
    shares = threshold.split(KEY, 2, 3)
    asked: list[int] = []
    meet = threading.Barrier(2, timeout=10)

    def counted(handler: Handler, number: int, together: bool = False) -> Handler:
        def answer(request: httpx.Request) -> httpx.Response:
            asked.append(number)
            if together:
                meet.wait()  # BrokenBarrierError, and no answer, if asked alone
            return handler(request)

        return answer

    holders = [holder(s.secret, s.index) for s in shares]
    made = client([counted(h, n, together=n < 2) for n, h in enumerate(holders)], t=2)
    assert made.pseudonymise(INPUTS).pseudonyms == expected()
    assert sorted(asked) == [0, 1]  # the third is not asked when two answer
    asked.clear()
    made = client([counted(down, 0), counted(holders[1], 1), counted(holders[2], 2)], t=2)
    assert made.pseudonymise(INPUTS).pseudonyms == expected()
    assert sorted(asked[:2]) == [0, 1] and asked[2:] == [2]


def test_threads_pseudonymising_at_once_share_one_pool_of_key_holder_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``vir-client import`` pseudonymises several chunks at once, each on a thread of
    its own: with a threshold they all ask the t holders through the one pool the
    client closes, not a pool each (whose threads nobody would shut down)."""
    pools: list[ThreadPoolExecutor] = []

    class Counted(ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.01)  # widens the window in which a second pool could be made
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(connection, "ThreadPoolExecutor", Counted)
    shares = threshold.split(KEY, 2, 3)
    made = client([holder(s.secret, s.index) for s in shares], t=2)
    start = threading.Barrier(8, timeout=10)
    found: list[list[str]] = []

    def pseudonymise() -> None:
        start.wait()
        found.append(made.pseudonymise(INPUTS).pseudonyms)

    threads = [threading.Thread(target=pseudonymise) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for pool in pools:
        pool.shutdown()
    assert found == [expected()] * 8
    assert pools == [made._pool]


def test_a_development_set_up_that_is_not_there_or_has_no_such_organisation(
    tmp_path: Path,
) -> None:
    with pytest.raises(ClientError, match=r"no development set-up in .* start one with make run"):
        VirClient.from_dev("gp", tmp_path)
    (tmp_path / "orgs.json").write_text(
        '[{"oin": "00000009000000000002", "name": "Huisartsenpraktijk Kralingen",'
        ' "category": "gp", "cert": "gp.crt", "key": "gp.key"}]'
    )
    (tmp_path / "roles.json").write_text(
        '[{"oin": "00000009000000000099", "name": "Gemeente", "role": "privacy_officer",'
        ' "cert": "po.crt", "key": "po.key"}]'
    )
    with pytest.raises(ClientError, match=r"one of: gp, privacy_officer$"):
        VirClient.from_dev("school", tmp_path)


def test_the_index_refusing_the_key_holders_epoch_says_which_step_is_missing() -> None:
    """A request with a pseudonym made here (privacy officer, Veilig Thuis, address
    officer) refused for its epoch: the key holders activated before the index took the
    rotation's token, which is said in one line, not as an invalid field."""
    message = "pseudonyms must be made under an accepted key epoch (1)"
    refused = {
        "type": "urn:vir:problem:invalid-input",
        "title": "Invalid input",
        "status": 422,
        "detail": f"epoch: {message}",
        "errors": [{"field": "epoch", "message": message}],
    }
    paths: list[str] = []

    def index(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        assert json.loads(request.content)["epoch"] == 2
        return httpx.Response(422, json=refused)

    made = client([holder(KEY, epoch=2)])
    made._http = httpx.Client(base_url="https://index.test", transport=httpx.MockTransport(index))
    calls: list[Callable[[], object]] = [
        lambda: made.access_report(INPUTS[0]),
        lambda: made.access_report_pdf(INPUTS[0]),
        lambda: made.erase(INPUTS[0], "erasure"),
        lambda: made.deceased(INPUTS[0]),
        lambda: made.consult(INPUTS[0], "triage"),
        lambda: consultations.consult(made, INPUTS[0], "triage", household=True),
        lambda: made.exclude_address("nl-address:3011AB:12:", "opvang"),
    ]
    for call in calls:
        with pytest.raises(EpochNotAccepted) as failed:
            call()
        assert str(failed.value) == (
            "the index does not accept the key holders' epoch 2 yet: the index must run vir "
            "keys rekey with the rotation's token before the key holders activate it "
            '(docs/operations.md, "Rotating the OPRF key")'
        )
    assert len(paths) == len(calls)
    # Key holders still on an epoch whose grace period ended at the index: they never
    # activated the rotation that replaced it.
    message = "epoch 2 was retired: pseudonyms must be made under an accepted key epoch (3)"
    refused["errors"] = [{"field": "epoch", "message": message}]
    with pytest.raises(EpochNotAccepted) as retired:
        made.consult(INPUTS[0], "triage")
    assert str(retired.value) == (
        "the index no longer accepts the key holders' epoch 2 (retired there): the key "
        "holders must activate the rotation's new epoch (vir keyholder activate; "
        'docs/operations.md, "Rotating the OPRF key")'
    )
    # Another field's refusal stays the service's own answer.
    refused["errors"] = [{"field": "purpose", "message": "not a purpose"}]
    with pytest.raises(ServiceError, match="422"):
        made.consult(INPUTS[0], "triage")
