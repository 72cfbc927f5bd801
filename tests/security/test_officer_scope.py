"""Privacy officers see their own region only (issue 12, part 7).

Two regions: Rotterdam (``ORGS``, officer ``World.officer``) and Utrecht
(``UTRECHT_ORGS``, officer ``World.utrecht_officer``), and the index operator's national
officer who sees both. A regional officer's access answers, erasures, uninformed list
and reports hold their region's signals and organisations only; a person with signals
only elsewhere is "nothing held", answered exactly as a person with none; naming
something outside the region is refused with 403 ``outside-region`` and audited as
``request.refused``. A death notice is the exception: it erases in every region, and
answers for the officer's region only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.clirun import run_vir
from support.inapp import InApp, in_app
from support.instore import ORGS, T0, UTRECHT_ORGS
from support.world import (
    MUNICIPALITY,
    OPERATOR,
    UTRECHT,
    VEILIG_THUIS,
    World,
    person,
    world,
)

from vir.audit.chain import AuditEvent
from vir.crypto import pki
from vir.domain import policy
from vir.domain.clock import utc_now
from vir.domain.encoding import b64url_encode
from vir.domain.errors import InputError, NotFound, NotPermitted, OutsideRegion
from vir.domain.lifecycle import ErasureKind
from vir.domain.organisations import Organisation, Role
from vir.domain.signals import Professional, WithdrawalReason
from vir.services.consultations import Purpose
from vir.services.devsetup import DevPaths, ensure_ca
from vir.services.identity import Caller
from vir.services.onboarding import register_certificate, register_organisation
from vir.services.reports import monitor_report, privacy_report
from vir.services.signals import SignalRequest, SignalService
from vir.store.db import Database
from vir.store.organisations import get_certificate
from vir.store.tables import AuditEntryRow, CertificateRow

ROTTERDAM_OINS = {str(o.oin) for o in [*ORGS, VEILIG_THUIS, MUNICIPALITY]}
UTRECHT_OINS = {str(o.oin) for o in [*UTRECHT_ORGS, UTRECHT]}
SCHOOL_U, GP_U = UTRECHT_ORGS


def _oins(report: Any) -> set[str]:
    """Every 20-digit OIN anywhere in an answer."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and len(value) == 20 and value.isdigit():
            found.add(value)

    walk(report)
    return found


@pytest.fixture
def two_regions(tmp_path: Path) -> Iterator[tuple[World, dict[str, list[str]]]]:
    """Kim: two Rotterdam signals (one withdrawn to the archive) and one in Utrecht, a
    person match across the regions, consulted by Veilig Thuis (Rotterdam). Noor: one
    Utrecht signal only, with Kim's mother as her parent."""
    with world(tmp_path) as w:
        rotterdam = [w.register(0, "kim"), w.register(1, "kim")]
        w.signals.withdraw(w.caller(1), rotterdam[1].local_ref, WithdrawalReason.RISK_ENDED)
        utrecht = [w.register(SCHOOL_U, "kim")]
        noor = [w.register(GP_U, "noor", parents=("mother",))]
        w.consultations.consult(w.veilig_thuis, person("kim"), Purpose.SAFETY_ASSESSMENT)
        yield (
            w,
            {
                "rotterdam": [s.id for s in rotterdam],
                "utrecht": [s.id for s in utrecht],
                "noor": [s.id for s in noor],
            },
        )


