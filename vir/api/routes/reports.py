"""The privacy officer's reports over the audit log: events per organisation and the
municipal monitor, as JSON, CSV or a Dutch PDF. A privacy-officer certificate only
(the monitor too, for now). A municipality's officer gets their own region's part;
asking for another region is refused (403 ``outside-region``, audited). The national
officer may ask for any region, or none (every region).

Every report is computed over the audit log up to a signed checkpoint, which it states
(``checkpoint``), so that it can be checked later (``vir report verify``). CSV comes in
two dialects: ``nl`` (for Dutch Excel: ``;``, UTF-8 with BOM, Dutch labels) and ``data``
(``,``, the codes, one long table). Without ``dialect``, a caller whose first
Accept-Language is Dutch (an officer's browser) gets ``nl`` and any other (a program)
``data``.

The participation monitor (``/participation``) is also for a municipality's follow-up
officer, for their own region (``vir.services.participation``).

A ``region`` no organisation is in is refused (422 naming ``region``, with the regions
there are), not answered with an empty report."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from vir.api.deps import (
    ClockDep,
    DatabaseDep,
    EvaluationCountsDep,
    PrivacyServiceDep,
    TransparencyDep,
)
from vir.api.problems import problem_responses
from vir.api.roles import ParticipationReader, PrivacyOfficer
from vir.api.strict import StrictRoute
from vir.domain.dates import parse_iso_date
from vir.domain.errors import InputError
from vir.services.participation import MAX_DAYS, participation_scope
from vir.services.reports import require_known_region

router = APIRouter(prefix="/v1/privacy/reports", tags=["privacy officer"], route_class=StrictRoute)
COMMON = (400, 401, 403, 422)
PDF = "application/pdf"
CSV = "text/csv"
Format = Literal["json", "csv", "pdf"]
Dialect = Literal["nl", "data"]
_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"description": "the report (JSON, CSV or a Dutch PDF)", "content": {PDF: {}, CSV: {}}}
}


def _date(value: str, field: str) -> dt.date:
    try:
        return parse_iso_date(value)
    except ValueError:
        raise InputError(field, "a date as YYYY-MM-DD") from None


def _dialect(asked: Dialect | None, accept_language: str | None) -> Dialect:
    """The CSV dialect asked for, else ``nl`` for a caller whose first language is Dutch."""
    if asked is not None:
        return asked
    first = (accept_language or "").split(",")[0].split(";")[0].strip().lower()
    return "nl" if first == "nl" or first.startswith("nl-") else "data"


@dataclass(frozen=True)
class ReportQuery:
    """What every report is asked with: the period (as given: checked after the caller's
    role), the format, the CSV dialect and the region."""

    start: str
    end: str
    fmt: Format
    dialect: Dialect
    region: str | None

    def period(self) -> tuple[dt.date, dt.date]:
        return _date(self.start, "from"), _date(self.end, "to")


def _report_query(
    start: Annotated[str, Query(alias="from", description="first day, YYYY-MM-DD")],
    end: Annotated[str, Query(alias="to", description="day after the last, YYYY-MM-DD")],
    fmt: Annotated[Format, Query(alias="format")] = "json",
    dialect: Annotated[
        Dialect | None,
        Query(description="CSV only: nl (Dutch Excel) or data (codes); default by language"),
    ] = None,
    accept_language: Annotated[str | None, Header(include_in_schema=False)] = None,
    region: Annotated[str | None, Query(max_length=100)] = None,
) -> ReportQuery:
    return ReportQuery(start, end, fmt, _dialect(dialect, accept_language), region)


ReportQueryDep = Annotated[ReportQuery, Depends(_report_query)]


async def _respond(
    report: dict[str, Any],
    asked: ReportQuery,
    name: str,
    clock: ClockDep,
    to_csv: Callable[[dict[str, Any], Dialect], str],
    to_pdf: Callable[[dict[str, Any], dt.datetime], bytes],
) -> Response:
    fmt = asked.fmt
    if fmt == "json":
        return JSONResponse(report)
    disposition = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    if fmt == "csv":
        return Response(
            to_csv(report, asked.dialect), media_type=f"{CSV}; charset=utf-8", headers=disposition
        )
    created_at = clock()
    pdf = await run_in_threadpool(to_pdf, report, created_at)
    return Response(pdf, media_type=PDF, headers=disposition)


@router.get(
    "/events",
    operation_id="getEventsReport",
    responses={**_CONTENT, **problem_responses(*COMMON)},
)
async def events(
    caller: PrivacyOfficer,
    db: DatabaseDep,
    clock: ClockDep,
    privacy: PrivacyServiceDep,
    transparency: TransparencyDep,
    counts: EvaluationCountsDep,
    asked: ReportQueryDep,
) -> Response:
    """Events per organisation and action, consultations, refusals, volumes and anomaly
    flags over ``[from, to)`` (at most three years), of the officer's region (the national
    officer: `region`, or every region). Unconfirmed information duty counts after
    `VIR_INFORMATION_DUTY_DAYS`."""
    first, last = asked.period()
    # Imported when first asked for: matplotlib and fpdf2 are slow to load.
    from vir.reports.officer import privacy_csv, privacy_pdf
    from vir.services.reports import privacy_report

    report = await run_in_threadpool(
        functools.partial(
            privacy_report,
            db,
            clock,
            caller,
            first,
            last,
            information_days=privacy.information_days,
            region=asked.region,
            log=transparency,
            evaluation_counts=counts,
        )
    )
    return await _respond(
        report,
        asked,
        "privacy-rapport",
        clock,
        privacy_csv,
        privacy_pdf,
    )


@router.get(
    "/monitor",
    operation_id="getMonitorReport",
    responses={**_CONTENT, **problem_responses(*COMMON)},
)
async def monitor(
    caller: PrivacyOfficer,
    db: DatabaseDep,
    clock: ClockDep,
    transparency: TransparencyDep,
    asked: ReportQueryDep,
    granularity: Annotated[
        Literal["month", "quarter", "year", "auto"],
        Query(description="columns per month, quarter or year; auto: the finest that shows most"),
    ] = "auto",
    grouping: Annotated[
        Literal["categories", "groups", "auto"],
        Query(description="rows per organisation category or group of categories; or auto"),
    ] = "auto",
) -> Response:
    """The municipal monitor over ``[from, to)``: counts per organisation category (or
    group) and month (quarter, year), small numbers suppressed, with the share of numbers
    not shown; no organisation is named. The officer's own region (another `region` is
    refused); the national officer's `region`, or every region."""
    first, last = asked.period()
    from vir.reports.officer import monitor_csv, monitor_pdf
    from vir.services.reports import monitor_report

    report = await run_in_threadpool(
        functools.partial(
            monitor_report,
            db,
            clock,
            caller,
            first,
            last,
            asked.region,
            log=transparency,
            granularity=granularity,
            grouping=grouping,
        )
    )
    return await _respond(report, asked, "monitor", clock, monitor_csv, monitor_pdf)


