#!/usr/bin/env bash
# The portal's browser tests (tests/integration/test_portal_*.py) drive the system's
# Chromium with Playwright (the Python package, from pyproject's dev extra); Playwright's
# own browser downloads are not used. Installs Chromium with the system package manager
# when it is not found and we may.
set -euo pipefail
have() { command -v chromium >/dev/null || [ -x /usr/bin/chromium ]; }
have && exit 0
echo "chromium not found; installing it" >&2
if command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
elif command -v dnf >/dev/null; then sudo dnf install -y chromium
else
  echo "Install Chromium with your package manager, then run make again." >&2
  exit 1
fi
have || { echo "chromium still not found after installing" >&2; exit 1; }
