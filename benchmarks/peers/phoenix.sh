#!/usr/bin/env bash
# Creates the Arize Phoenix peer environment used by benchmarks/console.py (its trace list
# in the browser, through benchmarks/peers/phoenix_console.py). It lives apart from the
# project venv so the peer's pins never touch ours. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${PHOENIX_VENV:-$root/.bench/phoenix}"
version="20.26.1"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
show() { "$venv/bin/python" -c "import importlib.metadata as m; print('arize-phoenix', m.version('arize-phoenix'))"; }
if [[ -x "$venv/bin/phoenix" ]] && [[ "$(show 2>/dev/null)" == "arize-phoenix $version" ]]; then
    show
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "arize-phoenix==$version"
show