def test_each_officer_gets_only_their_regions_part_of_an_access_request(
    two_regions: tuple[World, dict[str, list[str]]],
) -> None:
    w, ids = two_regions
    mine = w.privacy.access(w.officer, person("kim"))
    assert mine["region"] == "Rotterdam"  # the answer says whose part it is
    assert {s["signal_id"] for s in mine["signals"]} == set(ids["rotterdam"])
    assert _oins(mine) <= ROTTERDAM_OINS
    text = json.dumps(mine)
    assert not any(i in text for i in ids["utrecht"] + ids["noor"])
    # The active Rotterdam signal's person match: its Rotterdam partner is archived, the
    # Utrecht one is not named.
    (active,) = [s for s in mine["signals"] if s["status"] == "active"]
    (match,) = active["matches"]
    assert match["participants"] == []
    assert mine["consultations"] and all(
        c["organisation"]["oin"] == str(VEILIG_THUIS.oin) for c in mine["consultations"]
    )

    theirs = w.privacy.access(w.utrecht_officer, person("kim"))
    assert {s["signal_id"] for s in theirs["signals"]} == set(ids["utrecht"])
    assert _oins(theirs) <= UTRECHT_OINS
    text = json.dumps(theirs)
    assert not any(i in text for i in ids["rotterdam"])
    # Veilig Thuis Rotterdam's consultation disclosed the Utrecht signal: that is Rotterdam's
    # part of the log, not Utrecht's.
    assert theirs["consultations"] == []

    everything = w.privacy.access(w.national_officer, person("kim"))
    assert everything["region"] is None
    assert {s["signal_id"] for s in everything["signals"]} == set(ids["rotterdam"] + ids["utrecht"])
    assert {str(SCHOOL_U.oin), str(ORGS[0].oin), str(ORGS[1].oin)} <= _oins(everything)
    (active,) = [s for s in everything["signals"] if s["signal_id"] == ids["rotterdam"][0]]
    (match,) = active["matches"]
    assert [p["organisation"]["oin"] for p in match["participants"]] == [str(SCHOOL_U.oin)]

    # As a parent: Noor's Utrecht signal names the mother; Rotterdam holds nothing on her.
    with pytest.raises(NotFound):
        w.privacy.access(w.officer, person("mother"))
    as_parent = w.privacy.access(w.utrecht_officer, person("mother"))
    assert [s["signal_id"] for s in as_parent["as_parent"]] == ids["noor"]


def test_signals_held_only_elsewhere_are_answered_as_nothing_held(
    two_regions: tuple[World, dict[str, list[str]]],
) -> None:
    w, _ids = two_regions
    before = len(w.audit())
    with pytest.raises(NotFound) as elsewhere:
        w.privacy.access(w.officer, person("noor"))  # held in Utrecht
    with pytest.raises(NotFound) as nowhere:
        w.privacy.access(w.officer, person("nobody"))
    assert str(elsewhere.value) == str(nowhere.value)
    assert "region" in str(elsewhere.value)
    first, second = w.audit()[before:]
    assert (first.action, first.outcome, first.reason, first.objects["signals"]) == (
        second.action,
        second.outcome,
        second.reason,
        second.objects["signals"],
    )
    # An erasure request for her is answered the same way, and erases nothing.
    with pytest.raises(NotFound) as erased:
        w.privacy.erase(w.officer, person("noor"), ErasureKind.ERASURE)
    assert str(erased.value) == str(nowhere.value)
    assert w.privacy.access(w.utrecht_officer, person("noor"))["signals"]


def test_erasure_acts_in_the_region_and_refuses_a_signal_outside_it(
    two_regions: tuple[World, dict[str, list[str]]],
) -> None:
    w, ids = two_regions
    kim = person("kim")
    # Naming the Utrecht signal, alone or beside a Rotterdam one: refused, nothing erased;
    # an id that exists nowhere gets the very same answer.
    answers = []
    for listed in (ids["utrecht"], [ids["rotterdam"][0], *ids["utrecht"]], ["0" * 36]):
        with pytest.raises(OutsideRegion) as refused:
            w.privacy.erase(w.officer, kim, ErasureKind.OBJECTION, listed)
        answers.append(str(refused.value))
    assert len(set(answers)) == 1
    national = w.privacy.access(w.national_officer, kim)
    assert len(national["signals"]) == 3
    # All of the person's signals, as the Rotterdam officer: Rotterdam's only.
    erased = w.privacy.erase(w.officer, kim, ErasureKind.ERASURE)
    assert sorted(erased) == sorted(ids["rotterdam"])
    left = w.privacy.access(w.national_officer, kim)
    assert [s["signal_id"] for s in left["signals"]] == ids["utrecht"]
    # The national officer may name any signal.
    corrected = w.privacy.erase(w.national_officer, kim, ErasureKind.CORRECTION, ids["utrecht"])
    assert corrected == ids["utrecht"]


