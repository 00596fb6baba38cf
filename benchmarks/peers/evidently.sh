#!/usr/bin/env bash
# Evidently in its own virtual environment (it pins pandas/numpy versions of its own), for
# benchmarks/monitoring.py's peer column. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.bench/evidently-venv"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import evidently" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -U pip
# evidently 0.7 imports a pandas helper that pandas 3 removed.
"$VENV/bin/pip" install -q evidently "pandas<3"
"$VENV/bin/python" -c "import evidently; print('evidently', evidently.__version__)"
