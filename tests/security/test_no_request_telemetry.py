"""No request of the index or the key holder reaches an OpenTelemetry tracer.

FastAPI (0.163 on) traces every request to whatever tracer provider the process has,
with the request's path and query as span attributes: a local_ref in
``/v1/signals/{local_ref}``, a cursor in ``?after=``. A deployment that configures a
tracer for something else (its HTTP client, its database driver) would then export
them. vir turns FastAPI's telemetry off (``vir.api.metrics.NO_TELEMETRY``).

A tracer provider can be set once per process, so the check runs in a process of its
own: a recording provider is set, a bare FastAPI app is asked first (it records a span
with the path: the recorder works), then both vir apps, which must record nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, sys, tempfile
from contextlib import contextmanager
from pathlib import Path

from opentelemetry import trace

started = []


class Tracer(trace.Tracer):
    def start_span(self, name, *args, attributes=None, **kwargs):
        started.append({"name": name, **{k: str(v) for k, v in (attributes or {}).items()}})
        return trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)

    @contextmanager
    def start_as_current_span(self, name, *args, **kwargs):
        yield self.start_span(name, *args, **kwargs)


class Provider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return Tracer()


trace.set_tracer_provider(Provider())

from fastapi import FastAPI
from support.inapp import call_app, in_app, in_keyholder

bare = FastAPI()


@bare.get("/v1/signals/{local_ref}")
def one(local_ref: str) -> dict:
    return {}


call_app(bare, "GET", "/v1/signals/LLN-2026-000123?after=secret-cursor", "127.0.0.1", {})
found = {"bare": list(started)}
started.clear()
with tempfile.TemporaryDirectory() as folder:
    (Path(folder) / "index").mkdir(); (Path(folder) / "kh").mkdir()
    with in_app(Path(folder) / "index") as index, in_keyholder(Path(folder) / "kh") as holder:
        index.as_caller(0)
        index.request("GET", "/v1/signals/LLN-2026-000123")
        index.request("GET", "/v1/notifications", params={"after": "secret-cursor"})
        holder.as_caller(0)
        holder.request("POST", "/v1/oprf/evaluate", json={"blinded_elements": ["AAAA"]})
        holder.request("GET", "/v1/oprf/epochs")
found["vir"] = list(started)
print(json.dumps(found))
"""


def test_no_request_of_either_app_is_traced() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # The recorder sees what FastAPI traces by default, the local_ref with it.
    assert any("LLN-2026-000123" in json.dumps(span) for span in found["bare"]), found["bare"]
    assert found["vir"] == []
