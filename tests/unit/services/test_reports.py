"""The privacy officer's report and the municipal monitor, built from months of activity."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from support.instore import ORGS
from support.world import MUNICIPALITY, VEILIG_THUIS, World, person, world

from vir.audit.chain import Outcome
from vir.audit.checkpoint import Checkpoint, SignedNote, parse_verifier_key, verify_note
from vir.crypto.signing import CheckpointSigner, ed25519_verify
from vir.domain.errors import InputError, NotFound, NotPermitted, OutsideRegion
from vir.domain.ratelimit import Limit, LimitKind
from vir.domain.signals import WithdrawalReason
from vir.reports.officer import monitor_csv, monitor_pdf, privacy_csv, privacy_pdf
from vir.services.consultations import ConsultationService, Purpose
from vir.services.evaluation_counts import Counted, CountsUnavailable
from vir.services.reports import monitor_report, privacy_report, verify_checkpoint
from vir.services.transparency import Signed, TransparencyLog
from vir.store import audit_log
from vir.store.ratelimits import RateLimits
from vir.store.tables import AuditEntryRow

START, END = dt.date(2026, 8, 1), dt.date(2026, 12, 1)
MONTHS = ["2026-08", "2026-09", "2026-10", "2026-11"]
# The monitor at its finest level: what the data is, before any aggregation.
BY_MONTH: dict[str, str] = {"granularity": "month", "grouping": "categories"}
CREATED = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _append(w: World, action: str, at: dt.datetime, oin: str, **fields: Any) -> None:
    with w.store.db.write() as session:
        audit_log.append(
            session,
            audit_log.new_event(
                action, fields.pop("outcome", Outcome.SUCCESS), at, organisation=oin, **fields
            ),
        )


@pytest.fixture
def active(tmp_path: Path) -> Iterator[World]:
    """Four months of activity, each anomaly built on purpose.

    School A (0): 1 signal a month, then 12 in November (a surge).
    Huisarts B (1): 10 signals every month (steady, no flag).
    Jeugdzorg C (2): 1100 evaluated elements within 45 minutes (a burst).
    Politie D (3): 1100 elements spread over 90 minutes (no burst).
    Veilig Thuis: 6 consultations and no signal of its own.
    """
    with world(tmp_path) as w:
        for month in range(8, 12):
            w.clock.to(dt.date(2026, month, 3))
            for n in range(12 if month == 11 else 1):
                w.register(0, f"a{month}-{n}")
            for n in range(10):
                w.register(1, f"b{month}-{n}")
        # A person match (A and B on one child) and a household match (shared parent).
        w.clock.to(dt.date(2026, 9, 10))
        w.register(0, "shared-child")
        w.register(1, "shared-child")
        w.register(2, "sib-1", parents=("mother",))
        w.register(3, "sib-2", parents=("mother",))
        consultations = ConsultationService(
            w.store.db, w.clock, RateLimits({LimitKind.CONSULTATION: Limit(1.0, 100)})
        )
        w.clock.to(dt.date(2026, 10, 20))
        for n in range(4):
            consultations.consult(w.veilig_thuis, person(f"b10-{n}"), Purpose.TRIAGE)
        for n in range(2):
            consultations.consult(w.veilig_thuis, person(f"x{n}"), Purpose.SAFETY_ASSESSMENT)
        at = dt.datetime(2026, 10, 5, 10, 0, tzinfo=dt.UTC)
        _append(w, "oprf.evaluate", at, str(ORGS[2].oin), objects={"elements": 600})
        _append(
            w,
            "oprf.evaluate",
            at + dt.timedelta(minutes=45),
            str(ORGS[2].oin),
            objects={"elements": 500},
        )
        _append(w, "oprf.evaluate", at, str(ORGS[3].oin), objects={"elements": 600})
        _append(
            w,
            "oprf.evaluate",
            at + dt.timedelta(minutes=90),
            str(ORGS[3].oin),
            objects={"elements": 500},
        )
        for _ in range(2):
            _append(
                w,
                "request.refused",
                at,
                str(ORGS[3].oin),
                outcome=Outcome.REFUSED,
                reason="not_permitted",
                objects={"endpoint": "/v1/consultations"},
            )
        # Outside the period: never counted.
        _append(
            w,
            "oprf.evaluate",
            dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
            str(ORGS[0].oin),
            objects={"elements": 5000},
        )
        w.clock.now = CREATED
        yield w


def _nothing_evaluated(_start: dt.date, _end: dt.date) -> Counted:
    """A key holder that answers, and evaluated nothing in the period (the fixture's
    evaluations are the index's own entries, from before the key holder was separate)."""
    return Counted((), threshold=1, keyholders=1)


def _count(report: dict[str, Any], oin: str | None, action: str) -> int:
    return sum(e["count"] for e in report["events"] if e["oin"] == oin and e["action"] == action)


def test_privacy_report_counts_events_consultations_refusals_and_volumes(
    active: World,
) -> None:
    report = privacy_report(
        active.store.db,
        active.clock,
        active.officer,
        START,
        END,
        evaluation_counts=_nothing_evaluated,
    )
    a, b, vt = str(ORGS[0].oin), str(ORGS[1].oin), str(VEILIG_THUIS.oin)
    assert report["months"] == MONTHS
    assert _count(report, a, "signal.registered") == 3 + 12 + 1
    assert _count(report, b, "signal.registered") == 40 + 1
    assert _count(report, vt, "consultation.made") == 6
    assert _count(report, None, "match.created") == 2
    names = {e["oin"]: e["name"] for e in report["events"]}
    assert names[a] == "School A" and names[vt] == "Veilig Thuis T"
    assert report["consultations"] == [
        {
            "oin": vt,
            "name": "Veilig Thuis T",
            "total": 6,
            "purposes": {Purpose.SAFETY_ASSESSMENT.value: 2, Purpose.TRIAGE.value: 4},
        }
    ]
    assert report["refusals"] == [
        {"reason": "not_permitted", "endpoint": "/v1/consultations", "count": 2}
    ]
    volumes = {(v["oin"], v["month"]): v for v in report["volumes"]}
    assert volumes[(a, "2026-11")]["registrations"] == 12
    assert volumes[(b, "2026-09")]["registrations"] == 11
    assert volumes[(vt, "2026-10")]["consultations"] == 6
    assert volumes[(str(ORGS[2].oin), "2026-10")]["evaluations"] == 1100
    # Uninformed: registered more than 30 days before the report, never confirmed.
    uninformed = {u["oin"]: u["count"] for u in report["uninformed"]["organisations"]}
    assert uninformed[a] == 4 and uninformed[b] == 31
    assert str(ORGS[2].oin) in uninformed


def test_privacy_report_flags_exactly_the_constructed_anomalies(active: World) -> None:
    report = privacy_report(active.store.db, active.clock, None, START, END)
    flags = {(f["oin"], f["kind"]): f["figures"] for f in report["flags"]}
    assert set(flags) == {
        (str(ORGS[0].oin), "registration_surge"),
        (str(VEILIG_THUIS.oin), "consultations_without_registrations"),
        (str(ORGS[2].oin), "evaluation_burst"),
    }
    assert flags[(str(ORGS[0].oin), "registration_surge")] == {
        "month": "2026-11",
        "registrations": 12,
        "median": 1.5,  # of 1, 2, 1, 12
    }
    assert flags[(str(VEILIG_THUIS.oin), "consultations_without_registrations")] == {
        "consultations": 6,
        "registrations": 0,
    }
    burst = flags[(str(ORGS[2].oin), "evaluation_burst")]
    assert burst["elements"] == 1100 and burst["limit"] == 1000
    assert burst["counted"] == "at_least"
    # A lower limit also catches the spread-out organisation's busiest hour.
    lower = privacy_report(active.store.db, active.clock, None, START, END, burst_elements=599)
    assert (str(ORGS[3].oin), "evaluation_burst") in {(f["oin"], f["kind"]) for f in lower["flags"]}


def test_generating_a_report_is_audited_and_needs_a_privacy_officer(active: World) -> None:
    before = len(active.audit())
    privacy_report(active.store.db, active.clock, active.officer, START, END)
    monitor_report(active.store.db, active.clock, None, START, END)
    events = active.audit()[before:]
    assert [(e.action, e.objects["report"]) for e in events] == [
        ("report.generated", "privacy"),
        ("report.generated", "monitor"),
    ]
    assert events[0].organisation == str(MUNICIPALITY.oin) and events[1].actor == "admin"
    with pytest.raises(NotPermitted):
        privacy_report(active.store.db, active.clock, active.caller(0), START, END)
    with pytest.raises(NotPermitted):
        monitor_report(active.store.db, active.clock, active.veilig_thuis, START, END)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (dt.date(2026, 5, 1), dt.date(2026, 5, 1), "from"),
        (dt.date(2026, 5, 2), dt.date(2026, 5, 1), "from"),
        (dt.date(2023, 1, 1), dt.date(2026, 5, 1), "to"),
    ],
)
def test_a_bad_period_is_refused(tmp_path: Path, start: dt.date, end: dt.date, field: str) -> None:
    with world(tmp_path) as w:
        for report in (privacy_report, monitor_report):
            with pytest.raises(InputError) as caught:
                report(w.store.db, w.clock, None, start, end)
            assert caught.value.field == field


