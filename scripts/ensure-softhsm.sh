#!/usr/bin/env bash
# tests/unit/crypto/test_hsm.py and tests/security/test_hsm_keys.py keep keys in a
# throwaway SoftHSM2 token (own config and token folder under the test's tmp dir), so
# they need softhsm2-util and the PKCS#11 module libsofthsm2.so, not a configured HSM.
# Installs them with the system package manager when they are not found and we may.
# Looks where tests/support/softhsm.py looks: VIR_TEST_SOFTHSM_MODULE, the common
# library folders, then what the Debian package says it installed.
set -euo pipefail
module() {
  local path
  for path in "${VIR_TEST_SOFTHSM_MODULE:-}" \
              /usr/lib/softhsm/libsofthsm2.so \
              /usr/lib/*/softhsm/libsofthsm2.so \
              /usr/lib64/pkcs11/libsofthsm2.so \
              /usr/lib64/softhsm/libsofthsm2.so \
              /usr/local/lib/softhsm/libsofthsm2.so \
              /opt/homebrew/lib/softhsm/libsofthsm2.so \
              $(dpkg -L softhsm2 libsofthsm2 2>/dev/null | grep '/libsofthsm2\.so$' || true); do
    [ -n "$path" ] && [ -f "$path" ] && return 0
  done
  return 1
}
have() { command -v softhsm2-util >/dev/null && module; }
have && exit 0
echo "SoftHSM2 (softhsm2-util, libsofthsm2.so) not found; installing it" >&2
if command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2
elif command -v dnf >/dev/null; then sudo dnf install -y softhsm
elif command -v brew >/dev/null; then brew install softhsm
else
  echo "Install SoftHSM2 (2.5 or newer) with your package manager, then run make again." >&2
  exit 1
fi
have || { echo "SoftHSM2 still not found after installing" >&2; exit 1; }
