"""Reports over the audit log: the privacy officer's report and the municipal monitor.

Both read the audit entries whose ``occurred_at`` lies in ``[start, end)`` (dates, UTC
midnight to midnight) and nothing else of the log; generating either report is itself
an audited action (``report.generated``). ``caller`` None is the operator at the CLI.

* :func:`privacy_report` is for the privacy officer and names organisations: events by
  organisation and action, consultations by purpose, refused requests, signals whose
  information duty is unconfirmed (the current state, not the period), volumes per
  month and anomaly flags. A ``request.refused`` entry stands for ``count`` refusals
  (``vir.services.refusals`` sums them per key and minute); events and refusals count
  refusals, not entries. The portal's refused requests and sign-ins (one entry each)
  are listed with them, under ``portal`` and ``portal sign-in``.

  The evaluation volumes are the key holders' counts (``evaluation_counts``: at least
  so many, :mod:`vir.services.evaluation_counts`), or no figure when they could not be
  read. The flags: a surge of registrations in the last month; consultations without
  registrations; an hour with many evaluated elements; signals withdrawn within
  minutes of their registration (register-then-withdraw asks "is this child in the
  index?" and leaves no signal), counted per organisation and withdrawal reason;
  privacy-officer lookups (access requests, erasures) bunched within a minute; and
  requests refused by a rate limit, per organisation.
* :func:`monitor_report` is for the municipality and names no organisation at all: per
  measure a table of organisation category (or group of categories) by month (quarter,
  year; the level chosen by :mod:`vir.reports.aggregation`, counts added up first),
  suppressed by
  :func:`vir.reports.suppression.suppress` (small counts shown as ``<10``, numbers hidden
  to protect them as ``x``). The tables are returned as rendered by
  :func:`vir.reports.suppression.render_rows`, so the JSON, CSV and PDF forms show the
  same published cells and never a true hidden value.

A match is counted under the category of the organisation whose action created it: the
organisation of the last entry before ``match.created`` in the same transaction (same
moment) that has an organisation and was not written by the matcher.

Both reports cover a region, or every region (``region`` None). A municipality's privacy
officer gets their own region whatever is asked, and asking for another is refused
(``OutsideRegion``); the index operator's national officer and the operator at the CLI
choose. A region's part of the log is the entries of its organisations, and the
matcher's entries caused by one of them (attributed as matches are, above); entries of
no organisation (lifecycle runs, key and admin events, refusals of an unknown caller) are
in the every-region report only.

Both are tied to the signed log: given the :class:`~vir.services.transparency.TransparencyLog`
(``log``), a report first takes a signed checkpoint (signing one if the log has grown)
and counts only the entries inside that checkpoint's tree; the report states the
checkpoint (origin, tree size, root hash, signing key, the signed note itself) and the
command that checks it against the current log (``vir report verify``). Without
``log`` (a test of the counting alone) the report reads the whole log and says so
(``checkpoint`` None).

The follow-up rate and the time to contact are in the participation monitor
(:mod:`vir.services.participation`), which reuses this module's period check,
checkpoint and audit of generation: derived only from *published* counts
(:func:`vir.reports.suppression.ratio`), the outcomes suppressed jointly.
"""

from __future__ import annotations

import base64
import datetime as dt
import heapq
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.audit import merkle
from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.audit.checkpoint import ed25519_key_hash, parse_verifier_key
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.errors import InputError
from vir.domain.organisations import Category, Organisation
from vir.reports.aggregation import GRANULARITIES, GROUPINGS, Granularity, Grouping, choose
from vir.reports.suppression import legend, render_rows
from vir.services.evaluation_counts import Counted, CountsUnavailable, HourCount
from vir.services.identity import Caller
from vir.store import audit_log
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.organisations import list_organisations
from vir.store.tables import AuditEntryRow

if TYPE_CHECKING:
    from vir.services.transparency import TransparencyLog

__all__ = [
    "BURST_ELEMENTS",
    "MAX_PERIOD_DAYS",
    "MONITOR_MEASURES",
    "CheckpointCheck",
    "audit_generation",
    "check_period",
    "checkpoint_of",
    "monitor_report",
    "privacy_report",
    "require_known_region",
    "verify_checkpoint",
]

