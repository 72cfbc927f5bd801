"""``GET /v1/audit/checkpoint``: the newest signed checkpoint (C2SP signed note)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.domain.errors import NotFound

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"text/plain": {}},
            "description": "C2SP tlog-checkpoint in the signed-note format",
        },
        **problem_responses(401, 403, 404),
    },
)
def latest_checkpoint(_caller: CurrentCaller, request: Request) -> PlainTextResponse:
    """The newest signed checkpoint of the audit log; verify it with `vir audit key`'s key."""
    signed = request.app.state.services.transparency.latest()
    if signed is None:
        raise NotFound("no checkpoint has been signed yet")
    return PlainTextResponse(signed.note.decode("utf-8"))