def test_monitor_names_no_organisation_and_hides_small_counts(active: World) -> None:
    report = monitor_report(active.store.db, active.clock, active.officer, START, END, **BY_MONTH)
    text = json.dumps(report, ensure_ascii=False)
    for org in [*ORGS, VEILIG_THUIS, MUNICIPALITY]:
        assert str(org.oin) not in text and org.name not in text
    tables = {m["measure"]: m["rows"] for m in report["measures"]}
    assert set(tables) == {"signals", "person_matches", "household_matches", "consultations"}
    for rows in tables.values():
        assert rows[0] == ["categorie", *MONTHS, "totaal"]
        for line in rows[1:]:
            for cell in line[1:]:
                assert cell in ("<10", "x") or int(cell) >= 10
    signals = {line[0]: line[1:] for line in tables["signals"][1:]}
    # Huisarts B (gp): 10, 11, 10, 10; School A (education): 1, 2, 1, 12.
    assert signals["gp"][-1] == "41"
    assert signals["education"][0] == "<10"
    assert signals["totaal"][-1] == "59"  # 16 + 41 + 1 + 1
    assert all(cell == "<10" for cell in signals["police"])
    assert tables["person_matches"][-1][-1] == "<10"  # a single match
    csv_text = monitor_csv(report)
    assert "School A" not in csv_text and str(ORGS[0].oin) not in csv_text