BURST_ELEMENTS: Final = 1000
# Flag (d): at least this many signals withdrawn within QUICK_MINUTES of registration.
QUICK_MINUTES: Final = 10
QUICK_MINIMUM: Final = 3
# Flag (e): more than this many privacy-officer lookups within one minute. A person's
# request takes minutes to handle by hand; the rate limit allows a short burst.
LOOKUP_BURST: Final = 10
_LOOKUPS: Final = frozenset({Action.ACCESS_REQUESTED, Action.ERASURE_EXECUTED})
_MINUTE: Final = dt.timedelta(minutes=1)
MAX_PERIOD_DAYS: Final = 3 * 366
# Flag (a): registrations in the last month above this multiple of the monthly median.
SURGE_FACTOR: Final = 3
SURGE_MINIMUM: Final = 10
# Flag (b): at least this many consultations without a single registration.
CONSULT_ONLY_MINIMUM: Final = 5
_HOUR: Final = dt.timedelta(hours=1)
# Refusal reasons that are one reason to the reader, counted under one code: a request
# the API could not read (invalid_input, vir.api.errors) and input a service refused
# (input_error) are both answered 422 invalid-input.
_SAME_REASON: Final = {"invalid_input": "input_error"}
# The portal's refusals (one entry each, without an endpoint) are listed with the API's,
# under where they happened.
_PORTAL_REFUSALS: Final[dict[str, str]] = {
    Action.PORTAL_REQUEST_REFUSED.value: "portal",
    Action.PORTAL_SIGN_IN_REFUSED.value: "portal sign-in",
}
# How much later than its moment an entry may be integrated (the longest transaction,
# with a wide margin): the reports keep this much of the log in memory, no more.
LATENESS: Final = dt.timedelta(hours=6)

MONITOR_MEASURES: Final = {
    "signals": "Geregistreerde signalen",
    "person_matches": "Matches op de jeugdige",
    "household_matches": "Matches op het huishouden",
    "consultations": "Raadplegingen door Veilig Thuis",
}
_HOUSEHOLD_VIA: Final = frozenset({"parent", "address"})


def check_period(start: dt.date, end: dt.date) -> None:
    """``start`` before ``end``, at most three years apart (an InputError naming the field)."""
    if start >= end:
        raise InputError("from", "must be before 'to'")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InputError("to", "the period is at most 3 years")


def months_of(start: dt.date, end: dt.date) -> list[str]:
    """The months ``YYYY-MM`` that ``[start, end)`` touches, in order."""
    last = end - dt.timedelta(days=1)
    months = []
    year, month = start.year, start.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    event: AuditEvent

    @property
    def month(self) -> str:
        return self.event.occurred_at[:7]


def checkpoint_of(log: TransparencyLog | None) -> dict[str, Any] | None:
    """Sign (if the log has grown) and describe the checkpoint a report is computed from:
    origin, tree size, root hash (base64, as in the note), the signing key's name, id
    (key hash, hex) and verifier key, the signed note, and the command that checks it."""
    if log is None:
        return None
    signed = log.checkpoint()
    verifier_key = log.verifier_key
    name, public_key = parse_verifier_key(verifier_key)
    note = signed.note.decode("utf-8")
    root = base64.b64encode(signed.root_hash).decode("ascii")
    return {
        "origin": note.split("\n", 1)[0],
        "tree_size": signed.size,
        "root_hash": root,
        "key_name": name,
        "key_id": ed25519_key_hash(name, public_key).hex(),
        "verifier_key": verifier_key,
        "note": note,
        "verify": f"vir report verify --tree-size {signed.size} --root-hash {root}",
    }


