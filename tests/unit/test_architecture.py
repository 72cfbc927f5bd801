"""Dependencies point inward: the pure core imports no web, database or crypto library."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["vir.domain", "vir.audit"])
def test_core_packages_stay_pure(package: str) -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = {'fastapi', 'starlette', 'sqlalchemy', 'pysodium', 'cryptography', 'httpx'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_only_crypto_imports_crypto_libraries() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "vir"
    for path in root.rglob("*.py"):
        if "crypto" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        for lib in ("import pysodium", "from cryptography", "import cryptography"):
            assert lib not in text, f"{path} imports a crypto library"
