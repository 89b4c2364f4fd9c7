#!/usr/bin/env bash
# Fuzzes quire with schemathesis against its own OpenAPI document (/api/openapi.json):
# generated valid and invalid requests for every operation, checked for server errors,
# responses that violate the documented schema, undocumented status codes and content types.
#
#     bash scripts/schemathesis.sh [MAX_EXAMPLES]      # default 100 per operation
#
# schemathesis (PyPI, pinned below) is installed once into a virtualenv under
# ~/.cache/quire-schemathesis. quire runs release-built on a fresh SQLite database on
# loopback with rate limits off (the fuzzer sends thousands of requests from one address);
# requests carry the token of a registered user, so signed-in operations are exercised too.
# The WebSocket upgrade (/api/live) and the endless event stream (/api/live/sse) are left
# out: neither is a request/response exchange schemathesis can check.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-100}
version=4.32.5
venv=$HOME/.cache/quire-schemathesis
target_dir=${CARGO_TARGET_DIR:-target}
port=18098

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$version"
fi
cargo build --release --locked -p quire-cli >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-schemathesis.XXXXXX")
cleanup() {
    [ -n "${quire_pid:-}" ] && kill "$quire_pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$target_dir/release/quire" --database "sqlite://$work/db" --media-dir "$work/media" \
    --listen "127.0.0.1:$port" --log-format json \
    --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 >"$work/quire.log" 2>&1 &
quire_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/health/ready" >/dev/null && break; sleep 0.1; done
token=$(curl -fs -X POST "$base/api/users" -H 'Content-Type: application/json' \
    -d '{"user":{"username":"fuzz","email":"fuzz@example.com","password":"password-fuzz"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["token"])')
curl -fs -X POST "$base/api/articles" -H 'Content-Type: application/json' \
    -H "Authorization: Token $token" \
    -d '{"article":{"title":"fuzz","description":"d","body":"b","tagList":["t"]}}' >/dev/null

status=0
"$venv/bin/schemathesis" run "$base/api/openapi.json" --url "$base" \
    --header "Authorization: Token $token" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
    --exclude-path /api/live --exclude-path /api/live/sse \
    --max-examples "$examples" --request-timeout 10 --continue-on-failure \
    --report junit --report-dir "$work/report" || status=$?
if grep -q '"level":"ERROR"' "$work/quire.log"; then
    echo "quire logged errors during the run:" >&2
    grep '"level":"ERROR"' "$work/quire.log" | head -20 >&2
    status=1
fi
exit "$status"
