"""deploy/nginx/vir.conf's access-log route map (``$vir_route``) against vir's own routes.

A URL of every route of the index (every path and method of its OpenAPI document, and
the routes it leaves out of it: ``/metrics``, the OpenAPI documents themselves) is
sent to a real nginx that runs the template's ``map`` blocks and answers with
``$vir_route``: each must come back as the template vir itself counts it under
(``vir.api.metrics.route_label``), so that a route added to vir without a line in the
map fails here. Paths that are no route of vir must come back as ``{other}``.
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inapp import in_app
from support.nginx import TEMPLATE, nginx_binary, write_main_conf
from support.service import free_port

from vir.api.metrics import flat_routes, route_label

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed"),
]

_MAP = re.compile(r"^map [^\n]*\{\n.*?^\}\n", re.MULTILINE | re.DOTALL)
_PARAM = re.compile(r"\{[a-z_]+\}")
# Paths that are no route of vir, with the method they are sent with.
_NO_ROUTE = [
    ("GET", "/"),
    ("GET", "/v1"),
    ("GET", "/v1/signals/a/b"),
    ("GET", "/v1/matches/m1/handover/other"),
    ("POST", "/v1/follow-up/overdue/m1"),
    ("GET", "/v1/privacy/reports/123456782"),
    ("GET", "/v1/oprf/evaluate"),  # the key holder's, not the index's
]


@pytest.fixture(scope="module")
def route_map(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of an nginx whose every answer is the map's ``$vir_route`` for the request."""
    binary = nginx_binary()
    assert binary is not None
    prefix = tmp_path_factory.mktemp("nginx-map")
    maps = "".join(_MAP.findall(TEMPLATE.read_text()))
    assert "$vir_route {" in maps, maps
    port = free_port()
    server = (
        "    server {\n"
        f"        listen 127.0.0.1:{port};\n"
        "        location / { default_type text/plain; return 200 $vir_route; }\n"
        "    }\n"
    )
    write_main_conf(prefix, maps + server, connections=64)
    with (prefix / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait(port, process, prefix)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait(port: int, process: subprocess.Popen[bytes], prefix: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((prefix / "stderr.log").read_text(errors="replace"))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not start listening")


def _mapped(port: int, method: str, path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.read().decode()
    finally:
        connection.close()


def _sample(template: str) -> str:
    """A concrete path of ``template``: each parameter a plain value."""
    return _PARAM.sub("x1", template)


def _requests(tmp_path: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(method, sample path, vir's route label) for every route of the index, and the
    paths of its OpenAPI document."""
    with in_app(tmp_path) as app:
        spec = app.app.openapi()
        documented = [
            (method.upper(), path)
            for path, operations in spec["paths"].items()
            for method in operations
        ]
        hidden = [
            (method, route.path)
            for route in flat_routes(app.app.router.routes)
            for method in sorted(getattr(route, "methods", None) or ())
            if method != "HEAD" and route.path not in spec["paths"]
        ]
        out = []
        for method, template in documented + hidden:
            sample = _sample(template)
            scope = {
                "type": "http",
                "method": method,
                "path": sample,
                "root_path": "",
                "headers": [],
                "query_string": b"",
                "app": app.app,
            }
            out.append((method, sample, route_label(scope)))
    return out, list(spec["paths"])


def test_every_route_of_the_index_is_logged_as_its_template(route_map: int, tmp_path: Path) -> None:
    requests, documented = _requests(tmp_path)
    assert len(documented) >= 30  # the document was read (index, not key holder)
    assert {"/metrics", "/openapi.json", "/v1/openapi.json"} <= {p for _, p, _ in requests}
    wrong = []
    for method, path, template in requests:
        assert template not in ("unmatched", "other"), (method, path)
        mapped = _mapped(route_map, method, path)
        if mapped != template:
            wrong.append(f"{method} {path}: nginx {mapped}, vir {template}")
    assert not wrong, "\n".join(wrong)


def test_batch_is_posts_only_and_other_paths_are_other(route_map: int) -> None:
    # vir routes GET/DELETE/PATCH /v1/signals/batch to the local_ref "batch".
    assert _mapped(route_map, "POST", "/v1/signals/batch") == "/v1/signals/batch"
    for method in ("GET", "DELETE", "PATCH"):
        assert _mapped(route_map, method, "/v1/signals/batch") == "/v1/signals/{local_ref}"
    for method, path in _NO_ROUTE:
        assert _mapped(route_map, method, path) == "{other}", (method, path)