def test_monitor_for_another_region_is_empty(active: World) -> None:
    report = monitor_report(
        active.store.db, active.clock, None, START, END, region="Utrecht", **BY_MONTH
    )
    for measure in report["measures"]:
        assert all(cell == "<10" for line in measure["rows"][1:] for cell in line[1:])
    mine = monitor_report(
        active.store.db, active.clock, None, START, END, region="Rotterdam", **BY_MONTH
    )
    assert mine["measures"][0]["rows"][-1][-1] == "59"  # 16 + 41 + 1 + 1


def _pdf_text(pdf: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    images = sum(len(page.images) for page in reader.pages)
    return text, images


def test_reports_render_to_csv_and_dutch_pdf(active: World) -> None:
    privacy = privacy_report(active.store.db, active.clock, active.officer, START, END)
    rows = list(csv.DictReader(io.StringIO(privacy_csv(privacy, "data"))))
    sections = {row["section"] for row in rows}
    assert {"events", "consultations", "refusals", "uninformed", "volumes", "flags"} <= sections
    dutch = privacy_csv(privacy)
    assert dutch.startswith("\ufeffOnderdeel;OIN;Organisatie;")
    parts = {row["Onderdeel"] for row in csv.DictReader(io.StringIO(dutch[1:]), delimiter=";")}
    assert {"Gebeurtenissen", "Raadplegingen per doel", "Opvallend patroon"} <= parts
    text, images = _pdf_text(privacy_pdf(privacy, CREATED))
    assert "Veilig Thuis T: 6 raadplegingen zonder eigen registraties in de periode" in text
    for heading in (
        "Opvallende patronen",
        "Volumes per maand",
        "Raadplegingen per doel",
        "Geweigerde verzoeken",
        "Informatieplicht niet bevestigd",
    ):
        assert heading in text
    assert "School A" in text
    # Column headers fit their columns: no word broken over two lines.
    assert "Organisatie Maand Registraties Raadplegingen Pseudonimiseringen" in text
    assert images >= 1

    monitor = monitor_report(active.store.db, active.clock, active.officer, START, END, **BY_MONTH)
    text, _ = _pdf_text(monitor_pdf(monitor, CREATED))
    assert "Geregistreerde signalen" in text and "<10" in text
    # Categories by their Dutch names, months as "aug" over "2026", no word broken.
    words = set(text.split())
    assert {"Categorie", "Totaal", "Jeugdhulp", "Verslavingszorg", "Gehandicaptenzorg"} <= words
    assert {"Kinderbescherming", "Spoedeisende", "Wmo-aanbieders", "aug", "nov", "2026"} <= words
    assert "youth_care" not in text and "2026-08" not in text
    assert "minder dan 10" in text and "geheim" in text
    assert "School A" not in text and str(ORGS[0].oin) not in text


def test_probe_flags_catch_quick_withdrawals_lookup_bursts_and_rate_limits(
    tmp_path: Path,
) -> None:
    """Register-then-withdraw within minutes (from three on), more than ten privacy-officer
    lookups within a minute, and any refusal by a rate limit; nothing short of them."""
    with world(tmp_path) as w:
        start = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)

        def probe(org: int, n: int, reason: WithdrawalReason, after: dt.timedelta) -> None:
            w.clock.now = start
            w.register(org, f"p{org}-{n}")
            w.clock.now = start + after
            w.signals.withdraw(w.caller(org), f"p{org}-{n}-{org}", reason)

        quick, slow = dt.timedelta(minutes=4), dt.timedelta(minutes=11)
        probe(0, 0, WithdrawalReason.UNJUSTIFIED, quick)
        probe(0, 1, WithdrawalReason.UNJUSTIFIED, quick)
        probe(0, 2, WithdrawalReason.RISK_ENDED, dt.timedelta(minutes=10))
        for n in range(3):
            probe(1, n, WithdrawalReason.UNJUSTIFIED, slow)  # not within ten minutes
        for n in range(2):
            probe(2, n, WithdrawalReason.UNJUSTIFIED, quick)  # two: not a pattern yet

        def lookups(at: dt.datetime, count: int) -> None:
            for n in range(count):
                w.clock.now = at + dt.timedelta(seconds=5 * n)
                with pytest.raises(NotFound):
                    w.privacy.access(w.officer, person(f"nobody-{at.hour}-{n}"))

        lookups(start.replace(hour=12), 10)  # ten within a minute: allowed
        lookups(start.replace(hour=14), 11)
        for count in (5, 2):
            _append(
                w,
                "request.refused",
                start,
                str(ORGS[3].oin),
                outcome=Outcome.REFUSED,
                reason="rate_limited",
                objects={"endpoint": "POST /v1/oprf/evaluate", "count": count},
            )
        w.clock.now = CREATED
        report = privacy_report(
            w.store.db, w.clock, None, dt.date(2026, 11, 1), dt.date(2026, 12, 1)
        )
    flags = {(f["oin"], f["kind"]): f["figures"] for f in report["flags"]}
    assert set(flags) == {
        (str(ORGS[0].oin), "quick_withdrawals"),
        (str(MUNICIPALITY.oin), "lookup_burst"),
        (str(ORGS[3].oin), "rate_limited"),
    }
    assert flags[(str(ORGS[0].oin), "quick_withdrawals")] == {
        "signals": 3,
        "within_minutes": 10,
        "risk_ended": 1,
        "unjustified": 2,
    }
    assert flags[(str(MUNICIPALITY.oin), "lookup_burst")] == {
        "from": "2026-11-02T14:00:00.000000Z",
        "lookups": 11,
        "limit": 10,
    }
    assert flags[(str(ORGS[3].oin), "rate_limited")] == {
        "refusals": 7,
        "endpoints": "POST /v1/oprf/evaluate",
    }
    # An entry stands for its count of refusals, in the events and the refusals alike.
    assert _count(report, str(ORGS[3].oin), "request.refused") == 7
    assert report["refusals"] == [
        {"reason": "rate_limited", "endpoint": "POST /v1/oprf/evaluate", "count": 7}
    ]
    pdf = privacy_pdf(report, CREATED)
    text = " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages
    )
    for title in ("kort na registratie ingetrokken", "binnen één minuut", "wegens de limiet"):
        assert title in text