def _entries(
    session: Session, start: dt.date, end: dt.date, size: int | None = None
) -> Iterator[_Entry]:
    """The entries of ``[start, end)``, of the first ``size`` entries of the log (or all);
    what is integrated when the read began (``read_log`` integrates first)."""
    low = audit_log.rfc3339(dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC))
    high = audit_log.rfc3339(dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC))
    query = select(AuditEntryRow.seq, AuditEntryRow.body).where(
        AuditEntryRow.occurred_at >= low, AuditEntryRow.occurred_at < high
    )
    if size is not None:
        query = query.where(AuditEntryRow.seq <= size)
    rows = session.execute(query.order_by(AuditEntryRow.seq)).yield_per(5000)
    for seq, body in rows:
        raw = body if isinstance(body, bytes) else str(body).encode("utf-8")
        yield _Entry(seq, AuditEvent.decode(raw))


@contextmanager
def read_log(db: Database) -> Iterator[Session]:
    """A read session for a report: what is staged is integrated first (a short write of
    its own), then the log and the stores are read outside any write transaction, so a
    report over a large log holds no writer up (on SQLite a write transaction excludes
    every other writer for as long as it lasts). The report's ``report.generated`` entry
    is written afterwards, in a short write (``audit_generation``)."""
    db.integrate()
    with db.read() as session:
        yield session


def audit_generation(
    session: Session,
    caller: Caller | None,
    now: dt.datetime,
    report: str,
    start: dt.date,
    end: dt.date,
) -> None:
    """Audit ``report.generated`` for ``report`` over ``[start, end)`` (``caller`` None:
    the operator at the CLI); also for the key holder's evaluation counts."""
    accessor: dict[str, Any] = (
        {**audit_log.by(caller)} if caller is not None else {"actor": "admin"}
    )
    audit_log.append(
        session,
        audit_log.new_event(
            Action.REPORT_GENERATED,
            Outcome.SUCCESS,
            now,
            objects={"report": report, "from": start.isoformat(), "to": end.isoformat()},
            **accessor,
        ),
    )


# The key holders' evaluations over [start, end), counted (vir.services.evaluation_counts).
EvaluationCounts = Callable[[dt.date, dt.date], Counted]


def _fetch_evaluations(
    source: EvaluationCounts | None, start: dt.date, end: dt.date
) -> tuple[tuple[HourCount, ...], dict[str, Any]]:
    """The key holders' counts (asked before the report's transaction: no network call
    inside a write transaction), and where the counts came from and how they were
    computed. When they were not read (none configured, or too few key holders
    answering), ``available`` is false with the ``reason`` (``not_configured``,
    ``unreachable``) and what went wrong (``detail``), and the volumes show no figure
    (None) rather than a silent zero. When they were, ``method`` ``at_least``: the
    figures are lower bounds (``detail`` says why), with how many key holders
    (``keyholders``, t ``threshold``) were asked and ``answered`` (those that did not:
    ``not_answered``)."""
    if source is None:
        return (), {
            "source": "keyholder",
            "available": False,
            "reason": "not_configured",
            "detail": "no key holder to ask for its counts (VIR_USAGE_KEYHOLDERS is empty)",
        }
    try:
        counted = source(start, end)
    except CountsUnavailable as error:
        return (), {
            "source": "keyholder",
            "available": False,
            "reason": "unreachable",
            "detail": str(error),
        }
    n, answered = counted.keyholders, counted.answered
    described: dict[str, Any] = {
        "source": "keyholder",
        "available": True,
        "method": "at_least",
        "keyholders": n,
        "threshold": counted.threshold,
        "answered": answered,
        "detail": (
            "at least: per organisation and hour "
            + ("the key holder's count" if n == 1 else "the highest count of one key holder")
            + f" ({answered} of {n} answered); a pseudonymisation reaches a key holder at "
            "most once, and a log that misses part of the period (a repaired or replaced "
            "key holder) can only make the figure lower than the true number"
        ),
    }
    if counted.silent:
        described["not_answered"] = list(counted.silent)
    return counted.hours, described


def require_known_region(db: Database, region: str | None) -> None:
    """Refuse (InputError naming ``region``) a region no organisation is in: a mistyped
    name would otherwise give an empty report. Region names are not confidential; the
    known ones are listed so that the right one can be chosen."""
    if region is None:
        return
    with db.read() as session:
        known = sorted({o.region for o in list_organisations(session)})
    if region not in known:
        raise InputError(
            "region",
            "no organisation is in this region; the regions are: " + (", ".join(known) or "none"),
        )


