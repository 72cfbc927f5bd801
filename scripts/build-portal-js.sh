#!/usr/bin/env bash
# Builds vir/portal/static/vir-blind.js, the portal's browser-side pseudonymisation,
# from vir/portal/js (its own source and the pinned @noble/curves, bundled by esbuild:
# no CDN). The bundle is committed; --check rebuilds it in a temporary folder and
# fails when the committed one differs (make check, CI).
set -euo pipefail
cd "$(dirname "$0")/.."
src=vir/portal/js
out=vir/portal/static/vir-blind.js
command -v npm >/dev/null || { echo "building the portal's script needs npm" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$src/blind.js" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --silent >/dev/null 2>&1 \
  || npm ci --no-audit --no-fund --silent >/dev/null)
(cd "$work" && ./node_modules/.bin/esbuild blind.js --bundle --format=iife \
  --global-name=virBlind --target=es2020 --minify --legal-comments=inline \
  --outfile=bundle.js --log-level=warning)
if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$work/bundle.js" "$out"; then
    echo "$out differs from what scripts/build-portal-js.sh builds: run it and commit" >&2
    exit 1
  fi
  echo "$out: as built from $src"
else
  cp "$work/bundle.js" "$out"
  echo "wrote $out ($(wc -c <"$out") bytes)"
fi