def test_a_death_notice_erases_in_every_region_and_answers_for_the_officers(
    two_regions: tuple[World, dict[str, list[str]]],
) -> None:
    """Decision (docs/privacy/legal-mapping.md): the BRP's death holds everywhere and the
    law wants the signals gone as soon as possible, so a regional officer's notice erases
    in every region; the answer names the officer's region's signals only."""
    w, ids = two_regions
    answered = w.privacy.deceased(w.utrecht_officer, person("kim"))
    assert answered == ids["utrecht"]
    with pytest.raises(NotFound):
        w.privacy.access(w.national_officer, person("kim"))  # Rotterdam's went too
    # Held only in Utrecht, noticed in Rotterdam: erased, and answered "nothing held in
    # your region", as for a person the index never held.
    with pytest.raises(NotFound) as noticed:
        w.privacy.deceased(w.officer, person("noor"))
    with pytest.raises(NotFound) as nobody:
        w.privacy.deceased(w.officer, person("nobody"))
    assert str(noticed.value) == str(nobody.value)
    with pytest.raises(NotFound):
        w.privacy.access(w.national_officer, person("noor"))
    entry = [e for e in w.audit() if e.action == "person.deceased"][-1]
    assert entry.organisation == str(MUNICIPALITY.oin) and entry.objects["active"] == 1


def test_uninformed_lists_and_reports_cover_the_officers_region(
    two_regions: tuple[World, dict[str, list[str]]],
) -> None:
    w, _ids = two_regions
    w.clock.now = T0 + dt.timedelta(days=40)  # every active signal's duty is overdue
    lists = {
        name: {u.organisation.oin for u in w.privacy.uninformed(officer)}
        for name, officer in (
            ("rotterdam", w.officer),
            ("utrecht", w.utrecht_officer),
            ("national", w.national_officer),
        )
    }
    assert lists["rotterdam"] == {str(ORGS[0].oin)}
    assert lists["utrecht"] == {str(SCHOOL_U.oin), str(GP_U.oin)}
    assert lists["national"] == lists["rotterdam"] | lists["utrecht"]

    start, end = T0.date().replace(day=1), T0.date() + dt.timedelta(days=41)
    reports = {
        name: privacy_report(w.store.db, w.clock, officer, start, end)
        for name, officer in (
            ("rotterdam", w.officer),
            ("utrecht", w.utrecht_officer),
            ("national", w.national_officer),
        )
    }
    assert reports["rotterdam"]["region"] == "Rotterdam"
    assert reports["national"]["region"] is None
    assert _oins(reports["rotterdam"]) <= ROTTERDAM_OINS
    assert _oins(reports["utrecht"]) <= UTRECHT_OINS
    national = _oins(reports["national"])
    assert {str(ORGS[0].oin), str(SCHOOL_U.oin), str(GP_U.oin)} <= national
    registered = {
        name: sum(e["count"] for e in r["events"] if e["action"] == "signal.registered")
        for name, r in reports.items()
    }
    assert registered == {"rotterdam": 2, "utrecht": 2, "national": 4}
    uninformed = {
        name: {u["oin"] for u in r["uninformed"]["organisations"]} for name, r in reports.items()
    }
    assert uninformed == lists

    monitors = {
        name: monitor_report(w.store.db, w.clock, officer, start, end)
        for name, officer in (("rotterdam", w.officer), ("utrecht", w.utrecht_officer))
    }
    assert monitors["rotterdam"]["region"] == "Rotterdam"
    assert monitors["utrecht"]["region"] == "Utrecht"
    national_monitor = monitor_report(w.store.db, w.clock, w.national_officer, start, end)
    assert national_monitor["region"] is None
    chosen = monitor_report(w.store.db, w.clock, w.national_officer, start, end, "Utrecht")
    assert chosen["measures"] == monitors["utrecht"]["measures"]