@router.get(
    "/participation",
    operation_id="getParticipationReport",
    responses={**_CONTENT, **problem_responses(*COMMON)},
)
async def participation(
    caller: ParticipationReader,
    db: DatabaseDep,
    clock: ClockDep,
    transparency: TransparencyDep,
    asked: ReportQueryDep,
    days: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_DAYS,
            description="the term for contact after a match, in days; default: the "
            "region's follow-up period (14 unless the operator set another)",
        ),
    ] = None,
) -> Response:
    """The participation monitor over ``[from, to)``: per organisation of the region its
    signals, matches, contact within `days` days and median days to contact, against the
    other organisations of its category, flagged when it reports far less; per region the
    same added up, small numbers suppressed. A privacy officer or follow-up officer of a
    municipality: their own region (another `region` is refused); the national officer:
    `region`, or every region."""
    scope = participation_scope(caller)
    first, last = asked.period()
    from vir.reports.participation import participation_csv, participation_pdf
    from vir.services.participation import participation_report

    # A mistyped region is refused (422 naming `region`) rather than answered empty.
    await run_in_threadpool(require_known_region, db, scope.report_region(asked.region))

    report = await run_in_threadpool(
        functools.partial(
            participation_report,
            db,
            clock,
            caller,
            first,
            last,
            asked.region,
            days=days,
            log=transparency,
        )
    )
    return await _respond(
        report,
        asked,
        "deelname",
        clock,
        participation_csv,
        participation_pdf,
    )
