#!/usr/bin/env bash
# vir needs the system libsodium (>= 1.0.18, for ristretto255) through pysodium.
# Installs it with the system package manager when it is missing and we may.
set -euo pipefail
python="${1:-python3}"
have() {
  "$python" - <<'PY'
import ctypes, ctypes.util, sys
name = ctypes.util.find_library("sodium")
if not name:
    sys.exit(1)
lib = ctypes.cdll.LoadLibrary(name)
sys.exit(0 if hasattr(lib, "crypto_core_ristretto255_from_hash") else 1)
PY
}
have && exit 0
echo "libsodium (>= 1.0.18) not found; installing it" >&2
if command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsodium23
elif command -v dnf >/dev/null; then sudo dnf install -y libsodium
elif command -v brew >/dev/null; then brew install libsodium
else
  echo "Install libsodium 1.0.18 or newer with your package manager, then run make again." >&2
  exit 1
fi
have || { echo "libsodium still not loadable after installing" >&2; exit 1; }