SIGNER = CheckpointSigner.from_seed(hashlib.sha256(b"report test").digest(), "test/audit")


class _At:
    """A transparency log whose ``checkpoint`` is one signed earlier: the report must count
    only the entries inside it, even when the log has grown since."""

    def __init__(self, log: TransparencyLog, signed: Signed) -> None:
        self._signed = signed
        self.verifier_key = log.verifier_key

    def checkpoint(self) -> Signed:
        return self._signed


def test_a_report_states_the_signed_checkpoint_it_was_computed_from(active: World) -> None:
    log = TransparencyLog(active.store.db, SIGNER, active.clock)
    report = privacy_report(active.store.db, active.clock, active.officer, START, END, log=log)
    checkpoint = report["checkpoint"]
    with active.store.db.read() as session:
        entries = session.scalar(select(func.count()).select_from(AuditEntryRow))
    assert checkpoint["tree_size"] == entries - 1  # all but the report's own entry
    note = SignedNote.parse(checkpoint["note"].encode("utf-8"))
    name, key = parse_verifier_key(checkpoint["verifier_key"])
    assert verify_note(note, name, key, ed25519_verify)
    body = Checkpoint.parse_body(note.text)
    assert (body.origin, body.size) == (checkpoint["origin"], checkpoint["tree_size"])
    assert base64.b64encode(body.root_hash).decode() == checkpoint["root_hash"]
    assert checkpoint["key_id"] == SIGNER.key_hash.hex()
    assert checkpoint["verify"] == (
        f"vir report verify --tree-size {body.size} --root-hash {checkpoint['root_hash']}"
    )
    monitor = monitor_report(active.store.db, active.clock, active.officer, START, END, log=log)
    assert monitor["checkpoint"]["tree_size"] > body.size  # the first report's entry since
    assert json.loads(json.dumps(report)) == report


