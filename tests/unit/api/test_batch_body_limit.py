"""``POST /v1/signals/batch`` takes what its schema promises, 500 signals, even when each
is as large as a valid signal can be (``VIR_MAX_BATCH_BODY_BYTES``); every other request
keeps ``VIR_MAX_BODY_BYTES``.

Before: the batch shared the 64 KiB limit of every request, so 500 minimal items
(67,013 bytes) or 200 realistic ones were refused with 413.
"""

from __future__ import annotations

import json
from pathlib import Path

from support.inapp import in_app
from support.instore import ORGS, T0
from support.maximal import maximal_signal

from vir.settings import Settings

MAX_BODY = Settings.model_fields["max_body_bytes"].default
MAX_BATCH_BODY = Settings.model_fields["max_batch_body_bytes"].default
JSON = {"content-type": "application/json"}


def _batch(count: int, epoch: int, **dumps: object) -> bytes:
    items = [maximal_signal(n, ORGS[0].category, epoch, T0.date()) for n in range(count)]
    return json.dumps({"signals": items}, **dumps).encode()  # type: ignore[arg-type]


def test_the_default_holds_500_of_the_largest_valid_signals() -> None:
    # The epoch at 20 digits (no epoch comes near), the name \u-escaped, ", " and ": "
    # between members: no encoder a back office uses writes a valid signal longer.
    largest = _batch(500, 10**19)
    assert len(largest) > 10 * MAX_BODY  # 500 of them never fitted the other limit
    assert len(largest) <= MAX_BATCH_BODY
    # Rounded up, not far beyond: 1 MiB, with room for indented JSON too.
    assert len(_batch(500, 10**19, indent=1)) <= MAX_BATCH_BODY < 2 * len(largest)


def test_500_maximal_signals_in_one_batch_are_all_registered(tmp_path: Path) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        body = _batch(500, app.epoch)
        assert len(body) > MAX_BODY
        answer = app.request("POST", "/v1/signals/batch", content=body, headers=JSON)
        assert answer.status_code == 200, answer.text[:500]
        results = answer.json()["results"]
        assert len(results) == 500
        assert {r["status"] for r in results} == {201}


def test_every_other_request_keeps_the_smaller_limit(tmp_path: Path) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        item = maximal_signal(0, ORGS[0].category, app.epoch, T0.date())
        padded = json.dumps(item).encode() + b" " * MAX_BODY
        for method, path in (
            ("POST", "/v1/signals"),
            ("PATCH", "/v1/signals/batch"),  # a signal whose local_ref is "batch"
            ("POST", "/v1/signals/batch/"),
        ):
            refused = app.request(method, path, content=padded, headers=JSON)
            assert refused.status_code == 413, (method, path)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["detail"] == f"request bodies are limited to {MAX_BODY} bytes"
        too_big = b'{"signals": []}' + b" " * MAX_BATCH_BODY
        refused = app.request("POST", "/v1/signals/batch", content=too_big, headers=JSON)
        assert refused.status_code == 413
        assert str(MAX_BATCH_BODY) in refused.json()["detail"]
        # A small setting holds for the batch too: its limit is its own.
    with in_app(tmp_path / "small", max_batch_body_bytes=2048) as app:
        app.as_caller(0)
        body = _batch(2, app.epoch)
        answer = app.request("POST", "/v1/signals/batch", content=body, headers=JSON)
        assert answer.status_code == 413


def test_the_served_document_states_both_limits(tmp_path: Path) -> None:
    with in_app(tmp_path) as app:
        spec = app.request("GET", "/openapi.json").json()
    assert "VIR_MAX_BATCH_BODY_BYTES" in spec["info"]["description"]
    batch = spec["paths"]["/v1/signals/batch"]["post"]
    assert "VIR_MAX_BATCH_BODY_BYTES" in batch["description"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]
