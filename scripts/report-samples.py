"""Make the sample reports in docs/privacy/samples/ from ten months of synthetic activity.

    .venv/bin/python scripts/report-samples.py [OUT_DIR]
    .venv/bin/python scripts/report-samples.py --check    # make samples-check, in CI

Writes the first lines of the privacy officer's CSV (Dutch Excel dialect, and the data
dialect), of the monitor's CSV and of the participation monitor's CSV, the privacy
report's JSON, the PDFs (privacy report, monitor, participation monitor, and a
data-subject access report for one of the children), and a PNG of each PDF's first page
(that needs ``pdftoppm``, from Debian's poppler-utils). The activity is made through the
services themselves, on the test suite's throwaway store: four reporting organisations
register more each month, Veilig Thuis consults without registering (an anomaly flag),
some signals share a child or a parent (person and household matches). The
participation monitor has an activity of its own (its own store and seed, so the other
samples do not move): four schools, one of which rarely reports (flagged), match with
youth care each month, and both confirm contact, in time or late. The reports are tied
to a checkpoint signed with a fixed sample key.

The output is the same bytes on every run (for the fpdf2, matplotlib and font versions
installed): the clock is the world's, fixed; the record ids the services draw from
``uuid.uuid4`` come from a seeded generator while the activity runs; the key is derived
from a public string; the PDFs carry ``CREATED`` (or the access report's own time) as
their creation date, and fpdf2 derives their /ID from content and date. ``--check``
makes the samples afresh in a temporary folder and compares the PDF, CSV and JSON files
byte for byte with docs/privacy/samples/, so the committed samples cannot drift from
the code; the PNG pages are left out of the comparison (they depend on poppler).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.instore import ORGS  # noqa: E402
from support.world import World, person, world  # noqa: E402

from vir.crypto.signing import CheckpointSigner  # noqa: E402
from vir.domain.coordination import FollowUp  # noqa: E402
from vir.domain.organisations import Category, Oin, Organisation  # noqa: E402
from vir.domain.ratelimit import Limit, LimitKind  # noqa: E402
from vir.reports.access_pdf import render_access_report  # noqa: E402
from vir.reports.officer import monitor_csv, monitor_pdf, privacy_csv, privacy_pdf  # noqa: E402
from vir.reports.participation import participation_csv, participation_pdf  # noqa: E402
from vir.services.consultations import ConsultationService, Purpose  # noqa: E402
from vir.services.evaluation_counts import Counted, tally  # noqa: E402
from vir.services.matchregie import Matchregie  # noqa: E402
from vir.services.onboarding import register_organisation  # noqa: E402
from vir.services.participation import participation_report  # noqa: E402
from vir.services.reports import monitor_report, privacy_report  # noqa: E402
from vir.services.transparency import TransparencyLog  # noqa: E402
from vir.store.ratelimits import RateLimits  # noqa: E402
from vir.store.tables import MatchMemberRow  # noqa: E402

START, END = dt.date(2026, 1, 1), dt.date(2026, 11, 1)
CREATED = dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.UTC)
HEAD_LINES = 16
SAMPLES = ROOT / "docs" / "privacy" / "samples"
COMPARED = (".pdf", ".csv", ".json")  # not .png: pdftoppm's output is poppler's business
ID_SEED = 19  # issue 19: seeds the record ids, so the root hash is the same every run
PARTICIPATION_SEED = 17  # issue 17: the participation monitor's activity
# A sample key, derived from a public string: never a key of a real log.
SIGNER = CheckpointSigner.from_seed(
    hashlib.sha256(b"vir sample reports").digest(), "verwijsindex.example/audit"
)


@contextmanager
def _seeded_uuids(seed: int) -> Iterator[None]:
    """``uuid.uuid4`` (which the services call for every record id) from a seeded generator."""
    rng = random.Random(seed)  # noqa: S311 - sample ids, deliberately predictable

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    with mock.patch.object(uuid, "uuid4", uuid4):
        yield


def _keyholder(start: dt.date, end: dt.date) -> Counted:
    """The key holders' evaluation counts (GET /v1/oprf/usage) as the sample's index would
    read them from a 2-of-3 deployment: each reporting organisation pseudonymises what it
    registers, each month, and its client asks the first two key holders of its list."""
    del start, end  # the sample's period
    asked = {
        (str(ORGS[org].oin), dt.datetime(2026, month, 5, 9, tzinfo=dt.UTC)): 3
        * (month + 1)
        * (org + 1)
        for month in range(1, 11)
        for org in range(4)
    }
    return Counted(tally([asked, asked, {}], 2), threshold=2, keyholders=3)


def _activity(folder: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    with _seeded_uuids(ID_SEED), world(folder) as w:
        log = TransparencyLog(w.store.db, SIGNER, w.clock)
        consultations = ConsultationService(
            w.store.db, w.clock, RateLimits({LimitKind.CONSULTATION: Limit(1.0, 100)})
        )
        for month in range(1, 11):
            w.clock.to(dt.date(2026, month, 5))
            for org, share in ((0, 1.0), (1, 0.8), (2, 0.5), (3, 0.2)):
                for n in range(round((month + 1) * share)):
                    w.register(org, f"m{month}-o{org}-{n}")
            w.register(0, f"child-{month}")  # one child, two reporters: a person match
            w.register(1, f"child-{month}")
            w.register(2, f"sib-a-{month}", parents=(f"parent-{month}",))  # a household
            w.register(3, f"sib-b-{month}", parents=(f"parent-{month}",))
            for n in range(3):
                purpose = Purpose.TRIAGE if n else Purpose.SAFETY_ASSESSMENT
                consultations.consult(w.veilig_thuis, person(f"vt-{month}-{n}"), purpose)
        w.clock.now = CREATED
        privacy = privacy_report(
            w.store.db, w.clock, w.officer, START, END, log=log, evaluation_counts=_keyholder
        )
        monitor = monitor_report(w.store.db, w.clock, w.officer, START, END, log=log)
        access = w.privacy.access(w.officer, person("child-10"))
    texts = {
        "privacy-report-head.csv": _head(privacy_csv(privacy, "nl")),
        "privacy-report-data-head.csv": _head(privacy_csv(privacy, "data")),
        "monitor-head.csv": _head(monitor_csv(monitor, "nl")),
        "privacy-report.json": json.dumps(privacy, ensure_ascii=False, indent=2) + "\n",
    }
    pdfs = {
        "privacy-report": privacy_pdf(privacy, CREATED),
        "monitor": monitor_pdf(monitor, CREATED),
        "access-report": render_access_report(access),
    }
    return texts, pdfs


def _match_of(w: World, signal_id: str) -> str:
    with w.store.db.read() as session:
        query = select(MatchMemberRow.match_id).where(MatchMemberRow.signal_id == signal_id)
        return str(session.scalars(query).one())


def _participation(folder: Path) -> tuple[str, bytes]:
    """The participation monitor's sample: its CSV head (nl) and PDF."""
    schools = [ORGS[0]] + [
        Organisation(Oin(f"000000090000000004{n:02d}"), name, Category.EDUCATION, "Rotterdam", "s")
        for n, name in enumerate(("Basisschool De Linde", "Basisschool Het Anker", "Het Lyceum"))
    ]
    youth_care = ORGS[2]
    with _seeded_uuids(PARTICIPATION_SEED), world(folder) as w:
        log = TransparencyLog(w.store.db, SIGNER, w.clock)
        regie = Matchregie(w.store.db, w.clock)
        for school in schools[1:]:
            register_organisation(w.store.db, school, w.clock())
        for month in range(1, 11):
            w.clock.to(dt.date(2026, month, 2))
            for school, count in zip(schools, (month % 4 == 0, 3, 4, 5), strict=True):
                for n in range(int(count)):
                    w.register(school, f"p{month}-{str(school.oin)[-2:]}-{n}")
            school = schools[1 + month % 3]
            w.register(school, f"kind-{month}")
            w.clock.to(dt.date(2026, month, 3))
            match_id = _match_of(w, w.register(youth_care, f"kind-{month}").id)
            w.clock.to(dt.date(2026, month, 5 + month % 3))  # 2, 3 or 4 days later
            regie.follow_up(
                w.caller(youth_care), match_id, FollowUp.CONTACT_MADE, [str(school.oin)]
            )
            if month % 2:  # the school confirms too: within the term or after it
                w.clock.to(dt.date(2026, month, 4 + 6 * (month % 4)))
                caller = w.caller(school)
                regie.follow_up(caller, match_id, FollowUp.CONTACT_MADE, [str(youth_care.oin)])
        w.clock.now = CREATED
        report = participation_report(w.store.db, w.clock, w.officer, START, END, log=log)
    return _head(participation_csv(report, "nl")), participation_pdf(report, CREATED)