def test_asking_for_another_regions_report_is_refused(
    two_regions: tuple[World, dict[str, list[str]]],
) -> None:
    w, _ids = two_regions
    start, end = T0.date().replace(day=1), T0.date() + dt.timedelta(days=1)
    for report in (privacy_report, monitor_report):
        with pytest.raises(OutsideRegion):
            report(w.store.db, w.clock, w.officer, start, end, region="Utrecht")
    # Their own region, asked for by name, is theirs, however the name is written.
    for name in ("Rotterdam", "rotterdam", "ROTTERDAM"):
        made = monitor_report(w.store.db, w.clock, w.officer, start, end, name)
        assert made["region"] == "Rotterdam"
    with pytest.raises(OutsideRegion):  # a name like it is not it
        monitor_report(w.store.db, w.clock, w.officer, start, end, "Rotterdamm")


def test_officer_roles_belong_to_their_categories(tmp_path: Path) -> None:
    """The scope follows from role and category together: a municipality's officer is
    regional, the index operator's national; no other pairing is an officer."""
    assert policy.require_privacy_officer(
        Caller(MUNICIPALITY, "f" * 64, Role.PRIVACY_OFFICER)
    ) == policy.Scope("Rotterdam")
    national = Caller(OPERATOR, "c" * 64, Role.NATIONAL_PRIVACY_OFFICER)
    assert policy.require_privacy_officer(national) == policy.NATIONAL
    for org, role in (
        (MUNICIPALITY, Role.NATIONAL_PRIVACY_OFFICER),
        (OPERATOR, Role.PRIVACY_OFFICER),
        (ORGS[0], Role.PRIVACY_OFFICER),
        (ORGS[0], Role.NATIONAL_PRIVACY_OFFICER),
        (OPERATOR, Role.SYSTEM),
    ):
        with pytest.raises(NotPermitted):
            policy.require_privacy_officer(Caller(org, "a" * 64, role))

    with world(tmp_path) as w:
        ca = pki.create_ca("test CA", T0)
        for org, role in (
            (MUNICIPALITY, Role.NATIONAL_PRIVACY_OFFICER),
            (OPERATOR, Role.PRIVACY_OFFICER),
            (OPERATOR, Role.SYSTEM),
            (ORGS[0], Role.NATIONAL_PRIVACY_OFFICER),
        ):
            with pytest.raises(InputError) as refused:
                register_certificate(w.store.db, _certificate(ca, org).cert, T0, role)
            assert refused.value.field == "role"
        register_certificate(
            w.store.db, _certificate(ca, OPERATOR).cert, T0, Role.NATIONAL_PRIVACY_OFFICER
        )


# --- Over the API: 403 problem+json, audited as request.refused ---------------------------


def _certificate(ca: pki.Issued, org: Organisation) -> pki.Issued:
    return pki.issue_client_certificate(
        ca, str(org.oin), org.name, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=30)
    )