class _Within:
    """Whether an entry is in a region's part of the log (``oins`` None: every entry).
    Called on every entry in sequence: a matcher's entry without an organisation belongs
    to the organisation whose act, at the same moment, caused it."""

    def __init__(self, oins: frozenset[str] | None) -> None:
        self._oins = oins
        self._acting: tuple[str, str | None] = ("", None)  # (moment, organisation)

    def covers(self, oin: str) -> bool:
        return self._oins is None or oin in self._oins

    def __call__(self, event: AuditEvent) -> bool:
        if event.organisation is not None and event.actor != "matching":
            self._acting = (event.occurred_at, event.organisation)
        if self._oins is None:
            return True
        oin = event.organisation
        if oin is None and event.actor == "matching" and self._acting[0] == event.occurred_at:
            oin = self._acting[1]
        return oin is not None and oin in self._oins


def _evaluated(event: AuditEvent) -> int:
    elements = event.objects.get("elements", 0)
    return elements if isinstance(elements, int) else 0


def _refusals(event: AuditEvent) -> int:
    """How many refused requests a ``request.refused`` entry stands for."""
    count = event.objects.get("count", 1)
    return count if isinstance(count, int) and count > 0 else 1


def _moment(event: AuditEvent) -> dt.datetime:
    return dt.datetime.fromisoformat(event.occurred_at.replace("Z", "+00:00"))


class _InOrder:
    """Points (moment, count) given in log order, handed on in time order.

    The log's order is the order of integration, and an entry's moment is when its
    request was handled: they differ by at most a transaction's length. A point is held
    until one ``LATENESS`` younger has been seen, so what is handed on is in time order
    as long as no entry is integrated more than ``LATENESS`` after its moment; memory
    holds the points of that span only, however long the log."""

    def __init__(self) -> None:
        self._held: list[tuple[dt.datetime, int, int]] = []  # a heap; the int breaks ties
        self._added = 0
        self._latest = dt.datetime.min.replace(tzinfo=dt.UTC)

    def add(self, moment: dt.datetime, count: int) -> list[tuple[dt.datetime, int]]:
        """Hold the point; the points now older than ``LATENESS``, oldest first."""
        heapq.heappush(self._held, (moment, self._added, count))
        self._added += 1
        self._latest = max(moment, self._latest)
        released = []
        while self._held and self._held[0][0] <= self._latest - LATENESS:
            first, _, counted = heapq.heappop(self._held)
            released.append((first, counted))
        return released

    def rest(self) -> Iterator[tuple[dt.datetime, int]]:
        while self._held:
            first, _, counted = heapq.heappop(self._held)
            yield first, counted


class _BusiestWindow:
    """The ``span`` window (an hour, a minute) holding the most, over points given in log
    order: the window's start and that number. Memory: the points of one span and of
    ``LATENESS`` (``_InOrder``), not of the whole period."""

    def __init__(self, span: dt.timedelta) -> None:
        self._span = span
        self._order = _InOrder()
        self._window: deque[tuple[dt.datetime, int]] = deque()
        self._total = 0
        self._best: tuple[dt.datetime, int] | None = None

    def add(self, moment: dt.datetime, count: int) -> None:
        for point in self._order.add(moment, count):
            self._slide(*point)

    def busiest(self) -> tuple[dt.datetime, int]:
        for point in self._order.rest():
            self._slide(*point)
        assert self._best is not None, "busiest() of a window that saw no point"
        return self._best

    def _slide(self, moment: dt.datetime, count: int) -> None:
        self._window.append((moment, count))
        self._total += count
        while self._window[0][0] <= moment - self._span:
            self._total -= self._window.popleft()[1]
        if self._best is None:
            self._best = (self._window[0][0], 0)
        if self._total > self._best[1]:
            self._best = (self._window[0][0], self._total)