def _head(text: str) -> str:
    return "".join(text.splitlines(keepends=True)[:HEAD_LINES])


def _write(out: Path, *, pngs: bool) -> list[str]:
    """The samples into ``out``; the PNG pages too if ``pngs`` and pdftoppm is there.

    The names of the files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vir-samples-") as scratch:
        texts, pdfs = _activity(Path(scratch))
        (Path(scratch) / "participation").mkdir()
        texts["participation-head.csv"], pdfs["participation"] = _participation(
            Path(scratch) / "participation"
        )
    written = []
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8", newline="")
        written.append(name)
    renderer = shutil.which("pdftoppm") if pngs else None
    for name, pdf in pdfs.items():
        path = out / f"{name}.pdf"
        path.write_bytes(pdf)
        written.append(path.name)
        if renderer is None:
            continue
        subprocess.run(  # noqa: S603 - a fixed program found on PATH, our own file names
            [
                renderer,
                "-png",
                "-r",
                "60",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                path,
                out / f"{name}-page1",
            ],
            check=True,
        )
        written.append(f"{name}-page1.png")
    return sorted(written)


def _pdf_text(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def _same(name: str, stored: bytes, made: bytes) -> bool:
    """The same bytes; for a PDF also the same text on the same pages, so that a new
    release of fpdf2, matplotlib or fontTools (other font subsets, other compression)
    is no drift, while any change of what a reader sees is."""
    if stored == made:
        return True
    return name.endswith(".pdf") and _pdf_text(stored) == _pdf_text(made)


def _check(samples: Path) -> int:
    """0 if ``samples`` holds exactly the PDFs, CSVs and JSONs made afresh, else 1."""
    if not samples.is_dir():
        print(f"{samples}: no such folder", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="vir-samples-check-") as fresh:
        made = Path(fresh)
        _write(made, pngs=False)
        expected = {p.name: p.read_bytes() for p in made.iterdir() if p.suffix in COMPARED}
    present = {p.name for p in samples.iterdir() if p.suffix in COMPARED}
    problems = []
    for name, data in sorted(expected.items()):
        path = samples / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif not _same(name, path.read_bytes(), data):
            problems.append(f"{name}: differs from what the script makes")
    problems += [f"{name}: not made by the script" for name in sorted(present - set(expected))]
    if problems:
        for problem in problems:
            print(f"{samples / problem}", file=sys.stderr)
        print(
            "the samples have drifted: run .venv/bin/python scripts/report-samples.py "
            "and commit docs/privacy/samples/",
            file=sys.stderr,
        )
        return 1
    print(f"{samples}: {len(expected)} samples (PDF, CSV, JSON) as the script makes them")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", nargs="?", type=Path, default=SAMPLES, help="the folder")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the folder instead of writing to it (exit 1 on a difference)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    if args.check:
        return _check(out)
    written = _write(out, pngs=True)
    print(f"written to {out}: {', '.join(written)}")
    if shutil.which("pdftoppm") is None:
        print("no pdftoppm: install poppler-utils for the PNG pages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