def test_entries_after_the_checkpoint_are_not_counted(active: World) -> None:
    log = TransparencyLog(active.store.db, SIGNER, active.clock)
    signed = log.checkpoint()
    a = str(ORGS[0].oin)
    _append(
        w=active, action="signal.registered", at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), oin=a
    )
    before = privacy_report(
        active.store.db,
        active.clock,
        active.officer,
        START,
        END,
        log=_At(log, signed),  # type: ignore[arg-type]
    )
    after = privacy_report(active.store.db, active.clock, active.officer, START, END, log=log)
    assert _count(after, a, "signal.registered") == _count(before, a, "signal.registered") + 1
    assert before["checkpoint"]["tree_size"] == signed.size


def test_verify_checkpoint_proves_the_report_is_a_prefix_of_the_log(active: World) -> None:
    log = TransparencyLog(active.store.db, SIGNER, active.clock)
    report = privacy_report(active.store.db, active.clock, active.officer, START, END, log=log)
    size, root = report["checkpoint"]["tree_size"], report["checkpoint"]["root_hash"]
    check = verify_checkpoint(log, size, root)  # the log has grown since: a real proof
    assert check.ok and check.newest_size > size
    wrong = base64.b64encode(bytes(32)).decode()
    assert not verify_checkpoint(log, size, wrong).ok
    assert not verify_checkpoint(log, 10**6, root).ok
    with pytest.raises(InputError):
        verify_checkpoint(log, size, "not base64!")


