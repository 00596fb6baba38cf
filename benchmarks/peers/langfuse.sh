#!/usr/bin/env bash
# Creates the Langfuse peer environment used by benchmarks/sdk_overhead.py.
# It lives apart from the project venv so the peer's pins never touch ours.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${LANGFUSE_VENV:-$root/.bench/langfuse-venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet langfuse
"$venv/bin/python" -c "import langfuse, importlib.metadata as m; print('langfuse', m.version('langfuse'))"