class _Recent:
    """Signal id -> moment of registration, for the registrations that a withdrawal
    seen from now on can still be within ``keep`` of (``keep``: the quick-withdrawal
    term plus ``LATENESS``): older ones are dropped, so memory holds the registrations
    of that span, not of the period."""

    def __init__(self, keep: dt.timedelta) -> None:
        self._keep = keep
        self._when: dict[str, dt.datetime] = {}
        self._order: deque[tuple[dt.datetime, str]] = deque()  # log order
        self._latest = dt.datetime.min.replace(tzinfo=dt.UTC)

    def add(self, signal: str, moment: dt.datetime) -> None:
        self._when[signal] = moment
        self._order.append((moment, signal))
        self._latest = max(self._latest, moment)
        while self._order and self._order[0][0] < self._latest - self._keep:
            old, dropped = self._order.popleft()
            if self._when.get(dropped) == old:
                del self._when[dropped]

    def get(self, signal: str) -> dt.datetime | None:
        return self._when.get(signal)


def _evaluation_burst(
    at_least: _BusiestWindow, per_threshold: _BusiestWindow, limit: int, threshold: int
) -> dict[str, Any] | None:
    """The bulk-pseudonymisation flag's figures, or None: an hour with more than ``limit``
    elements by the lower bound (``counted`` ``at_least``), else by the key holders'
    counts added up and divided by t (``per_threshold``, with the ``threshold``): a
    client that spreads its elements over the key holders keeps each one's count at t/n
    of them, and the lower bound alone would let n/t times the limit through."""
    began, elements = at_least.busiest()
    if elements > limit:
        counted = "at_least"
    else:
        began, elements = per_threshold.busiest()
        if elements <= limit:
            return None
        counted = "per_threshold"
    figures: dict[str, Any] = {
        "from": audit_log.rfc3339(began),
        "elements": elements,
        "limit": limit,
        "counted": counted,
    }
    if counted == "per_threshold":
        figures["threshold"] = threshold
    return figures


