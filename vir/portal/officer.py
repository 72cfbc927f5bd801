"""The privacy officer's pages (issue 18, part 3): the reports, a data-subject access
request blinded in the browser, and the audit log's latest signed checkpoint.

The portal calls the index's services in-process for the signed-in person, as the API
does for an officer's certificate: as their organisation with ``Role.PRIVACY_OFFICER``
(a municipality: its region), named in every audit entry by their pseudonymous id
(``Caller.person``). The services audit what they do (``report.generated``,
``access.requested``); the portal audits what nothing else records (the access
request's PDF) and every refusal (``portal.request_refused``).

The access request's PDF is made from the answer the officer has just seen: that
answer (never the pseudonym) is kept in this process for one download, under a random
handle bound to the session, for ``KEEP`` at most (``AccessDownloads``). The handle
travels in a form post, never in a URL; it works once, for that session only.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import io
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vir.audit import merkle
from vir.audit.actions import Action
from vir.audit.chain import Outcome, verify_chain
from vir.audit.checkpoint import Checkpoint, SignedNote, parse_verifier_key, verify_note
from vir.crypto import oprf
from vir.crypto.signing import ed25519_verify, load_signing_key
from vir.domain.caller import Caller
from vir.domain.dates import parse_iso_date
from vir.domain.errors import (
    AccessDenied,
    InputError,
    InvalidElement,
    NotFound,
    OutsideRegion,
    RateLimited,
    VirError,
)
from vir.domain.organisations import Category, Organisation, Role
from vir.portal import forms, sessions
from vir.portal.config import PortalRole
from vir.portal.forms import UnexpectedField
from vir.portal.guard import Refused, RolePages, unexpected
from vir.portal.settings import KeyHolders
from vir.services.epochs import Arriving, EpochBook
from vir.services.participation import MAX_DAYS
from vir.services.privacy import PrivacyService
from vir.services.reports import EvaluationCounts
from vir.services.transparency import TransparencyLog
from vir.settings import Settings
from vir.store import audit_log
from vir.store.audit_log import stored_entries
from vir.store.organisations import get_organisation
from vir.store.tables import CheckpointRow

if TYPE_CHECKING:
    from vir.portal.state import Portal

# How long an access request's answer is kept for its PDF, and how many at most.
KEEP: Final = dt.timedelta(minutes=10)
MAX_KEPT: Final = 200
# The reports: their Dutch names and the names of their downloads.
REPORTS: Final = {
    "privacy": ("Privacyrapportage", "privacy-rapport"),
    "monitor": ("Gemeentelijke monitor", "monitor"),
    "participation": ("Deelnamemonitor", "deelname"),
}
FORMATS: Final = ("html", "csv", "pdf")
# What each form (the reports': a GET form) may carry (the CSRF token besides).
REPORT_FIELDS: Final = frozenset({"report", "from", "to", "days", "region", "format"})
ACCESS_FIELDS: Final = frozenset({"epoch", "person"})
DOWNLOAD_FIELDS: Final = frozenset({"handle"})
MAX_VALUE: Final = 100  # characters of any one report field
LABELS: Final = {
    "report": "Rapportage",
    "from": "Van",
    "to": "Tot",
    "days": "Termijn voor contact",
    "region": "Regio",
    "format": "Vorm",
    "epoch": "BSN",
    "person": "BSN",
}
_EXPLAINED: Final = {
    "report": "kies een rapportage uit de lijst.",
    "from": 'vul een datum in (JJJJ-MM-DD) die vóór de datum bij "Tot" ligt.',
    "to": 'vul een datum in (JJJJ-MM-DD) na de datum bij "Van"; de periode is hoogstens drie jaar.',
    "days": f"vul een aantal dagen in, van 1 tot en met {MAX_DAYS}, of laat het veld leeg.",
    "region": "vul de naam van een regio in (hoogstens 100 tekens), of laat het veld leeg.",
    "format": "kies bekijken, CSV of PDF.",
    "epoch": "de code van de persoon ontbreekt of is niet geldig. Die wordt in uw browser "
    "gemaakt uit het BSN of de naam; dat vraagt JavaScript. Vul de gegevens opnieuw in.",
    "person": "de code van de persoon ontbreekt of is niet geldig. Die wordt in uw browser "
    "gemaakt uit het BSN of de naam; dat vraagt JavaScript. Vul de gegevens opnieuw in.",
}
_CSV = "text/csv; charset=utf-8"
_PDF = "application/pdf"


@dataclass(frozen=True)
class OfficerServices:
    """What the officer's pages call: the index's own services, on its database."""

    privacy: PrivacyService
    transparency: TransparencyLog
    epochs: EpochBook
    evaluation_counts: EvaluationCounts | None


def officer_services(portal: Portal) -> OfficerServices:
    """The services with the index's own settings (``VIR_*``, as ``vir portal serve``
    reads them): its rate limits, information-duty term, the key holders' evaluation
    counts, and the checkpoint signing key, since a report is tied to a signed
    checkpoint (signed when the log has grown) exactly as over the API."""
    from vir.api.app import evaluation_counts, rate_limits

    settings = Settings()
    db, clock = portal.db, portal.clock
    signer = load_signing_key(settings.keys_dir, settings.audit_origin)
    return OfficerServices(
        PrivacyService(db, clock, settings.information_duty_days, rate_limits(settings)),
        TransparencyLog(db, signer, clock),
        EpochBook(db),
        evaluation_counts(settings),
    )


@dataclass(frozen=True)
class Officer:
    """The signed-in privacy officer as a caller of the services."""

    user: sessions.PortalSession
    organisation: Organisation
    caller: Caller

    @property
    def region(self) -> str | None:
        """The region the officer acts for; None: every region (the national officer)."""
        return self.organisation.region if self.caller.role is Role.PRIVACY_OFFICER else None


@dataclass(frozen=True)
class Asked:
    """A report asked for: which, over ``[start, end)``, ``days`` (participation only),
    ``region`` (None: the officer's own) and in which form."""

    report: str
    start: dt.date
    end: dt.date
    days: int | None
    region: str | None
    form: str


@dataclass(frozen=True)
class Section:
    """One part of a report as shown on the page: a title, column heads, the rows."""

    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class LogCheck:
    """The newest signed checkpoint and what checking the stored log against it found:
    the hash chain (``first_broken`` None: intact), the Merkle root of the checkpoint's
    first ``size`` entries, and the log's signature on the note."""

    origin: str
    size: int
    root_hash: str
    signed_at: dt.datetime
    signature_ok: bool
    root_ok: bool
    entries: int
    first_broken: int | None
    problem: str | None

    @property
    def verified(self) -> bool:
        return self.signature_ok and self.root_ok and self.first_broken is None


@dataclass(frozen=True)
class _Kept:
    session: str
    report: dict[str, Any]
    until: dt.datetime


class AccessDownloads:
    """Access requests' answers kept for their one PDF download: a random handle, bound
    to the session (its token hash) that made the request, taken at most once, for
    ``KEEP``. A session has one at a time. Used from the event loop only."""

    def __init__(self) -> None:
        self._kept: dict[str, _Kept] = {}

    def keep(self, session: str, report: dict[str, Any], now: dt.datetime) -> str:
        self._kept = {h: k for h, k in self._kept.items() if k.until > now and k.session != session}
        if len(self._kept) >= MAX_KEPT:
            self._kept.pop(min(self._kept, key=lambda h: self._kept[h].until))
        handle = secrets.token_urlsafe(32)
        self._kept[handle] = _Kept(session, report, now + KEEP)
        return handle

    def take(self, session: str, handle: str, now: dt.datetime) -> dict[str, Any] | None:
        """The answer of ``handle`` once, for its own session before it expires; a handle
        shown by another session is dropped as well (it was taken from its page)."""
        kept = self._kept.pop(handle, None)
        if kept is None or kept.session != session or kept.until <= now:
            return None
        return kept.report


Handler = Callable[[Request, Officer], Awaitable[Response]]


class OfficerPages(RolePages[Officer]):
    """The privacy officer's pages on ``portal`` (vir.portal.state.Portal)."""

    no_access = "Deze pagina is voor de privacyfunctionaris."

    def __init__(
        self, portal: Portal, services: OfficerServices, holders: KeyHolders, origin: str
    ) -> None:
        super().__init__(portal, origin)
        self.services = services
        self.holders = holders
        self.downloads = AccessDownloads()

    def routes(self) -> list[Route]:
        guarded = self.guarded
        return [
            Route("/rapportages", guarded(self.reports_page)),
            Route("/inzage", guarded(self.access_page)),
            Route("/inzage", guarded(self.access_post, post=ACCESS_FIELDS), methods=["POST"]),
            Route(
                "/inzage/pdf",
                guarded(self.access_pdf, post=DOWNLOAD_FIELDS),
                methods=["POST"],
            ),
            Route("/auditlog", guarded(self.audit_page)),
        ]

    # -- who acts, refusals, rendering --------------------------------------------------

    def acting(self, user: sessions.PortalSession) -> Officer | None:
        """The person as a privacy officer: a municipality's (its region), or the index
        operator's national officer; None otherwise."""
        if PortalRole.PRIVACY_OFFICER not in user.roles:
            return None
        with self.db.read() as session:
            organisation = get_organisation(session, user.oin)
        if organisation is None:
            return None
        if organisation.category is Category.MUNICIPALITY:
            role = Role.PRIVACY_OFFICER
        elif organisation.category is Category.INDEX_OPERATOR:
            role = Role.NATIONAL_PRIVACY_OFFICER
        else:
            return None
        return Officer(user, organisation, Caller(organisation, "", role, person=user.person))

    def refused(self, who: Officer, error: VirError) -> None:
        """Audit a service's refusal of the officer's request (the field it names)."""
        field = {"field": error.field} if isinstance(error, InputError) else None
        self.refuse(who.user, _reason(error), field)

    def context(self, who: Officer) -> dict[str, Any]:
        return {"region": who.region}

    # -- reports ------------------------------------------------------------------------

    def make_report(self, who: Officer, asked: Asked) -> dict[str, Any]:
        """The report, made by the service as over the API (and audited there)."""
        services, db, clock, caller = self.services, self.db, self.portal.clock, who.caller
        if asked.report == "privacy":
            from vir.services.reports import privacy_report

            return privacy_report(
                db,
                clock,
                caller,
                asked.start,
                asked.end,
                information_days=services.privacy.information_days,
                region=asked.region,
                log=services.transparency,
                evaluation_counts=services.evaluation_counts,
            )
        if asked.report == "monitor":
            from vir.services.reports import monitor_report

            return monitor_report(
                db, clock, caller, asked.start, asked.end, asked.region, log=services.transparency
            )
        from vir.services.participation import participation_report

        return participation_report(
            db,
            clock,
            caller,
            asked.start,
            asked.end,
            asked.region,
            days=asked.days,
            log=services.transparency,
        )

    def reports_form(
        self,
        who: Officer,
        values: Mapping[str, str],
        status: int = 200,
        problem: tuple[str, str] | None = None,
        asked: Asked | None = None,
        report: dict[str, Any] | None = None,
    ) -> Response:
        return self.render(
            who,
            "officer_reports.html",
            status,
            values=values,
            reports=REPORTS,
            problem=problem,
            title=REPORTS[asked.report][0] if asked else None,
            sections=_sections(_csv_of(asked.report, report)) if asked and report else [],
            max_days=MAX_DAYS,
        )

    async def reports_page(self, request: Request, who: Officer) -> Response:
        pairs = request.query_params.multi_items()
        values = dict(pairs)
        if len(values) != len(pairs) or any(len(v) > MAX_VALUE for v in values.values()):
            raise unexpected()
        try:
            forms.only(values, REPORT_FIELDS)
        except UnexpectedField:
            raise unexpected() from None
        if "report" not in values:
            return self.reports_form(who, _default_period(self.portal.clock().date()))
        try:
            asked = _asked(values)
            report = await run_in_threadpool(self.make_report, who, asked)
        except VirError as error:
            await run_in_threadpool(self.refused, who, error)
            return self.reports_form(who, values, _status(error), _problem(error, who))
        if asked.form == "html":  # rendered from the CSV: its module is slow to import
            return await run_in_threadpool(
                functools.partial(self.reports_form, who, values, asked=asked, report=report)
            )
        return await run_in_threadpool(self.download, asked, report)

    def download(self, asked: Asked, report: dict[str, Any]) -> Response:
        """The report as the nl-dialect CSV or the Dutch PDF, as an attachment."""
        name = REPORTS[asked.report][1]
        disposition = {"Content-Disposition": f'attachment; filename="{name}.{asked.form}"'}
        if asked.form == "csv":
            return Response(_csv_of(asked.report, report), media_type=_CSV, headers=disposition)
        return Response(
            _pdf_of(asked.report, report, self.portal.clock()),
            media_type=_PDF,
            headers=disposition,
        )

    # -- the access request -------------------------------------------------------------

    def access_form(
        self, who: Officer, status: int = 200, problem: tuple[str, str] | None = None
    ) -> Response:
        return self.render(
            who,
            "officer_access.html",
            status,
            holders=self.holders,
            token=self.portal.tokens.get(who.user.token_hash),
            problem=problem,
            integrity=self.portal.integrity,
        )

    async def access_page(self, _request: Request, who: Officer) -> Response:
        return self.access_form(who)

    def access(self, who: Officer, form: Mapping[str, str]) -> dict[str, Any]:
        """Everything held on the posted pseudonym in the officer's part of the index
        (audited by the service, found or not)."""
        person = forms.pseudonym(form, "person")
        if person is None or not oprf.is_valid_element(person):
            raise InvalidElement("person")
        epoch = forms.epoch(form)
        self.services.epochs.convert(epoch, [person])  # refuses an epoch not accepted
        return self.services.privacy.access(who.caller, Arriving(epoch, person))

    async def access_post(self, request: Request, who: Officer) -> Response:
        try:
            report = await run_in_threadpool(self.access, who, request.state.form)
        except NotFound:
            return self.render(who, "officer_access_result.html", report=None, handle=None)
        except VirError as error:
            await run_in_threadpool(self.refused, who, error)
            return self.access_form(who, _status(error), _problem(error, who))
        handle = self.downloads.keep(who.user.token_hash, report, self.portal.clock())
        return self.render(
            who,
            "officer_access_result.html",
            report=report,
            handle=handle,
            minutes=int(KEEP.total_seconds() // 60),
        )

    def access_document(self, who: Officer, report: dict[str, Any]) -> bytes:
        """The Dutch PDF of an access request's answer; its making is audited (the
        service audited the request itself)."""
        from vir.reports.access_pdf import render_access_report

        pdf = render_access_report(report)
        with self.db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.REPORT_GENERATED,
                    Outcome.SUCCESS,
                    self.portal.clock(),
                    objects={"report": "access", "request": str(report["request_id"])},
                    **audit_log.by(who.caller),
                ),
            )
        return pdf

    async def access_pdf(self, request: Request, who: Officer) -> Response:
        handle = request.state.form.get("handle", "")
        report = self.downloads.take(who.user.token_hash, handle, self.portal.clock())
        if report is None:
            raise Refused(
                "download_handle",
                404,
                "Niet meer beschikbaar",
                "Deze download is al gebruikt, verlopen, of hoort bij een andere sessie. Doe "
                "het inzageverzoek opnieuw om de PDF te krijgen.",
            )
        pdf = await run_in_threadpool(self.access_document, who, report)
        return Response(
            pdf,
            media_type=_PDF,
            headers={"Content-Disposition": 'attachment; filename="inzage.pdf"'},
        )

    # -- the audit log ------------------------------------------------------------------

    def log_check(self) -> LogCheck | None:
        """The newest signed checkpoint, checked as ``vir audit verify`` checks the stored
        log (the hash chain, naming the first broken entry), and the checkpoint against
        it (its note's signature by the log's key, the root of its first entries)."""
        with self.db.read() as session:
            row = session.scalars(
                select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
            ).first()
            if row is None:
                return None
            leaves: list[bytes] = []

            def collected(entries: Iterator[Any]) -> Iterator[Any]:
                for entry in entries:
                    if entry.seq <= row.size:
                        leaves.append(merkle.leaf_hash(entry.body))
                    yield entry

            chain = verify_chain(collected(stored_entries(session, with_refs=True)))
            note_text, size, root, signed_at = row.note, row.size, row.root_hash, row.created_at
        note = SignedNote.parse(note_text.encode("utf-8"))
        checkpoint = Checkpoint.parse_body(note.text)
        name, key = parse_verifier_key(self.services.transparency.verifier_key)
        return LogCheck(
            origin=checkpoint.origin,
            size=size,
            root_hash=base64.b64encode(root).decode("ascii"),
            signed_at=signed_at,
            signature_ok=verify_note(note, name, key, ed25519_verify)
            and (checkpoint.size, checkpoint.root_hash) == (size, root),
            root_ok=len(leaves) == size and merkle.root(leaves) == root,
            entries=chain.entries,
            first_broken=chain.first_broken,
            problem=chain.problem,
        )

    async def audit_page(self, _request: Request, who: Officer) -> Response:
        check = await run_in_threadpool(self.log_check)
        return self.render(
            who,
            "officer_audit.html",
            check=check,
            verifier_key=self.services.transparency.verifier_key,
        )


