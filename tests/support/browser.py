"""A real browser for the portal tests: Debian's Chromium driven by Playwright.

Chromium is the system's (``scripts/ensure-chromium.sh`` installs it; Playwright's own
browser downloads are not used). It trusts exactly the test servers' certificates
(``--ignore-certificate-errors-spki-list`` with their key hashes), not every
certificate, and makes no connections of its own (no background networking)."""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Installed by make test (the Makefile's axe-core target, a pinned version from npm).
AXE = Path(__file__).resolve().parents[2] / ".ci/axe/node_modules/axe-core/axe.min.js"
# WCAG 2.1 A and AA (and the rules axe holds to be best practice are left out).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def spki_hash(cert_file: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium takes it."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@contextmanager
def chromium(trusted: list[Path]) -> Iterator[object]:
    """A Playwright Browser (headless Chromium) trusting the certificates in ``trusted``."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/ensure-chromium.sh (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--ignore-certificate-errors-spki-list="
                + ",".join(spki_hash(path) for path in trusted),
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any) -> Any:
    """A browser context in which axe-core can be injected: the pages' own policy forbids
    any script not served by the portal, so the test's context bypasses it (the
    policy itself is tested on the answers' headers)."""
    return browser.new_context(bypass_csp=True)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now (ids and targets)."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE}: run make test (it installs it)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, "
        "targets: v.nodes.map(n => n.target.join(' '))})))",
        AXE_TAGS,
    )
    return list(found)


def follow(page: Any, target: Any) -> None:
    """Click ``target`` (a link, or a button that submits a form) and wait until the page
    it leads to has loaded. A bare click returns once the click is dispatched: a check
    made right after it can still read the page it left."""
    with page.expect_navigation():
        target.click()


def focused_name(page: Any) -> str:
    """The name of the element that has the focus: its label's text, else its text."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement; return (e.labels && e.labels[0] ? "
            "e.labels[0].textContent : e.textContent || '').trim(); }"
        )
    )


def tab_to(page: Any, name: str, limit: int = 120) -> None:
    """Press Tab until the element named ``name`` (its label or text) has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_name(page).startswith(name):
            return
    raise AssertionError(f"no focusable element {name!r} on {page.url}")
