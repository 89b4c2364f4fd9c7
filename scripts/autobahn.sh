#!/usr/bin/env bash
# Runs the Autobahn WebSocket conformance cases 1-7, 9 and 10 (the `kosoku` runner from PyPI)
# against an echo peer built from quire's WebSocket layer (quire-http/examples/ws_echo.rs),
# and fails unless every case's behaviour is OK, NON-STRICT or INFORMATIONAL.
# Usage: bash scripts/autobahn.sh [report-dir]     (default: autobahn/ in the cargo target dir)
set -euo pipefail
cd "$(dirname "$0")/.."
port="${AUTOBAHN_PORT:-9001}"
command -v kosoku >/dev/null || python3 -m pip install --quiet kosoku
cargo build --release --locked -p quire-http --example ws_echo
target_dir="${CARGO_TARGET_DIR:-target}"
out="${1:-$target_dir/autobahn}"
mkdir -p "$(dirname "$out")"
"$target_dir/release/examples/ws_echo" "127.0.0.1:$port" > /dev/null &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT
sleep 0.5
rm -rf "$out"
cases=()
for c in 1 2 3 4 5 6 7 9 10; do cases+=(-i "$c.*"); done
# The runner's own failure fails the script (its log is shown); so does a report with fewer
# cases than these sections hold (Autobahn 1-7, 9, 10: over 300), so a run that tested
# little cannot pass.
rc=0
kosoku "127.0.0.1:$port" "${cases[@]}" -p 2 -o "$out" > "$out.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || [ ! -s "$out/index.json" ]; then
    echo "autobahn: the runner failed (exit $rc) or wrote no report; its log:" >&2
    tail -30 "$out.log" >&2
    exit 1
fi
min_cases=${AUTOBAHN_MIN_CASES:-300}
python3 - "$out/index.json" "$min_cases" <<'PY'
import collections, json, sys
results = next(iter(json.load(open(sys.argv[1])).values()))
if len(results) < int(sys.argv[2]):
    print(f"autobahn: only {len(results)} cases ran (at least {sys.argv[2]} expected)")
    sys.exit(1)
behavior = collections.Counter(v["behavior"] for v in results.values())
close = collections.Counter(v["behaviorClose"] for v in results.values())
print(f"autobahn: {len(results)} cases; behavior {dict(behavior)}; close {dict(close)}")
bad = sorted(k for k, v in results.items() if v["behavior"] not in ("OK", "NON-STRICT", "INFORMATIONAL"))
if bad:
    print("failed cases:", ", ".join(bad))
    sys.exit(1)
PY
