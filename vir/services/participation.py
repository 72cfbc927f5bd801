"""The participation monitor (issue 17, part 6): which organisations take part in the
index, and how quickly matched organisations make contact.

Like the other reports (:mod:`vir.services.reports`) it reads the audit log and nothing
else, up to a signed checkpoint that it states, streaming the entries in batches; making
it is audited (``report.generated``, report ``participation``). What it must remember of
each match (who joined when, and the first contact) goes into a temporary SQLite file,
deleted when the report is made, so its memory does not grow with the matches.
``caller`` None is the operator at the CLI.

Who may run it: a municipality's privacy officer or follow-up officer, for the
municipality's region (asking for another region is refused, ``OutsideRegion``); the
national privacy officer and the operator, for any region or (``region`` None) every
region.

The figures, over ``[start, end)`` (UTC days):

* **Signals**: the organisation's ``signal.registered`` entries in the period.
* **Matches**: the matches the organisation took part in: a ``match.member_added`` of
  one of its signals in the period (a new match adds every member). One per
  organisation and match, from the first time it joined in the period.
* **Contact**: the first ``match.follow_up_recorded`` ``contact_made`` for that match
  that names the organisation as in contact (it recorded it, or another participant
  recorded it with the organisation: :func:`vir.domain.followup.in_contact`, the
  follow-up officer's definition), read up to the checkpoint (so also after the
  period). Each match of
  the organisation has exactly one outcome: contact *within* ``days`` days of joining
  (at most ``days`` times 24 hours later), contact *later*, *no contact* while the term has
  passed, or *pending* (no contact yet, the term still running when the report is made).
* **Median days to contact**: over the organisation's matches with a contact, the
  median of the days (one decimal) from joining to that first contact.

Per organisation (every reporting organisation of the region, also one that did
nothing): those figures, compared with its **peers** — the other organisations of the
same category in the same region: the peers' median of signals and of matches, and the
median days to contact over all the peers' contacts. An organisation is flagged
(``reports_far_less``) when it has at least :data:`MIN_PEERS` peers and its signals
are fewer than :data:`FAR_LESS_SHARE` (a quarter) of its peers' median. These figures
name organisations and are not suppressed: they describe the organisations' use of the
index, as the privacy report does, for the officers of their own region.

Per region (always every region with reporting organisations, for comparison): tables
of counts suppressed by :func:`vir.reports.suppression.suppress` and published as
rendered by :func:`vir.reports.suppression.render_rows` — signals by group of
categories (added up), and the region's matches by outcome (the four outcomes jointly,
so that no complement is left unprotected, as ``vir.reports.suppression`` asks of a
rate). Each match counts once for the region, however many of its organisations took
part, with the outcome of those participants together: within when each had contact
within its term, later when each had contact but one later, none when one without
contact passed its term, else pending (as the follow-up officer's list, where a match
is done when each of the region's participants has contact). The share with contact
within the term is derived only from published counts
(:func:`vir.reports.suppression.ratio`); the region's median days to contact (per
match with contact, the longest of its participants' days to contact) is shown only
where the counts of matches with a contact are published and together at least the
threshold.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.domain import followup, policy
from vir.domain.clock import Clock
from vir.domain.coordination import FollowUp
from vir.domain.errors import NotPermitted
from vir.domain.followup import DEFAULT_DAYS, MAX_DAYS, check_days
from vir.domain.organisations import Organisation, Role
from vir.domain.progress import Progress
from vir.reports.aggregation import CATEGORY_GROUPS
from vir.reports.suppression import SuppressedTable, legend, ratio, render_rows, suppress
from vir.services.followup import period
from vir.services.identity import Caller
from vir.services.reports import audit_generation, check_period, checkpoint_of, read_log
from vir.store import audit_log
from vir.store.db import Database
from vir.store.organisations import list_organisations
from vir.store.tables import AuditEntryRow

if TYPE_CHECKING:
    from vir.services.transparency import TransparencyLog

__all__ = [
    "DEFAULT_DAYS",
    "FAR_LESS_SHARE",
    "MAX_DAYS",
    "MIN_PEERS",
    "OUTCOMES",
    "Progress",
    "check_days",
    "participation_report",
    "participation_scope",
]

# Flag: signals below this share of the peers' median, with at least MIN_PEERS peers.
FAR_LESS_SHARE: Final = Fraction(1, 4)
MIN_PEERS: Final = 3
# A match's outcome for one organisation, in the order the tables show them.
OUTCOMES: Final = ("within", "later", "none", "pending")
_BATCH: Final = 5000
_READ: Final = (
    Action.SIGNAL_REGISTERED.value,
    Action.MATCH_MEMBER_ADDED.value,
    Action.MATCH_FOLLOW_UP_RECORDED.value,
)
_DAY_SECONDS: Final = 86400
# Per match of some organisations (``_Parts._by_match``).
_BY_MATCH: Final = (
    "SELECT match, count(*) - count(took) AS waiting, max(took) AS slowest,"
    " max(took IS NULL AND ? - joined > ?) AS passed FROM part"
)
_MICROS: Final = 1_000_000
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def participation_scope(caller: Caller) -> policy.Scope:
    """Whose part a caller may see: a municipality's follow-up officer their region's, a
    privacy officer theirs (the national one every region's); anyone else NotPermitted."""
    if caller.role is Role.FOLLOW_UP_OFFICER:
        return policy.Scope(policy.require_follow_up_officer(caller))
    try:
        return policy.require_privacy_officer(caller)
    except NotPermitted:
        raise NotPermitted("only a privacy officer or a follow-up officer may do this") from None


class _Parts:
    """Each organisation's part in each match of the period: when it joined and how long
    it took to its first contact (microseconds), kept in a temporary SQLite database on
    disk, so that the report's memory stays flat however many matches the period has.
    The medians are read from it in order; nothing but counts comes back whole."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="vir-participation-")
        self._db = sqlite3.connect(Path(self._folder.name) / "parts.db", isolation_level=None)
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE part (oin TEXT NOT NULL, match TEXT NOT NULL,"
            " joined INTEGER NOT NULL, took INTEGER, PRIMARY KEY (oin, match)) WITHOUT ROWID;"
        )
        self._db.execute("BEGIN")  # one transaction for the collection: no commit per row

    def __enter__(self) -> _Parts:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._db.close()
        self._folder.cleanup()

    def join(self, oin: str, match: str, moment: dt.datetime) -> None:
        """The organisation's first joining of the match counts."""
        self._db.execute(
            "INSERT OR IGNORE INTO part VALUES (?, ?, ?, NULL)", (oin, match, _micros(moment))
        )

    def contact(self, oin: str, match: str, moment: dt.datetime) -> None:
        """The organisation's first contact in a match it joined (else nothing): one it
        recorded or one recorded with it."""
        self._db.execute(
            "UPDATE part SET took = ? - joined WHERE oin = ? AND match = ? AND took IS NULL",
            (_micros(moment), oin, match),
        )

    def done(self) -> None:
        self._db.execute("COMMIT")
        self._db.execute("CREATE INDEX part_took ON part (oin, took) WHERE took IS NOT NULL")

    def outcomes(self, oin: str, days: int, now: dt.datetime) -> _Outcomes:
        """An organisation's matches by outcome (see the module docstring)."""
        term = days * _DAY_SECONDS * _MICROS
        row = self._db.execute(
            "SELECT coalesce(sum(took <= :term), 0), coalesce(sum(took > :term), 0),"
            " coalesce(sum(took IS NULL AND :now - joined > :term), 0),"
            " coalesce(sum(took IS NULL AND :now - joined <= :term), 0)"
            " FROM part WHERE oin = :oin",
            {"term": term, "now": _micros(now), "oin": oin},
        ).fetchone()
        return _Outcomes(dict(zip(OUTCOMES, (int(n) for n in row), strict=True)))

    def median_days(self, oins: Collection[str]) -> float | None:
        """The median of the days to first contact over the matches of ``oins`` (one
        decimal, as ``statistics.median`` of them all would give); None of none."""
        if not oins:
            return None
        within = f"oin IN ({', '.join('?' * len(oins))}) AND took IS NOT NULL"
        return self._median(f"SELECT took FROM part WHERE {within}", [*oins])  # noqa: S608 (placeholders only)

    def region_outcomes(self, oins: Collection[str], days: int, now: dt.datetime) -> _Outcomes:
        """The matches of a region's organisations ``oins`` by outcome, each match once
        however many of them took part in it: its outcome for the region is that of its
        region's participants together (see the module docstring)."""
        if not oins:
            return _Outcomes(dict.fromkeys(OUTCOMES, 0))
        term = days * _DAY_SECONDS * _MICROS
        counts = (
            "SELECT coalesce(sum(waiting = 0 AND slowest <= ?), 0),"
            " coalesce(sum(waiting = 0 AND slowest > ?), 0),"
            " coalesce(sum(waiting > 0 AND passed), 0),"
            " coalesce(sum(waiting > 0 AND NOT passed), 0) FROM "
        )
        row = self._db.execute(
            f"{counts}({self._by_match(len(oins))})",
            [term, term, _micros(now), term, *oins],
        ).fetchone()
        return _Outcomes(dict(zip(OUTCOMES, (int(n) for n in row), strict=True)))

    def region_median_days(self, oins: Collection[str]) -> float | None:
        """The median, over the region's matches where every participant of the region
        (``oins``) had contact, of the days until the last of them had it (each from its
        own joining); one decimal, None of none."""
        if not oins:
            return None
        by_match = self._by_match(len(oins))
        return self._median(
            f"SELECT slowest FROM ({by_match}) WHERE waiting = 0",  # noqa: S608 (placeholders only)
            [0, 0, *oins],
        )

    @staticmethod
    def _by_match(count: int) -> str:
        """Per match of ``count`` organisations (parameters: now, the term in
        microseconds, the OINs): how many of them are without contact (``waiting``),
        whether the term of one of those passed (``passed``), and the longest time to
        contact (``slowest``)."""
        places = ", ".join("?" * count)
        where = f"WHERE oin IN ({places}) GROUP BY match"
        return f"{_BY_MATCH} {where}"

    def _median(self, query: str, parameters: Sequence[object]) -> float | None:
        """The median (days, one decimal) of the one column of microseconds ``query``
        gives, read in order; None of none."""
        (count,) = self._db.execute(
            f"SELECT count(*) FROM ({query})",  # noqa: S608 (placeholders only)
            parameters,
        ).fetchone()
        if not count:
            return None
        middle = [
            took / _MICROS / _DAY_SECONDS
            for (took,) in self._db.execute(
                f"SELECT * FROM ({query}) ORDER BY 1 LIMIT ? OFFSET ?",  # noqa: S608
                [*parameters, 2 - count % 2, (count - 1) // 2],
            )
        ]
        median = middle[0] if count % 2 else (middle[0] + middle[1]) / 2
        return round(float(median), 1)


@dataclass
class _Figures:
    """What the log says of one organisation (its matches are in ``_Parts``)."""

    signals: int = 0


@dataclass(frozen=True, slots=True)
class _Outcomes:
    """One organisation's matches by outcome."""

    counts: Mapping[str, int]

    @property
    def matches(self) -> int:
        return sum(self.counts.values())


def _micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch: exact, as the timedeltas they stand for."""
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _moment(event: AuditEvent) -> dt.datetime:
    return dt.datetime.fromisoformat(event.occurred_at.replace("Z", "+00:00"))


def _query(low: str, size: int | None) -> Any:
    query = select(AuditEntryRow.seq, AuditEntryRow.body).where(
        AuditEntryRow.occurred_at >= low, AuditEntryRow.action.in_(_READ)
    )
    return query if size is None else query.where(AuditEntryRow.seq <= size)


def _read(
    session: Session, start: dt.date, size: int | None, progress: Progress | None
) -> Iterator[AuditEvent]:
    """The entries the monitor reads from ``start`` on, of the first ``size`` entries of
    the log (or all), in log order, in batches; ``progress`` told after every batch."""
    low = audit_log.rfc3339(dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC))
    total = 0
    if progress is not None:
        counted = select(func.count()).select_from(_query(low, size).subquery())
        total = int(session.execute(counted).scalar_one())
        progress(0, total)
    rows = session.execute(_query(low, size).order_by(AuditEntryRow.seq)).yield_per(_BATCH)
    for done, (_seq, body) in enumerate(rows, start=1):
        raw = body if isinstance(body, bytes) else str(body).encode("utf-8")
        yield AuditEvent.decode(raw)
        if progress is not None and (done % _BATCH == 0 or done == total):
            progress(done, total)


def _collect(
    events: Iterator[AuditEvent], oins: frozenset[str], high: str, parts: _Parts
) -> dict[str, _Figures]:
    """Signals and matches of the organisations ``oins`` before ``high``, and the first
    contact of each of their matches (whenever recorded), the matches into ``parts``."""
    figures: dict[str, _Figures] = {oin: _Figures() for oin in oins}
    for event in events:
        oin = event.organisation
        if oin is None or event.outcome != Outcome.SUCCESS:
            continue
        match_id = str(event.objects.get("match", ""))
        if event.action == Action.MATCH_FOLLOW_UP_RECORDED:
            if event.objects.get("event") == FollowUp.CONTACT_MADE.value:
                with_oin = str(event.objects.get("with", "-"))
                for party in followup.in_contact(oin, "" if with_oin == "-" else with_oin):
                    if party in figures:
                        parts.contact(party, match_id, _moment(event))
        elif oin not in figures or event.occurred_at >= high:
            continue
        elif event.action == Action.SIGNAL_REGISTERED:
            figures[oin].signals += 1
        elif event.action == Action.MATCH_MEMBER_ADDED:
            parts.join(oin, match_id, _moment(event))
    parts.done()
    return figures


def _median(values: Sequence[float | int]) -> float | None:
    """The median, one decimal; None of nothing."""
    return round(float(statistics.median(values)), 1) if values else None


def _organisation(
    org: Organisation,
    own: _Figures,
    mine: _Outcomes,
    peers: Mapping[str, tuple[_Figures, _Outcomes]],
    parts: _Parts,
) -> dict[str, Any]:
    peer_signals = [p.signals for p, _ in peers.values()]
    peer_median = _median(peer_signals)
    far_less = (
        len(peers) >= MIN_PEERS
        and peer_median is not None
        and Fraction(own.signals) < FAR_LESS_SHARE * Fraction(peer_median)
    )
    return {
        "oin": str(org.oin),
        "name": org.name,
        "region": org.region,
        "category": org.category.value,
        "signals": own.signals,
        "matches": mine.matches,
        **{f"contact_{key}": mine.counts[key] for key in OUTCOMES},
        "median_days": parts.median_days([str(org.oin)]),
        "peers": {
            "organisations": len(peers),
            "signals": peer_median,
            "matches": _median([o.matches for _, o in peers.values()]),
            "median_days": parts.median_days(list(peers)),
        },
        "reports_far_less": far_less,
    }


def _flag(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "oin": item["oin"],
        "name": item["name"],
        "kind": "reports_far_less",
        "figures": {
            "signals": item["signals"],
            "peer_median": item["peers"]["signals"],
            "peers": item["peers"]["organisations"],
            "category": item["category"],
            "share": str(FAR_LESS_SHARE),
        },
    }


def _region_rows(
    regions: Sequence[str],
    orgs: Mapping[str, Organisation],
    figures: Mapping[str, _Figures],
    parts: _Parts,
    days: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """The regional comparison: two suppressed tables and what may be derived from them.
    The matches are the region's, each once (not its organisations' added up)."""
    groups = list(dict.fromkeys(CATEGORY_GROUPS.values()))
    signals: Counter[tuple[str, str]] = Counter()
    matches: Counter[tuple[str, str]] = Counter()
    members: dict[str, list[str]] = defaultdict(list)
    for oin, org in orgs.items():
        signals[(org.region, CATEGORY_GROUPS[org.category])] += figures[oin].signals
        members[org.region].append(oin)
    for region in regions:
        for key, count in parts.region_outcomes(members[region], days, now).counts.items():
            matches[(region, key)] += count
    by_group = suppress(signals, regions, groups)
    by_outcome = suppress(matches, regions, OUTCOMES)
    return {
        "signals": _table(by_group, "regio"),
        "matches": _table(by_outcome, "regio"),
        "derived": [
            _derived(by_outcome, region, partial(parts.region_median_days, members[region]))
            for region in regions
        ],
    }


def _table(table: SuppressedTable, corner: str) -> dict[str, Any]:
    return {
        "rows": render_rows(table, corner=corner),
        "legend": legend(table),
        "suppressed": {"hidden": len(table.suppressed()), "numbers": len(table.positions())},
    }


def _derived(
    table: SuppressedTable, region: str, median_days: Callable[[], float | None]
) -> dict[str, Any]:
    """A region's share of matches with contact within the term (of those whose term
    passed or that had contact) and its median days to contact, from the published
    counts only: None where a count they need is hidden, or (the median) where fewer
    than the threshold of matches had contact."""
    within, later, none = (table.cell(region, key) for key in ("within", "later", "none"))
    share = None
    if isinstance(within, int) and isinstance(later, int) and isinstance(none, int):
        share = ratio(within, within + later + none)
    contacted = within + later if isinstance(within, int) and isinstance(later, int) else 0
    return {
        "region": region,
        "share_within": None if share is None else round(float(share), 3),
        "median_days": median_days() if contacted >= table.threshold else None,
    }


def participation_report(
    db: Database,
    clock: Clock,
    caller: Caller | None,
    start: dt.date,
    end: dt.date,
    region: str | None = None,
    *,
    days: int | None = None,
    log: TransparencyLog | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The participation monitor on ``[start, end)`` for ``region`` (None: every region,
    or the officer's own); contact counts as timely within ``days`` days (None: the
    region's follow-up period, ``vir region follow-up``; 14 for every region). ``log`` ties
    the report to a signed checkpoint; ``progress`` is told how far the reading is."""
    scope = policy.NATIONAL if caller is None else participation_scope(caller)
    region = scope.report_region(region)
    check_period(start, end)
    if days is None:
        days = DEFAULT_DAYS if region is None else period(db, region).days
    check_days(days)
    now = clock()
    checkpoint = checkpoint_of(log)
    size = None if checkpoint is None else int(checkpoint["tree_size"])
    high = audit_log.rfc3339(dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC))
    with _Parts() as parts:
        with read_log(db) as session:
            orgs = {str(o.oin): o for o in list_organisations(session) if o.category.reports}
            figures = _collect(_read(session, start, size, progress), frozenset(orgs), high, parts)
        with db.write() as session:
            audit_generation(session, caller, now, "participation", start, end)
        outcome = {oin: parts.outcomes(oin, days, now) for oin in orgs}
        shown = [oin for oin, org in orgs.items() if region is None or org.region == region]
        shown.sort(key=lambda oin: (orgs[oin].region, orgs[oin].category.value, orgs[oin].name))
        organisations = []
        for oin in shown:
            org = orgs[oin]
            peers = {
                other: (figures[other], outcome[other])
                for other, o in orgs.items()
                if other != oin and o.region == org.region and o.category is org.category
            }
            organisations.append(_organisation(org, figures[oin], outcome[oin], peers, parts))
        regions = sorted({o.region for o in orgs.values()})
        compared = _region_rows(regions, orgs, figures, parts, days, now) if regions else None
    return {
        "report": "participation",
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "region": region,
        "generated_at": audit_log.rfc3339(now),
        "checkpoint": checkpoint,
        "days": days,
        "rule": {"share": str(FAR_LESS_SHARE), "min_peers": MIN_PEERS},
        "organisations": organisations,
        "flags": [_flag(item) for item in organisations if item["reports_far_less"]],
        "regions": compared,
    }
