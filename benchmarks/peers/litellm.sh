#!/usr/bin/env bash
# Creates the LiteLLM proxy peer environment used by benchmarks/gateway.py.
# It lives apart from the project venv so the peer's pins never touch ours.
# The version is pinned exactly: 1.82.7, 1.82.8 and every 1.107.x were compromised.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${LITELLM_VENV:-$root/.bench/litellm-venv}"
version="1.108.7"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "litellm[proxy]==$version"
"$venv/bin/python" -c "import importlib.metadata as m; v = m.version('litellm'); print('litellm', v); assert v == '$version', v"
