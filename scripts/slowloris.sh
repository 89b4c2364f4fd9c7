#!/usr/bin/env bash
# Slowloris drill: slowhttptest opens 15,000 slow-header connections from 127.0.0.2 while
# normal clients on other addresses (127.0.0.3-12) read articles and probe /health/live at
# 100 req/s each; fails unless the normal clients see no error and p99 <= 50 ms.
#
#     sudo bash scripts/slowloris.sh        # needs root: it runs in its own network namespace
#
# slowhttptest cannot pick its source address, so the drill runs in a private network
# namespace (unshare --net) whose loopback's primary address is 127.0.0.2: the attacker's
# connections come from 127.0.0.2, the normal clients bind 127.0.0.3-12 (quire-bench load
# --source-ips). quire runs with its defaults (per-IP ceiling 1,000 connections, 10 s header
# timeout, rate limits on) except --max-connections 18000, so the per-IP ceiling, not the
# global one, is what stands between the attacker and everyone else.
# Environment: QUIRE_SLOWLORIS_CONNECTIONS (15000), QUIRE_SLOWLORIS_SECONDS (60: the normal
# clients' measured window; the attack runs 30 s longer).
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${QUIRE_SLOWLORIS_CONNECTIONS:-15000}
seconds=${QUIRE_SLOWLORIS_SECONDS:-60}
target_dir=${CARGO_TARGET_DIR:-target}
port=18096

if [ "${1:-}" != "--in-namespace" ]; then
    command -v slowhttptest >/dev/null || {
        echo "slowhttptest is missing: apt-get install -y slowhttptest" >&2
        exit 2
    }
    cargo build --release --locked -p quire-cli -p quire-bench >&2
    exec unshare --net bash "$0" --in-namespace
fi

ip link set lo up
ip addr del 127.0.0.1/8 dev lo
ip addr add 127.0.0.2/8 dev lo
ulimit -n "$(ulimit -Hn)"
pin_server=() pin_load=()
if [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 0) pin_load=(taskset -c 1); fi
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench
work=$(mktemp -d "${TMPDIR:-/tmp}/quire-slowloris.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$quire" migrate --database "sqlite://$work/db" >/dev/null
"$bench" seed --database "$work/db" --users 100 --articles 1000 --favorites 1000 \
    --follows 100 --comments 100 >&2
"${pin_server[@]}" "$quire" --database "sqlite://$work/db" --listen "0.0.0.0:$port" \
    --log-format json --max-connections 18000 >"$work/quire.log" 2>&1 &
quire_pid=$!
pids+=("$quire_pid")
for _ in $(seq 100); do
    curl -fs --interface 127.0.0.3 "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.1
done

echo "== attack: $connections slow-header connections from 127.0.0.2" >&2
"${pin_load[@]}" slowhttptest -H -c "$connections" -r 1000 -i 5 -l $((seconds + 30)) \
    -u "http://127.0.0.1:$port/api/articles" >"$work/slowhttptest.log" 2>&1 &
pids+=($!)
sleep 15

sources=127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11,127.0.0.12
normal() {
    "${pin_load[@]}" "$bench" load --warmup 2s --duration "${seconds}s" --rate 100 \
        --connections 20 --source-ips "$sources" --json --url "$1"
}
normal "http://127.0.0.1:$port/api/articles?limit=20" >"$work/articles.json" 2>/dev/null &
articles=$!
normal "http://127.0.0.1:$port/health/live" >"$work/health.json" 2>/dev/null &
health=$!
peak=0
while kill -0 "$articles" 2>/dev/null; do
    held=$(ss -Htn state established "( sport = :$port )" | awk '$4 ~ /^127\.0\.0\.2:/' | wc -l)
    [ "$held" -gt "$peak" ] && peak=$held
    sleep 2
done
wait "$articles" "$health"
echo "== slowhttptest's last report:" >&2
tr '\r' '\n' <"$work/slowhttptest.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -E "connected|pending|closed|service available" | tail -n 5 >&2 || true
refused=$(curl -fs --interface 127.0.0.3 "http://127.0.0.1:$port/metrics" |
    awk '/^http_connections_refused_total/ {print $2}')

python3 - "$work" "$connections" "$peak" "${refused:-0}" <<'PY'
import json, sys
work, attack, peak, refused = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
failures, parts = [], []
for name in ("articles", "health"):
    s = json.load(open(f"{work}/{name}.json"))
    errors = sum(s["errors"].values())
    p99_ms = s["latency_us"]["p99"] / 1000
    parts.append(f"{name}: {s['responses']} responses, {errors} errors, p99 {p99_ms:.1f} ms, max {s['latency_us']['max'] / 1000:.1f} ms")
    if errors:
        failures.append(f"{name} saw errors {s['errors']}")
    if p99_ms > 50:
        failures.append(f"{name} p99 {p99_ms:.1f} ms > 50 ms")
print(f"slowloris {attack} connections from 127.0.0.2: quire held at most {peak} of them "
      f"(connections refused by the ceilings: {refused}); normal clients from 127.0.0.3-12: "
      + "; ".join(parts))
if failures:
    print("FAILED: " + "; ".join(failures))
    sys.exit(1)
print("ok: normal clients unaffected")
PY
