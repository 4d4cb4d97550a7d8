#!/usr/bin/env bash
# The example receivers (examples/express-receiver, examples/flask-receiver) graded by
# `verihook check` against the webhook testing checklist: each must pass (exit 0).
# Usage: scripts/examples-check.sh [path/to/verihook]   (default: target/release/verihook)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/verihook}
secret=whsec_examples_check_$$
(cd examples/express-receiver && npm ci --silent --no-audit --no-fund)
python3 -m pip install --quiet --disable-pip-version-check -r examples/flask-receiver/requirements.txt

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

# grade NAME PORT COMMAND...: starts the receiver, waits for its port, checks it.
grade() {
    local name=$1 port=$2
    shift 2
    WEBHOOK_SECRET=$secret PORT=$port "$@" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    echo "== $name"
    "$bin" check "http://127.0.0.1:$port/webhooks/verification" --secret "$secret"
}

grade express 3901 node examples/express-receiver/server.js
grade flask 3902 python3 examples/flask-receiver/app.py