@dataclass
class Api:
    app: InApp
    pems: dict[str, str]  # who -> certificate (PEM)
    refs: dict[str, str]  # who -> signal id

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request with ``who``'s certificate, as the embedded server hands it over."""
        inner, pem = self.app.app, self.pems[who]

        async def with_certificate(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                tls = {"client_cert_chain": [pem]}
                scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": tls}}
            await inner(scope, receive, send)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(
                app=with_certificate, raise_app_exceptions=False, client=("127.0.0.1", 50000)
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://vir") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def audit(self) -> list[AuditEvent]:
        with self.app.app.state.services.db.read() as session:
            bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
            return [AuditEvent.decode(bytes(b)) for b in bodies]


def _register(app: InApp, org: Organisation, who: str, days_ago: int = 0) -> str:
    services = app.app.state.services
    epoch = services.epochs.current()
    clock = (lambda: T0 - dt.timedelta(days=days_ago)) if days_ago else app.app.state.clock
    signals = SignalService(services.db, clock, services.epochs)
    caller = Caller(org, f"{int(str(org.oin)):064x}")
    request = SignalRequest(
        f"{who}-{str(org.oin)[-4:]}",
        epoch,
        person(who),
        (),
        None,
        None,
        Professional("Anna de Vries", "anna@org.example"),
    )
    return signals.register(caller, request).signal.id


@contextlib.contextmanager
def _api(tmp_path: Path, **settings: Any) -> Iterator[Api]:
    with in_app(tmp_path, **settings) as app:
        db = app.app.state.services.db
        for org in (MUNICIPALITY, UTRECHT, *UTRECHT_ORGS, OPERATOR):
            register_organisation(db, org, T0)
        ca = pki.create_ca("test CA", T0)
        pems = {}
        for who, org, role in (
            ("rotterdam", MUNICIPALITY, Role.PRIVACY_OFFICER),
            ("utrecht", UTRECHT, Role.PRIVACY_OFFICER),
            ("national", OPERATOR, Role.NATIONAL_PRIVACY_OFFICER),
        ):
            issued = _certificate(ca, org)
            register_certificate(db, issued.cert, T0, role)
            pems[who] = pki.cert_pem(issued.cert).decode("ascii")
        refs = {
            "rotterdam": _register(app, ORGS[0], "kim", days_ago=10),
            "utrecht": _register(app, SCHOOL_U, "kim", days_ago=10),
        }
        yield Api(app, pems, refs)


def _body(who: str, epoch: int, **extra: Any) -> dict[str, Any]:
    return {"epoch": epoch, "person": b64url_encode(person(who)), **extra}


def test_out_of_scope_requests_are_403_problems_and_audited(tmp_path: Path) -> None:
    with _api(tmp_path, information_duty_days=5) as api:
        epoch = api.app.epoch
        before = len(api.audit())
        erasure = api.call(
            "utrecht",
            "POST",
            "/v1/privacy/erasure",
            json=_body("kim", epoch, kind="erasure", signals=[api.refs["rotterdam"]]),
        )
        monitor = api.call(
            "utrecht",
            "GET",
            "/v1/privacy/reports/monitor",
            params={"from": "2026-11-01", "to": "2026-12-01", "region": "Rotterdam"},
        )
        events = api.call(
            "rotterdam",
            "GET",
            "/v1/privacy/reports/events",
            params={"from": "2026-11-01", "to": "2026-12-01", "region": "Utrecht"},
        )
        for response in (erasure, monitor, events):
            assert response.status_code == 403
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "urn:vir:problem:outside-region"
            assert api.refs["rotterdam"] not in response.text
        refused = [e for e in api.audit()[before:] if e.action == "request.refused"]
        assert [(e.reason, e.organisation) for e in refused] == [
            ("outside_region", str(UTRECHT.oin)),
            ("outside_region", str(UTRECHT.oin)),
            ("outside_region", str(MUNICIPALITY.oin)),
        ]
        assert [e.objects["endpoint"] for e in refused] == [
            "POST /v1/privacy/erasure",
            "GET /v1/privacy/reports/monitor",
            "GET /v1/privacy/reports/events",
        ]
        # Nothing was erased: the national officer still sees both signals.
        access = api.call("national", "POST", "/v1/privacy/access", json=_body("kim", epoch))
        assert {s["signal_id"] for s in access.json()["signals"]} == set(api.refs.values())

        # Access: each officer gets their own region's signal; a person held elsewhere only
        # is the same 404 as a person held nowhere.
        for who in ("rotterdam", "utrecht"):
            mine = api.call(who, "POST", "/v1/privacy/access", json=_body("kim", epoch))
            assert [s["signal_id"] for s in mine.json()["signals"]] == [api.refs[who]]
        _register(api.app, SCHOOL_U, "noor")
        elsewhere = api.call("rotterdam", "POST", "/v1/privacy/access", json=_body("noor", epoch))
        nowhere = api.call("rotterdam", "POST", "/v1/privacy/access", json=_body("none", epoch))
        assert elsewhere.status_code == nowhere.status_code == 404
        assert elsewhere.json() == nowhere.json()

        # The monitor: a regional officer's own region, asked for or not; the national
        # officer's choice.
        period = {"from": "2026-11-01", "to": "2026-12-01"}
        own = api.call("utrecht", "GET", "/v1/privacy/reports/monitor", params=period)
        assert own.json()["region"] == "Utrecht"
        chosen = api.call(
            "national",
            "GET",
            "/v1/privacy/reports/monitor",
            params={**period, "region": "Rotterdam"},
        )
        assert chosen.json()["region"] == "Rotterdam"
        uninformed = api.call("rotterdam", "GET", "/v1/privacy/uninformed")
        assert [i["signal_id"] for i in uninformed.json()["items"]] == [api.refs["rotterdam"]]


def _uninformed(api: Api) -> dict[str, Any]:
    response = api.call(
        "rotterdam",
        "GET",
        "/v1/privacy/reports/events",
        params={"from": "2026-11-01", "to": "2026-12-01"},
    )
    assert response.status_code == 200, response.text
    uninformed: dict[str, Any] = response.json()["uninformed"]
    return uninformed


def test_the_privacy_report_honours_the_information_duty_days_setting(tmp_path: Path) -> None:
    """The signals were registered ten days before the report: listed after a term of 5
    days (``VIR_INFORMATION_DUTY_DAYS=5``), not after the default 30."""
    with _api(tmp_path / "default") as api:
        assert _uninformed(api) == {"days": 30, "organisations": []}
    with _api(tmp_path / "five", information_duty_days=5) as api:
        assert _uninformed(api) == {
            "days": 5,
            "organisations": [{"oin": str(ORGS[0].oin), "name": ORGS[0].name, "count": 1}],
        }


def _vir(db: Database, *args: str, days: int | None = None) -> tuple[int, str, str]:
    """``vir ARGS`` in this process, on ``db``: exit code, standard output and error."""
    env = {"information_duty_days": str(days)} if days is not None else {}
    ran = run_vir(db, *args, **env)
    return ran.code, ran.out, ran.err


def _cli_report(db: Database, *args: str, days: int | None = None) -> dict[str, Any]:
    """``vir report privacy ARGS`` in this process, on ``db``."""
    code, out, err = _vir(db, "report", "privacy", *args, days=days)
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def test_the_cli_report_honours_the_setting_and_a_region(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.clock.now = utc_now() - dt.timedelta(days=10)  # the CLI reports as of now
        w.register(0, "kim")
        w.register(SCHOOL_U, "kim")
        today = utc_now().date()
        period = ("--from", (today - dt.timedelta(days=30)).isoformat())
        period += ("--to", (today + dt.timedelta(days=1)).isoformat())
        default = _cli_report(w.store.db, *period)
        five = _cli_report(w.store.db, *period, days=5)
        rotterdam = _cli_report(w.store.db, *period, "--region", "Rotterdam", days=5)
    assert default["uninformed"] == {"days": 30, "organisations": []}
    assert five["uninformed"]["days"] == 5
    assert {o["oin"] for o in five["uninformed"]["organisations"]} == {
        str(ORGS[0].oin),
        str(SCHOOL_U.oin),
    }
    assert rotterdam["region"] == "Rotterdam"
    assert [o["oin"] for o in rotterdam["uninformed"]["organisations"]] == [str(ORGS[0].oin)]


def test_the_index_operator_is_onboarded_with_a_national_officer(tmp_path: Path) -> None:
    """``vir org add`` gives a municipality or index operator its officer's certificate (it
    has no back office); ``vir org cert`` gives the national role to the index operator
    only."""
    dev = DevPaths(tmp_path / "dev")
    ensure_ca(dev, utc_now())
    oin = "00000009000000000998"
    with world(tmp_path) as w:
        code, _out, err = _vir(
            w.store.db,
            *("org", "add", "--oin", oin, "--name", "Beheerder", "--category", "index_operator"),
            *("--region", "Nederland", "--dev-dir", str(dev.root)),
        )
        assert code == 0, err
        first = pki.load_certificate((dev.root / "orgs" / f"{oin}.crt").read_bytes())
        cert = ("org", "cert", "--oin", oin, "--dev-dir", str(dev.root), "--role")
        code, _out, err = _vir(w.store.db, *cert, "privacy_officer")
        assert code == 2 and "role" in err
        code, _out, err = _vir(w.store.db, *cert, "national_privacy_officer")
        assert code == 0, err
        code, _out, err = _vir(w.store.db, *cert[:3], str(MUNICIPALITY.oin), *cert[4:], "system")
        assert code == 2 and "role" in err
        with w.store.db.read() as session:
            roles = [
                row.role
                for row in session.scalars(select(CertificateRow).where(CertificateRow.oin == oin))
            ]
            assert get_certificate(session, pki.fingerprint(first)) is not None
    assert roles == ["national_privacy_officer"] * 2
