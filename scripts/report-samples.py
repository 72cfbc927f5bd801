"""Make the sample reports in docs/privacy/samples/ from ten months of synthetic activity.

    .venv/bin/python scripts/report-samples.py [OUT_DIR]

Writes the first lines of the privacy officer's CSV and of the monitor's CSV, both
PDFs, and a PNG of each PDF's first page (that needs ``pdftoppm``, from Debian's
poppler-utils). The activity is made through the services themselves, on the test
suite's throwaway store: four reporting organisations register more each month,
Veilig Thuis consults without registering (an anomaly flag), some signals share a
child or a parent (person and household matches).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.world import person, world  # noqa: E402

from vir.domain.ratelimit import Limit, LimitKind  # noqa: E402
from vir.reports.officer import monitor_csv, monitor_pdf, privacy_csv, privacy_pdf  # noqa: E402
from vir.services.consultations import ConsultationService, Purpose  # noqa: E402
from vir.services.reports import monitor_report, privacy_report  # noqa: E402
from vir.store.ratelimits import RateLimits  # noqa: E402

START, END = dt.date(2026, 1, 1), dt.date(2026, 11, 1)
CREATED = dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.UTC)
HEAD_LINES = 12


def _activity(folder: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    with world(folder) as w:
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
        privacy = privacy_report(w.store.db, w.clock, w.officer, START, END)
        monitor = monitor_report(w.store.db, w.clock, w.officer, START, END)
    csvs = {"privacy-report": privacy_csv(privacy), "monitor": monitor_csv(monitor)}
    pdfs = {
        "privacy-report": privacy_pdf(privacy, CREATED),
        "monitor": monitor_pdf(monitor, CREATED),
    }
    return csvs, pdfs


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "privacy" / "samples"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vir-samples-") as scratch:
        csvs, pdfs = _activity(Path(scratch))
    for name, text in csvs.items():
        head = "".join(text.splitlines(keepends=True)[:HEAD_LINES])
        (out / f"{name}-head.csv").write_text(head, encoding="utf-8")
    renderer = shutil.which("pdftoppm")
    for name, pdf in pdfs.items():
        path = out / f"{name}.pdf"
        path.write_bytes(pdf)
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
    written = sorted(p.name for p in out.iterdir())
    print(f"written to {out}: {', '.join(written)}")
    if renderer is None:
        print("no pdftoppm: install poppler-utils for the PNG pages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
