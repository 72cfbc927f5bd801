"""``GET /v1/oprf/usage``: how many elements each organisation had evaluated, per hour.

Read from the key holder's own audit log (``oprf.evaluate`` entries carry the
organisation and a count, never an element), for the index operator's privacy report:
its evaluation volumes and its flag for an organisation that pseudonymises in bulk.
Only the index operator's certificates may ask; every answer is audited.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.api.schemas import IsoDate, TimestampOut, parse_date, timestamp
from vir.api.strict import StrictRoute
from vir.audit.actions import Action
from vir.audit.chain import AuditEvent
from vir.domain.errors import InputError, NotPermitted
from vir.domain.organisations import Category, Role
from vir.keyholder.deps import ClockDep, DatabaseDep
from vir.services.identity import Caller
from vir.services.reports import audit_generation
from vir.store import audit_log
from vir.store.db import Database
from vir.store.tables import AuditEntryRow

router = APIRouter(prefix="/v1/oprf", tags=["pseudonyms"], route_class=StrictRoute)
# The longest period one answer covers (the privacy report's own limit is three years).
MAX_DAYS = 3 * 366


class UsageItem(BaseModel):
    oin: str
    hour: TimestampOut = Field(description="start of the clock hour (UTC)")
    elements: int


class UsageOut(BaseModel):
    items: list[UsageItem] = Field(description="per organisation and hour, oldest first")


def hourly_usage(db: Database, start: dt.date, end: dt.date) -> list[tuple[str, dt.datetime, int]]:
    """(organisation, hour, elements) of the ``oprf.evaluate`` entries in ``[start, end)``."""
    low = audit_log.rfc3339(dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC))
    high = audit_log.rfc3339(dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC))
    counts: Counter[tuple[str, dt.datetime]] = Counter()
    db.integrate()  # every evaluation committed so far, chained (vir.store.sequencer)
    with db.read() as session:
        rows = session.execute(
            select(AuditEntryRow.body)
            .where(
                AuditEntryRow.occurred_at >= low,
                AuditEntryRow.occurred_at < high,
                AuditEntryRow.action == Action.OPRF_EVALUATE.value,
            )
            .order_by(AuditEntryRow.seq)
        ).yield_per(5000)
        for (body,) in rows:
            event = AuditEvent.decode(body if isinstance(body, bytes) else str(body).encode())
            elements = event.objects.get("elements", 0)
            if event.organisation is None or not isinstance(elements, int):
                continue
            moment = dt.datetime.fromisoformat(event.occurred_at.replace("Z", "+00:00"))
            counts[(event.organisation, moment.replace(minute=0, second=0, microsecond=0))] += (
                elements
            )
    return [(oin, hour, n) for (oin, hour), n in sorted(counts.items(), key=lambda i: i[0][1])]


def _audit(db: Database, caller: Caller, now: dt.datetime, start: dt.date, end: dt.date) -> None:
    with db.write() as session:
        audit_generation(session, caller, now, "oprf_usage", start, end)


@router.get(
    "/usage",
    response_model=UsageOut,
    operation_id="getOprfUsage",
    responses=problem_responses(401, 403, 422),
)
async def usage(
    caller: CurrentCaller,
    db: DatabaseDep,
    clock: ClockDep,
    start: Annotated[IsoDate, Query(alias="from", description="first day, YYYY-MM-DD")],
    end: Annotated[IsoDate, Query(alias="to", description="the day after the last")],
) -> UsageOut:
    """Elements evaluated per organisation and clock hour over ``[from, to)``: for the
    index operator's privacy report only (its certificates; others 403)."""
    if caller.organisation.category is not Category.INDEX_OPERATOR or caller.role not in (
        Role.INDEX_SERVICE,
        Role.NATIONAL_PRIVACY_OFFICER,
    ):
        raise NotPermitted("only the index operator reads evaluation counts")
    first, last = parse_date(start, "from"), parse_date(end, "to")
    if not first < last or (last - first).days > MAX_DAYS:
        raise InputError("to", f"after from, and at most {MAX_DAYS} days after it")
    found = await run_in_threadpool(hourly_usage, db, first, last)
    await run_in_threadpool(_audit, db, caller, clock(), first, last)
    return UsageOut(
        items=[UsageItem(oin=oin, hour=timestamp(hour), elements=n) for oin, hour, n in found]
    )