def privacy_report(
    db: Database,
    clock: Clock,
    caller: Caller | None,
    start: dt.date,
    end: dt.date,
    *,
    burst_elements: int = BURST_ELEMENTS,
    information_days: int = 30,
    quick_minutes: int = QUICK_MINUTES,
    quick_minimum: int = QUICK_MINIMUM,
    lookup_burst: int = LOOKUP_BURST,
    region: str | None = None,
    log: TransparencyLog | None = None,
    evaluation_counts: EvaluationCounts | None = None,
) -> dict[str, Any]:
    """The privacy officer's report on ``[start, end)`` for ``region`` (None: every region,
    or the officer's own); see the module docstring. ``information_days`` is the term
    after which a signal's information duty counts as unconfirmed
    (``VIR_INFORMATION_DUTY_DAYS``); ``log`` ties the report to a signed checkpoint;
    ``evaluation_counts``: the key holders' counts of evaluations (per organisation and
    hour), which the index's own log no longer sees since pseudonyms are made there."""
    scope = policy.NATIONAL if caller is None else policy.require_privacy_officer(caller)
    region = scope.report_region(region)
    quick_after = dt.timedelta(minutes=quick_minutes)
    check_period(start, end)
    require_known_region(db, region)
    now = clock()
    checkpoint = checkpoint_of(log)
    size = None if checkpoint is None else int(checkpoint["tree_size"])
    months = months_of(start, end)
    events: Counter[tuple[str | None, str]] = Counter()
    purposes: dict[str, Counter[str]] = defaultdict(Counter)
    refusals: Counter[tuple[str, str]] = Counter()
    volumes: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    quick: dict[str, Counter[str]] = defaultdict(Counter)  # oin -> withdrawal reasons
    limited: dict[str, Counter[str]] = defaultdict(Counter)  # oin -> endpoint -> refusals
    dead: Counter[str] = Counter()  # channel -> deliveries given up (dead letters)
    fetched, counts_source = _fetch_evaluations(evaluation_counts, start, end)
    registered = _Recent(quick_after + LATENESS)  # signal id -> when, within the period
    lookups: dict[str, _BusiestWindow] = defaultdict(lambda: _BusiestWindow(_MINUTE))
    # Evaluated elements: at least (the figure shown), and per threshold (the key holders'
    # counts added up and divided by t: the flag's second figure; evaluation_counts).
    evaluations: dict[str, _BusiestWindow] = defaultdict(lambda: _BusiestWindow(_HOUR))
    per_threshold: dict[str, _BusiestWindow] = defaultdict(lambda: _BusiestWindow(_HOUR))
    with read_log(db) as session:
        names = {str(o.oin): o.name for o in list_organisations(session)}
        within = _Within(None if region is None else repo.oins_in_region(session, region))
        for entry in _entries(session, start, end, size):
            event = entry.event
            oin = event.organisation
            if not within(event):
                continue
            if event.action == Action.REQUEST_REFUSED:
                count = _refusals(event)
                endpoint = str(event.objects.get("endpoint", ""))
                reason = event.reason or ""
                refusals[(_SAME_REASON.get(reason, reason), endpoint)] += count
                events[(oin, event.action)] += count
                if event.reason == "rate_limited" and oin is not None:
                    limited[oin][endpoint] += count
                continue
            events[(oin, event.action)] += 1
            if event.action in _PORTAL_REFUSALS:
                refusals[(event.reason or "", _PORTAL_REFUSALS[event.action])] += 1
            if event.action == Action.DELIVERY_DEAD:
                dead[str(event.objects.get("channel", ""))] += 1
            if oin is not None and event.action in _LOOKUPS:
                lookups[oin].add(_moment(event), 1)  # found or not
            if oin is None or event.outcome != Outcome.SUCCESS:
                continue
            if event.action == Action.SIGNAL_REGISTERED:
                registered.add(str(event.objects.get("signal", "")), _moment(event))
                volumes[oin][entry.month]["registrations"] += 1
            elif event.action == Action.SIGNAL_WITHDRAWN:
                since = registered.get(str(event.objects.get("signal", "")))
                if since is not None and _moment(event) - since <= quick_after:
                    quick[oin][event.reason or ""] += 1
            elif event.action == Action.CONSULTATION_MADE:
                volumes[oin][entry.month]["consultations"] += 1
                purposes[oin][event.purpose or ""] += 1
            elif event.action == Action.OPRF_EVALUATE:
                elements = _evaluated(event)
                volumes[oin][entry.month]["evaluations"] += elements
                evaluations[oin].add(_moment(event), elements)
                per_threshold[oin].add(_moment(event), elements)
        for hourly in sorted(fetched, key=lambda item: item.hour):
            if within.covers(hourly.oin):
                volumes[hourly.oin][f"{hourly.hour:%Y-%m}"]["evaluations"] += hourly.at_least
                evaluations[hourly.oin].add(hourly.hour, hourly.at_least)
                per_threshold[hourly.oin].add(hourly.hour, hourly.per_threshold)
        before = now - dt.timedelta(days=information_days)
        uninformed = Counter(r.oin for r in repo.uninformed_in_region(session, before, region))
    with db.write() as session:
        audit_generation(session, caller, now, "privacy", start, end)

    def org(oin: str | None) -> dict[str, str | None]:
        return {"oin": oin, "name": names.get(oin, oin) if oin is not None else None}

    def total(oin: str, measure: str) -> int:
        return sum(volumes[oin][m][measure] for m in months)

    flags: list[dict[str, Any]] = []
    for oin in sorted(volumes):
        monthly = [volumes[oin][m]["registrations"] for m in months]
        median = statistics.median(monthly)
        last = monthly[-1]
        if last >= SURGE_MINIMUM and last > SURGE_FACTOR * median:
            flags.append(
                org(oin)
                | {
                    "kind": "registration_surge",
                    "figures": {"month": months[-1], "registrations": last, "median": median},
                }
            )
        consulted = total(oin, "consultations")
        if consulted >= CONSULT_ONLY_MINIMUM and total(oin, "registrations") == 0:
            flags.append(
                org(oin)
                | {
                    "kind": "consultations_without_registrations",
                    "figures": {"consultations": consulted, "registrations": 0},
                }
            )
    for oin in sorted(evaluations):
        burst = _evaluation_burst(
            evaluations[oin], per_threshold[oin], burst_elements, counts_source.get("threshold", 1)
        )
        if burst is not None:
            flags.append(org(oin) | {"kind": "evaluation_burst", "figures": burst})
    for oin in sorted(quick):
        withdrawn = sum(quick[oin].values())
        if withdrawn >= quick_minimum:
            flags.append(
                org(oin)
                | {
                    "kind": "quick_withdrawals",
                    "figures": {
                        "signals": withdrawn,
                        "within_minutes": quick_minutes,
                        **dict(sorted(quick[oin].items())),
                    },
                }
            )
    for oin in sorted(lookups):
        began, counted = lookups[oin].busiest()
        if counted > lookup_burst:
            flags.append(
                org(oin)
                | {
                    "kind": "lookup_burst",
                    "figures": {
                        "from": audit_log.rfc3339(began),
                        "lookups": counted,
                        "limit": lookup_burst,
                    },
                }
            )
    for oin in sorted(limited):
        flags.append(
            org(oin)
            | {
                "kind": "rate_limited",
                "figures": {
                    "refusals": sum(limited[oin].values()),
                    "endpoints": ", ".join(sorted(limited[oin])),
                },
            }
        )

    return {
        "report": "privacy",
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "region": region,
        "generated_at": audit_log.rfc3339(now),
        "checkpoint": checkpoint,
        "months": months,
        "events": [
            org(oin) | {"action": action, "count": count}
            for (oin, action), count in sorted(
                events.items(), key=lambda item: (item[0][0] or "", item[0][1])
            )
        ],
        "consultations": [
            org(oin) | {"total": sum(counts.values()), "purposes": dict(sorted(counts.items()))}
            for oin, counts in sorted(purposes.items())
        ],
        "refusals": [
            {"reason": reason, "endpoint": endpoint, "count": count}
            for (reason, endpoint), count in sorted(refusals.items())
        ],
        "uninformed": {
            "days": information_days,
            "organisations": [
                org(oin) | {"count": count} for oin, count in sorted(uninformed.items())
            ],
        },
        "volumes": [
            org(oin)
            | {
                "month": month,
                "registrations": volumes[oin][month]["registrations"],
                "consultations": volumes[oin][month]["consultations"],
                # None: the key holders' counts were not read (evaluation_counts).
                "evaluations": (
                    volumes[oin][month]["evaluations"] if counts_source["available"] else None
                ),
            }
            for oin in sorted(volumes)
            for month in months
        ],
        "flags": flags,
        "evaluation_counts": counts_source,
        # Notifications whose delivery (webhook, e-mail) was given up in the period
        # (delivery.dead entries; docs/delivery.md): they were never pushed, only pollable.
        "dead_letters": {"total": sum(dead.values()), "channels": dict(sorted(dead.items()))},
    }


