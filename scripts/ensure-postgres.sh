#!/usr/bin/env bash
# The PostgreSQL test run (VIR_TEST_DATABASE=postgresql) starts its own throwaway
# server, so it needs the server binaries (initdb, postgres), not a running service.
# Installs them with the system package manager when none are found and we may.
# Looks where tests/support/postgres.py looks: VIR_TEST_POSTGRES_BINDIR,
# pg_config --bindir, /usr/lib/postgresql/<version>/bin, PATH.
set -euo pipefail
have() {
  local dir
  for dir in "${VIR_TEST_POSTGRES_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" \
             $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && return 0
  done
  command -v initdb >/dev/null && command -v postgres >/dev/null
}
# A server of our own is not needed when the tests are pointed at an existing one.
[ -n "${VIR_TEST_POSTGRES_URL:-}" ] && exit 0
have && exit 0
echo "PostgreSQL server binaries (initdb, postgres) not found; installing them" >&2
if command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Debian's package also creates and starts a 'main' cluster; the tests do not use it.
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
elif command -v dnf >/dev/null; then sudo dnf install -y postgresql-server
elif command -v brew >/dev/null; then
  brew install postgresql@16
  VIR_TEST_POSTGRES_BINDIR="$(brew --prefix postgresql@16)/bin"
  echo "set VIR_TEST_POSTGRES_BINDIR=$VIR_TEST_POSTGRES_BINDIR for the tests to find it" >&2
else
  echo "Install the PostgreSQL server (13 or newer) with your package manager, then run make again." >&2
  exit 1
fi
have || { echo "PostgreSQL server binaries still not found after installing" >&2; exit 1; }
