"""One reading of a request, whatever the parser would make of a second: every API route
(the index's and the key holder's) is a ``StrictRoute``.

- A JSON object with a key twice (``{"local_ref": "a", "local_ref": "b"}``) is refused:
  RFC 8259 §4 leaves it to the parser which value counts, and Python's keeps the last,
  so a proxy, a log or a client library that keeps the first would see another request
  than vir registers. It is answered as malformed JSON (400), as is an integer too long
  for Python to read (more than 4,300 digits), which the parser would otherwise give as
  a bare "error parsing the body".
- A query parameter given twice (``?reason=risk_ended&reason=unjustified``) is refused
  with 422 naming it: vir's parameters take one value each, and the last one silently
  winning is how ``reason=`` turned an archiving withdrawal into an erasure.

Both refusals go through the application's handlers, so they are accounted for (audit
log and metrics) as every other refused request is.

And who calls is settled first. FastAPI reads a route's JSON body before it solves the
route's dependencies, so a certificate of an organisation vir does not know, or of a
role the route is not for, would get 400 for malformed JSON (or a key given twice)
where it is owed its 401 or 403 whatever it sent. A ``StrictRoute`` runs its
identifying dependency (``before_body``) and the checks of its caller's role
(``caller_check``, vir.api.roles) before the handler reads the body or the query; the
dependency keeps the caller it found on the request, so FastAPI's own call of it later
finds the same caller and reads the registry no second time (``once_a_request``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from vir.api.errors import safe_name
from vir.api.identity import presents_certificate, require_caller
from vir.domain.errors import NoClientCertificate
from vir.domain.strict_json import unique_object


class _KeyTwice(json.JSONDecodeError):
    """A JSON object with a key twice, as FastAPI expects a body that is no JSON."""


def _twice(key: str) -> _KeyTwice:
    return _KeyTwice(f"the key {safe_name(key)} is given twice in one object", "", 0)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return unique_object(pairs, _twice)


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``: Python's json reads them, RFC 8259 has
    no such values."""
    raise json.JSONDecodeError(f"{name} is not a JSON value (RFC 8259)", "", 0)


class StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(
                    body, object_pairs_hook=_unique, parse_constant=_no_constant
                )
            except json.JSONDecodeError:
                raise
            except ValueError:  # an integer of more than sys.get_int_max_str_digits()
                raise json.JSONDecodeError("a number too long to read", "", 0) from None
        return self._json


def repeated_query_names(request: Request) -> list[str]:
    """The query parameters given more than once, in order."""
    counts = Counter(name for name, _ in request.query_params.multi_items())
    return [name for name, n in counts.items() if n > 1]


# Who calls, settled before the body is read: for each dependency that identifies the
# caller, whether the request carries what it needs at all (``before_body``).
_BEFORE_BODY: dict[Callable[..., Any], Callable[[Request], bool]] = {
    require_caller: presents_certificate
}
# The checks of an identified caller (its role), run before the body too: the check's
# dependency -> (the identifying dependency whose caller it checks, the check).
_CALLER_CHECKS: dict[Callable[..., Any], tuple[Callable[..., Any], Callable[[Any], object]]] = {}


def before_body(dependency: Callable[..., Any], carries: Callable[[Request], bool]) -> None:
    """Declare that a request without what ``carries`` looks for (a certificate, a
    token) cannot satisfy ``dependency``: a route that depends on it refuses such a
    request (401) before reading its body, as it does one without a certificate.

    ``dependency`` (of the request alone) is then awaited before the body is read, and
    FastAPI calls it again when it solves the route's dependencies: it must be made
    ``once_a_request`` (vir.api.identity), so that the second call gives what the first
    found."""
    if not getattr(dependency, "once_a_request", False):
        raise TypeError("a dependency settled before the body must be once_a_request")
    _BEFORE_BODY[dependency] = carries


def caller_check(
    dependency: Callable[..., Any], identifies: Callable[..., Any], check: Callable[[Any], object]
) -> None:
    """Declare that ``dependency`` passes the caller of ``identifies`` (a ``before_body``
    dependency) through ``check``: a route that depends on it runs ``check`` before it
    reads its body or query, so the wrong role is refused whatever it sent."""
    _CALLER_CHECKS[dependency] = (identifies, check)


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    """Every dependency of a route, however deep."""
    found: set[Callable[..., Any]] = set()
    for sub in dependant.dependencies:
        if sub.call is not None:
            found.add(sub.call)
        found |= _calls(sub)
    return found


class StrictRoute(APIRoute):
    """An APIRoute that reads its request as ``StrictRequest`` and refuses a query
    parameter given twice; a route that needs a caller (``require_caller``, or another
    dependency declared with ``before_body``) refuses a request that carries no
    certificate (nor token, where one will do) with 401 before its body is read, so that
    an anonymous client learns nothing of how the route reads its input."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        calls = _calls(self.dependant)
        identifying = [call for call in calls if call in _BEFORE_BODY]
        checks = [_CALLER_CHECKS[call] for call in calls if call in _CALLER_CHECKS]

        async def strict(request: Request) -> Response:
            overrides = request.app.dependency_overrides
            # Unless a test stands in for the caller (dependency_overrides): then the
            # caller is settled when FastAPI solves the dependencies.
            settling = [call for call in identifying if call not in overrides]
            for call in settling:
                if not _BEFORE_BODY[call](request):
                    raise NoClientCertificate()
            found = {call: await call(request) for call in settling}
            for identifies, check in checks:
                if identifies in found:
                    check(found[identifies])
            repeated = repeated_query_names(request)
            if repeated:
                raise RequestValidationError(
                    [
                        {
                            "type": "repeated",
                            "loc": ("query", name),
                            "msg": "given more than once: one value only",
                        }
                        for name in repeated
                    ]
                )
            return await handler(StrictRequest(request.scope, request.receive))

        return strict
