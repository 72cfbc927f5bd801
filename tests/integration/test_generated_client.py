"""A client generated from the served OpenAPI document works (issue 13).

A back-office vendor generates code from ``/v1/openapi.json`` with a standard
generator. Here: pydantic models with ``datamodel-code-generator`` (strict about
extra fields, so an answer carrying anything undocumented fails), imported and used
to parse real answers of the in-process app: a registration, the signal read back,
and a problem+json refusal.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from support.inapp import in_app, signal_body


def generate(spec: dict[str, object], folder: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    source, target = folder / "openapi.json", folder / "vir_generated.py"
    source.write_text(json.dumps(spec), encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "datamodel_code_generator",
            "--input",
            str(source),
            "--input-file-type",
            "openapi",
            "--output",
            str(target),
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--target-python-version",
            "3.11",
            "--extra-fields",
            "forbid",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    spec_of = importlib.util.spec_from_file_location("vir_generated", target)
    assert spec_of is not None and spec_of.loader is not None
    module = importlib.util.module_from_spec(spec_of)
    # Generic models (RootModel[...]) look their module up while it is being executed.
    monkeypatch.setitem(sys.modules, "vir_generated", module)
    spec_of.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    with in_app(tmp_path_factory.mktemp("spec")) as app:
        answer = app.request("GET", "/v1/openapi.json")
        assert answer.status_code == 200
        spec: dict[str, object] = answer.json()
        assert spec == app.request("GET", "/openapi.json").json()
        return spec


def test_generated_models_parse_real_answers(
    served: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = generate(served, tmp_path, monkeypatch)
    with in_app(tmp_path / "app") as app:
        app.as_caller(0)
        epoch = app.epoch
        created = app.request("POST", "/v1/signals", json=signal_body("case-1", "Kim", epoch))
        assert created.status_code == 201
        assert created.headers["location"] == "/v1/signals/case-1"
        signal = models.SignalOut.model_validate(created.json())
        assert signal.local_ref == "case-1"
        assert isinstance(signal.remove_on, dt.date)

        read = app.request("GET", "/v1/signals/case-1")
        own = models.OwnSignalOut.model_validate(read.json())
        assert own.signal_id == signal.signal_id
        assert isinstance(own.registered_at, dt.datetime)
        listed = models.OwnSignalsOut.model_validate(app.request("GET", "/v1/signals").json())
        assert [s.model_dump() for s in listed.items] == [own.model_dump()]

        refused = app.request(
            "POST", "/v1/signals", json={**signal_body("case-2", "Kim", epoch), "epoch": 0}
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        problem = models.Problem.model_validate(refused.json())
        assert problem.status == 422
        assert [e.field for e in problem.errors] == ["epoch"]

        app.as_caller(1)  # another organisation's signal is not found
        missing = app.request("GET", "/v1/signals/case-1")
        assert missing.status_code == 404
        assert models.Problem.model_validate(missing.json()).type == "urn:vir:problem:not-found"