def test_monitor_auto_aggregates_until_most_numbers_show(active: World) -> None:
    fine = monitor_report(active.store.db, active.clock, None, START, END, **BY_MONTH)
    auto = monitor_report(active.store.db, active.clock, None, START, END)
    assert auto["suppressed"]["share"] < fine["suppressed"]["share"]
    assert (auto["granularity"], auto["grouping"]) != ("month", "categories")
    assert auto["asked"] == {"granularity": "auto", "grouping": "auto"}
    for measure in auto["measures"]:
        share = measure["suppressed"]
        cells = [c for line in measure["rows"][1:] for c in line[1:]]
        assert share["numbers"] == len(cells)
        assert share["hidden"] == sum(c in ("<10", "x") for c in cells)
    # Aggregation adds up before suppressing: the grand total is the same wherever shown.
    assert auto["measures"][0]["rows"][-1][-1] == fine["measures"][0]["rows"][-1][-1] == "59"
    by_year = monitor_report(
        active.store.db, active.clock, None, START, END, granularity="year", grouping="groups"
    )
    assert by_year["measures"][0]["rows"][0] == ["groep", "2026", "totaal"]
    with pytest.raises(InputError) as caught:
        monitor_report(active.store.db, active.clock, None, START, END, granularity="week")
    assert caught.value.field == "granularity"


def test_a_region_no_organisation_is_in_is_refused_naming_the_field(active: World) -> None:
    db, clock = active.store.db, active.clock
    for report in (privacy_report, monitor_report):
        with pytest.raises(InputError) as caught:
            report(db, clock, None, START, END, region="Roterdam")
        assert caught.value.field == "region"
        assert "Rotterdam, Utrecht" in caught.value.detail  # the regions there are
    # A region's officer asking for another region is still refused as outside it.
    with pytest.raises(OutsideRegion):
        privacy_report(db, clock, active.officer, START, END, region="Roterdam")


def test_without_a_key_holder_the_report_says_the_counts_are_missing(active: World) -> None:
    report = privacy_report(active.store.db, active.clock, None, START, END)
    assert report["evaluation_counts"] == {
        "source": "keyholder",
        "available": False,
        "reason": "not_configured",
        "detail": "no key holder to ask for its counts (VIR_USAGE_KEYHOLDERS is empty)",
    }

    def unreachable(_start: dt.date, _end: dt.date) -> list[tuple[str, dt.datetime, int]]:
        raise CountsUnavailable("a key holder did not answer with its counts")

    report = privacy_report(
        active.store.db, active.clock, None, START, END, evaluation_counts=unreachable
    )
    assert report["evaluation_counts"]["reason"] == "unreachable"
    assert report["evaluation_counts"]["available"] is False


def test_unreadable_input_and_refused_input_are_one_refusal_reason(tmp_path: Path) -> None:
    at = dt.datetime(2026, 10, 5, 10, 0, tzinfo=dt.UTC)
    with world(tmp_path) as w:
        for reason, count in (("invalid_input", 3), ("input_error", 2)):
            _append(
                w,
                "request.refused",
                at,
                str(ORGS[0].oin),
                outcome=Outcome.REFUSED,
                reason=reason,
                objects={"endpoint": "GET /v1/audit/proof/inclusion", "count": count},
            )
        report = privacy_report(w.store.db, w.clock, None, START, END)
    assert report["refusals"] == [
        {"reason": "input_error", "endpoint": "GET /v1/audit/proof/inclusion", "count": 5}
    ]


def test_the_portals_refusals_are_listed_with_the_apis(tmp_path: Path) -> None:
    """A refused portal request or sign-in is one refusal each, under "portal" or
    "portal sign-in", with its reason; the CSV gives the reason's Dutch label."""
    at = dt.datetime(2026, 10, 5, 10, 0, tzinfo=dt.UTC)
    municipality = str(MUNICIPALITY.oin)
    with world(tmp_path) as w:
        for action, reason in (
            ("portal.request_refused", "csrf"),
            ("portal.request_refused", "csrf"),
            ("portal.request_refused", "forbidden"),
            ("portal.sign_in_refused", "id_token_signature"),
        ):
            _append(w, action, at, municipality, outcome=Outcome.REFUSED, reason=reason)
        report = privacy_report(w.store.db, w.clock, None, START, END)
        text = privacy_csv(report, "nl")
    assert report["refusals"] == [
        {"reason": "csrf", "endpoint": "portal", "count": 2},
        {"reason": "forbidden", "endpoint": "portal", "count": 1},
        {"reason": "id_token_signature", "endpoint": "portal sign-in", "count": 1},
    ]
    assert "Formulier verlopen of niet van het portaal" in text
    assert "Handtekening van het identiteitsbewijs klopt niet" in text
