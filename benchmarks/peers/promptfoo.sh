#!/usr/bin/env bash
# promptfoo from npm in its own folder, for benchmarks/evals.py's peer column. 0.121.20 is the
# newest release that still runs on this machine's Node 20. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="$ROOT/.bench/promptfoo"
VERSION="0.121.20"
BIN="$DIR/node_modules/.bin/promptfoo"
if [ -x "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/promptfoo/package.json" 2>/dev/null; then
  exit 0
fi
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name": "promptfoo-peer", "private": true}' > "$DIR/package.json"
npm install --prefix "$DIR" --no-audit --no-fund --silent "promptfoo@$VERSION"
echo "promptfoo $VERSION"