def _reporting_categories() -> list[str]:
    return [c.value for c in Category if c.reports]


def monitor_report(
    db: Database,
    clock: Clock,
    caller: Caller | None,
    start: dt.date,
    end: dt.date,
    region: str | None = None,
    *,
    log: TransparencyLog | None = None,
    granularity: str = "auto",
    grouping: str = "auto",
) -> dict[str, Any]:
    """The municipal monitor on ``[start, end)`` for ``region`` (None: every region, or
    the officer's own); ``log`` ties the report to a signed checkpoint. ``granularity``
    (month, quarter, year) and ``grouping`` (categories, groups) set the level of the
    tables; ``auto`` picks the finest at which most numbers can be shown
    (:func:`vir.reports.aggregation.choose`)."""
    scope = policy.NATIONAL if caller is None else policy.require_privacy_officer(caller)
    region = scope.report_region(region)
    check_period(start, end)
    require_known_region(db, region)
    if granularity not in ("auto", *GRANULARITIES):
        raise InputError("granularity", "month, quarter, year or auto")
    if grouping not in ("auto", *GROUPINGS):
        raise InputError("grouping", "categories, groups or auto")
    now = clock()
    checkpoint = checkpoint_of(log)
    size = None if checkpoint is None else int(checkpoint["tree_size"])
    months = months_of(start, end)
    categories = _reporting_categories()
    cells: dict[str, Counter[tuple[str, str]]] = {m: Counter() for m in MONITOR_MEASURES}
    with read_log(db) as session:
        orgs: dict[str, Organisation] = {
            str(o.oin): o
            for o in list_organisations(session)
            if region is None or o.region == region
        }
        acting: tuple[str, str | None] = ("", None)  # (moment, organisation) of the last act
        for entry in _entries(session, start, end, size):
            event = entry.event
            if event.organisation is not None and event.actor != "matching":
                acting = (event.occurred_at, event.organisation)
            if event.outcome != Outcome.SUCCESS:
                continue
            if event.action == Action.MATCH_CREATED:
                oin = acting[1] if acting[0] == event.occurred_at else None
                via = event.objects.get("via")
                measure = "household_matches" if via in _HOUSEHOLD_VIA else "person_matches"
            elif event.action == Action.SIGNAL_REGISTERED:
                oin, measure = event.organisation, "signals"
            elif event.action == Action.CONSULTATION_MADE:
                oin, measure = event.organisation, "consultations"
            else:
                continue
            found = orgs.get(oin) if oin is not None else None
            if found is None or not found.category.reports:
                continue
            cells[measure][(found.category.value, entry.month)] += 1
    with db.write() as session:
        audit_generation(session, caller, now, "monitor", start, end)

    level = choose(
        cells,
        categories,
        months,
        cast("Granularity | Literal['auto']", granularity),
        cast("Grouping | Literal['auto']", grouping),
    )
    measures = []
    for key, title in MONITOR_MEASURES.items():
        table = level.tables[key]
        measures.append(
            {
                "measure": key,
                "title": title,
                "rows": render_rows(
                    table, corner="categorie" if level.grouping == "categories" else "groep"
                ),
                "legend": legend(table),
                "suppressed": _share(len(table.suppressed()), len(table.positions())),
            }
        )
    return {
        "report": "monitor",
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "region": region,
        "generated_at": audit_log.rfc3339(now),
        "checkpoint": checkpoint,
        "months": months,
        "granularity": level.granularity,
        "grouping": level.grouping,
        "asked": {"granularity": granularity, "grouping": grouping},
        "suppressed": _share(level.hidden, level.numbers),
        "measures": measures,
    }