def routes(portal: Portal, holders: KeyHolders, origin: str) -> list[Route]:
    """The privacy officer's pages on ``portal``."""
    return OfficerPages(portal, officer_services(portal), holders, origin).routes()


def _default_period(today: dt.date) -> dict[str, str]:
    """The form's first values: the last twelve whole months and this one."""
    start = dt.date(today.year - 1, today.month, 1)
    return {"from": start.isoformat(), "to": (today + dt.timedelta(days=1)).isoformat()}


def _date(values: Mapping[str, str], field: str) -> dt.date:
    value = values.get(field, "").strip()
    try:
        return parse_iso_date(value)
    except ValueError:
        raise InputError(field, "a date as YYYY-MM-DD") from None


def _asked(values: Mapping[str, str]) -> Asked:
    """The report asked for by the form's ``values``; InputError naming the field."""
    report = values.get("report", "")
    if report not in REPORTS:
        raise InputError("report", "privacy, monitor or participation")
    form = values.get("format", "html") or "html"
    if form not in FORMATS:
        raise InputError("format", "html, csv or pdf")
    start, end = _date(values, "from"), _date(values, "to")
    days_text = values.get("days", "").strip()
    days = None
    if report == "participation" and days_text:
        if not (days_text.isascii() and days_text.isdigit() and 1 <= int(days_text) <= MAX_DAYS):
            raise InputError("days", f"a number of days from 1 to {MAX_DAYS}")
        days = int(days_text)
    region = values.get("region", "").strip() or None
    return Asked(report, start, end, days, region, form)


