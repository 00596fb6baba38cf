#!/usr/bin/env bash
# Debian packages the test suite needs (PostgreSQL server binaries, redis-server, Prometheus, Alertmanager). Idempotent: does
# nothing when they are already there. Runs apt-get as root, or through sudo.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# prometheus (with promtool): the monitoring tests scrape /metrics and check deploy/prometheus/rules.yml.
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# prometheus-alertmanager: the alert channel is tested against a real Alertmanager.
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# nodejs, npm: `make install` copies the console's browser libraries from npm (scripts/vendor-ui.sh).
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# chromium: the console's browser tests (Playwright drives it; no browser download).
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