def _share(hidden: int, numbers: int) -> dict[str, Any]:
    """How many of a table's published numbers (cells and totals) are hidden."""
    return {
        "hidden": hidden,
        "numbers": numbers,
        "share": round(hidden / numbers, 3) if numbers else 0.0,
    }


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """What ``vir report verify`` found: ``ok`` when the report's tree (``size``, ``root``)
    is a prefix of the newest signed checkpoint's tree (``newest_size``, ``newest_root``)."""

    ok: bool
    size: int
    newest_size: int
    newest_root: bytes
    problem: str | None = None


def verify_checkpoint(log: TransparencyLog, size: int, root_hash: str) -> CheckpointCheck:
    """Check that the tree a report was computed from (``size`` entries, base64
    ``root_hash``) is consistent with the current log: an RFC 9162 consistency proof from
    ``size`` to the newest checkpoint (signed now if the log has grown), checked here
    against the report's root. A report whose root the log cannot prove was computed
    from a log that has since been rewritten, or was altered itself."""
    try:
        root = base64.b64decode(root_hash.encode("ascii"), validate=True)
    except (UnicodeEncodeError, ValueError):
        raise InputError("root-hash", "the root hash as base64") from None
    if len(root) != merkle.HASH_SIZE:
        raise InputError("root-hash", f"a root hash is {merkle.HASH_SIZE} bytes")
    newest = log.checkpoint()
    if not 1 <= size <= newest.size:
        return CheckpointCheck(
            False, size, newest.size, newest.root_hash, "the log has no tree of that size"
        )
    signed, proof = log.consistency(size, newest.size)
    if not merkle.verify_consistency(size, signed.size, root, signed.root_hash, proof):
        return CheckpointCheck(
            False,
            size,
            signed.size,
            signed.root_hash,
            "the report's root hash is not a prefix of the current log",
        )
    return CheckpointCheck(True, size, signed.size, signed.root_hash)
