#!/usr/bin/env bash
# Copies the console's browser libraries (htmx, uPlot, Swagger UI) from npm into
# src/watchkeep/ui/static/vendor/, which the wheel ships: nothing comes from a CDN at run time.
# Versions are pinned by src/watchkeep/ui/npm/package-lock.json; only the dist files the
# pages load and each package's licence are copied. Idempotent: does nothing when
# vendor/.stamp holds the lockfile's sha256, so `make install` reruns it only when the lock changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
npm_dir="$root/src/watchkeep/ui/npm"
vendor="$root/src/watchkeep/ui/static/vendor"
lock="$npm_dir/package-lock.json"

want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ -f "$vendor/.stamp" ] && [ "$(cat "$vendor/.stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "vendor-ui: npm not found; install Node.js and npm: scripts/install-system-deps.sh" >&2
  exit 1
fi

# --ignore-scripts: no package runs code here (swagger-ui-dist's telemetry dependency has an install script).
(cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

modules="$npm_dir/node_modules"
tmp="$vendor.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/swagger-ui" "$tmp/licenses"
cp "$modules/htmx.org/dist/htmx.min.js" "$tmp/"
cp "$modules/uplot/dist/uPlot.iife.min.js" "$modules/uplot/dist/uPlot.min.css" "$tmp/"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png; do
  cp "$modules/swagger-ui-dist/$f" "$tmp/swagger-ui/"
done
cp "$modules/htmx.org/LICENSE" "$tmp/licenses/htmx.org.LICENSE"
cp "$modules/uplot/LICENSE" "$tmp/licenses/uplot.LICENSE"
cp "$modules/swagger-ui-dist/LICENSE" "$tmp/licenses/swagger-ui-dist.LICENSE"
cp "$modules/swagger-ui-dist/NOTICE" "$tmp/licenses/swagger-ui-dist.NOTICE"
cp "$modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" "$tmp/licenses/swagger-ui-bundle.third-party.txt"
echo "$want" >"$tmp/.stamp"
# Swap in whole: an interrupted run leaves no half-filled vendor/ behind a valid stamp.
rm -rf "$vendor"
mv "$tmp" "$vendor"
echo "vendor-ui: browser assets copied to ${vendor#"$root"/}"
