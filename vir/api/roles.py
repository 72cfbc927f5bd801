"""Who may call a route, decided before its body or query is read.

A route that only a reporting organisation's system, a municipality's address officer
or a privacy officer may call asks for that caller (``caller: Reporter``), not for any
``CurrentCaller``. The route (a ``StrictRoute``) identifies the caller and checks its
role before it reads the body or the query (``caller_check``; FastAPI itself would read
a JSON body first), so a certificate of the wrong role gets its 403 ``not-permitted``
whatever it sent: an invalid body from it is not answered 400 or 422 first, which would
tell it how the route reads its input. The services check the same policy again
(``vir.domain.policy``), so a route that forgot its dependency still refuses, only later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

from vir.api.identity import CurrentCaller, require_caller
from vir.api.strict import caller_check
from vir.domain import policy
from vir.services.identity import Caller
from vir.services.participation import participation_scope


def _caller_who(check: Callable[[Caller], object]) -> object:
    """A dependency giving the authenticated caller once ``check`` lets it pass."""

    async def permitted(caller: CurrentCaller) -> Caller:
        check(caller)
        return caller

    permitted.__name__ = permitted.__qualname__ = check.__name__
    caller_check(permitted, require_caller, check)  # before the body (vir.api.strict)
    return Depends(permitted)


Reporter = Annotated[Caller, _caller_who(policy.require_reporter)]
Coordinator = Annotated[Caller, _caller_who(policy.require_coordinator)]
VeiligThuis = Annotated[Caller, _caller_who(policy.require_veilig_thuis)]
AddressOfficer = Annotated[Caller, _caller_who(policy.require_address_officer)]
PrivacyOfficer = Annotated[Caller, _caller_who(policy.require_privacy_officer)]
FollowUpOfficer = Annotated[Caller, _caller_who(policy.require_follow_up_officer)]
# The participation monitor: a follow-up officer or a privacy officer.
ParticipationReader = Annotated[Caller, _caller_who(participation_scope)]
