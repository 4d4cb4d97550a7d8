#!/usr/bin/env bash
# Standard Webhooks deliveries from the running release server, verified with the official
# libraries nobody here wrote: `standardwebhooks` from PyPI and from npm (pinned).
# Usage: scripts/standard-webhooks/run.sh [path/to/verihook]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin=$(realpath "${1:-target/release/verihook}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip install --quiet --disable-pip-version-check --target "$work/py" "standardwebhooks==1.1.0"
cp "$here/package.json" "$work/"
(cd "$work" && npm install --silent --no-audit --no-fund >/dev/null)
PYTHONPATH="$work/py" python3 "$here/check.py" "$bin" "$work/captured.json"
cp "$here/verify.mjs" "$work/"
node "$work/verify.mjs" "$work/captured.json"