def _csv_of(report: str, made: dict[str, Any]) -> str:
    """The report as the nl-dialect CSV (Dutch labels, ``;``, with a BOM)."""
    if report == "participation":
        from vir.reports.participation import participation_csv

        return participation_csv(made, "nl")
    from vir.reports.officer import monitor_csv, privacy_csv

    return (privacy_csv if report == "privacy" else monitor_csv)(made, "nl")


def _pdf_of(report: str, made: dict[str, Any], created_at: dt.datetime) -> bytes:
    if report == "participation":
        from vir.reports.participation import participation_pdf

        return participation_pdf(made, created_at)
    from vir.reports.officer import monitor_pdf, privacy_pdf

    return (privacy_pdf if report == "privacy" else monitor_pdf)(made, created_at)


def _sections(text: str) -> list[Section]:
    """The nl-dialect CSV as the page's tables: one per part (the first column), so the
    page shows exactly the published cells of the download. The privacy report and the
    participation monitor have one head row for all parts (columns empty throughout a
    part are left out); a monitor table has its own (its first row: categories or groups
    by period)."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    common: list[str] | None = None
    if rows and rows[0][0] == "Onderdeel":
        common, rows = rows[0][1:], rows[1:]
    parts: dict[str, list[list[str]]] = {}
    for row in rows:
        parts.setdefault(row[0], []).append(row[1:])
    found = []
    for title, body in parts.items():
        if common is not None:
            keep = [i for i in range(len(common)) if any(i < len(r) and r[i] for r in body)]
            head = tuple(common[i] for i in keep)
            cells = tuple(tuple(r[i] if i < len(r) else "" for i in keep) for r in body)
        elif body[0] and body[0][0] in ("Categorie", "Groep"):
            head, cells = tuple(body[0]), tuple(tuple(r) for r in body[1:])
        else:
            head, cells = (), tuple(tuple(r) for r in body)
        found.append(Section(title, head, cells))
    return found


def _reason(error: VirError) -> str:
    if isinstance(error, InputError):
        return "invalid"
    if isinstance(error, OutsideRegion):
        return "outside_region"
    if isinstance(error, AccessDenied):
        return "forbidden"
    if isinstance(error, RateLimited):
        return "rate_limited"
    return "refused"


def _status(error: VirError) -> int:
    if isinstance(error, AccessDenied):
        return 403
    if isinstance(error, RateLimited):
        return 429
    return 400


def _problem(error: VirError, who: Officer) -> tuple[str, str]:
    """(field or "", a Dutch sentence naming it) for a refusal shown above the form."""
    if isinstance(error, InputError):
        label = LABELS.get(error.field, "Formulier")
        explained = _EXPLAINED.get(error.field, "de waarde is niet geldig.")
        return error.field, f'Controleer het veld "{label}": {explained}'
    if isinstance(error, OutsideRegion):
        return "region", (
            f'Controleer het veld "Regio": u ziet alleen de gegevens van uw eigen regio '
            f"({who.region}). Laat het veld leeg of vul uw regio in."
        )
    if isinstance(error, RateLimited):
        return "", (
            "Uw organisatie heeft te veel verzoeken gedaan. Probeer het over een paar minuten "
            "opnieuw."
        )
    if isinstance(error, AccessDenied):
        return "", "Dit mag alleen de privacyfunctionaris."
    return "", "Dit kon niet worden uitgevoerd."
