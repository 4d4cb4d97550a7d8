#!/usr/bin/env bash
# Checks the served OpenAPI document against the live server with schemathesis (an
# independent tool from PyPI): every generated request must get a documented status, a
# documented content type and a body matching its documented schema, and never a 5xx.
# Usage: scripts/openapi-check.sh [path/to/verihook]   (default: target/release/verihook)
#
# Not checked: that every schema-valid request is accepted (the API enforces rules a JSON
# schema does not state: text without control characters, a cursor that names an item,
# a customer type that never changes) and that every schema-invalid one is refused (null
# is read as absent). Those rules are covered by the API tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/verihook}
work=$(mktemp -d)
python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"

"$bin" serve --dev --listen 127.0.0.1:0 --database-url "sqlite://$work/openapi.db" \
    >"$work/out.txt" 2>"$work/err.txt" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    grep -q "admin token:" "$work/out.txt" 2>/dev/null && break
    sleep 0.1
done
base=$(sed -n 's/^verihook listening on //p' "$work/out.txt")
key=$(awk '/API key:/ {print $3}' "$work/out.txt")
admin=$(awk '/admin token:/ {print $3}' "$work/out.txt")
cat >"$work/schemathesis.toml" <<TOML
[auth.openapi.organizationKey]
bearer = "$key"

[auth.openapi.adminToken]
bearer = "$admin"
TOML
cd "$work"
# The event stream answers a response that never ends (Server-Sent Events): the API tests
# and `verihook listen`'s tests cover it.
schemathesis run "$base/openapi.json" --seed 1 --max-examples 50 \
    --exclude-path /v1/events/stream \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
