#!/usr/bin/env bash
# tests/integration/test_nginx.py runs a throwaway nginx of its own (own prefix,
# config, pid and log files) in front of vir, so it needs the nginx binary only.
# Installs it with the system package manager when it is not found and we may.
# Debian's package would also start a system nginx on port 80; RUNLEVEL=1 keeps
# invoke-rc.d from starting it (the tests do not use it).
set -euo pipefail
have() { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }
have && exit 0
echo "nginx not found; installing it" >&2
if command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq nginx-light \
    || $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq nginx
elif command -v dnf >/dev/null; then sudo dnf install -y nginx
elif command -v brew >/dev/null; then brew install nginx
else
  echo "Install nginx (1.18 or newer) with your package manager, then run make again." >&2
  exit 1
fi
have || { echo "nginx still not found after installing" >&2; exit 1; }
