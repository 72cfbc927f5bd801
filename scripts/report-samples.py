"""Make the sample reports in docs/privacy/samples/ from ten months of synthetic activity.

    .venv/bin/python scripts/report-samples.py [OUT_DIR]

Writes the first lines of the privacy officer's CSV (Dutch Excel dialect, and the data
dialect) and of the monitor's CSV, the privacy report's JSON, the PDFs (privacy report,
monitor, and a data-subject access report for one of the children), and a PNG of each
PDF's first page (that needs ``pdftoppm``, from Debian's poppler-utils). The activity
is made through the services themselves, on the test suite's throwaway store: four
reporting organisations register more each month, Veilig Thuis consults without
registering (an anomaly flag), some signals share a child or a parent (person and
household matches). The reports are tied to a checkpoint signed with a fixed sample
key; the root hash differs per run (signal ids are random), the counts do not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.world import person, world  # noqa: E402

from vir.crypto.signing import CheckpointSigner  # noqa: E402
from vir.domain.ratelimit import Limit, LimitKind  # noqa: E402
from vir.reports.access_pdf import render_access_report  # noqa: E402
from vir.reports.officer import monitor_csv, monitor_pdf, privacy_csv, privacy_pdf  # noqa: E402
from vir.services.consultations import ConsultationService, Purpose  # noqa: E402
from vir.services.reports import monitor_report, privacy_report  # noqa: E402
from vir.services.transparency import TransparencyLog  # noqa: E402
from vir.store.ratelimits import RateLimits  # noqa: E402

START, END = dt.date(2026, 1, 1), dt.date(2026, 11, 1)
CREATED = dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.UTC)
HEAD_LINES = 16
# A sample key, derived from a public string: never a key of a real log.
SIGNER = CheckpointSigner.from_seed(
    hashlib.sha256(b"vir sample reports").digest(), "verwijsindex.example/audit"
)


def _activity(folder: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    with world(folder) as w:
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
        privacy = privacy_report(w.store.db, w.clock, w.officer, START, END, log=log)
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


def _head(text: str) -> str:
    return "".join(text.splitlines(keepends=True)[:HEAD_LINES])


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "privacy" / "samples"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vir-samples-") as scratch:
        texts, pdfs = _activity(Path(scratch))
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8", newline="")
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
