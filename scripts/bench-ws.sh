#!/usr/bin/env bash
# Live connections benchmark (issue 4's memory goal): what an idle, subscribed WebSocket costs
# quire, against a plain axum WebSocket server with default settings (`quire-bench ws-peer`).
# One command; writes BENCHMARKS-ws.md and makes sure BENCHMARKS.md links to it:
#
#     bash scripts/bench-ws.sh
#
# Steps: build release binaries; start quire on core 0; open N idle WebSocket connections
# subscribed to one tag (`quire-bench ws`, core 1, over 127.0.0.2-5); read the server's RSS
# and the kernel's socket memory; hold them while `quire-bench load` sends GETs at a fixed
# rate; then write one article with the tag and time its arrival at every subscriber. Then
# the same idle connections against the ws-peer (core 0, alone), and the same probe event, which
# the peer broadcasts to all of them through a tokio broadcast channel.
#
# Environment (all optional):
#   QUIRE_WS_CONNECTIONS=18000   idle connections (one server process may open 20,000 files)
#   QUIRE_WS_HOLD=60s            how long they are held (the load runs inside this window)
#   QUIRE_WS_RATE=2000           GET /api/articles/SLUG per second during the hold (open loop)
#   QUIRE_WS_LOAD=30s            measured window of that load (after 2s of warm-up)
#   QUIRE_WS_OUT=BENCHMARKS-ws.md
set -euo pipefail
cd "$(dirname "$0")/.."

connections=${QUIRE_WS_CONNECTIONS:-18000}
hold=${QUIRE_WS_HOLD:-60s}
rate=${QUIRE_WS_RATE:-2000}
load_duration=${QUIRE_WS_LOAD:-30s}
out=${QUIRE_WS_OUT:-BENCHMARKS-ws.md}
port=18090
peer_port=18091
sources=127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5
goal_bytes=1536

echo "== building release binaries" >&2
cargo build --release -p quire-cli -p quire-bench
target_dir=${CARGO_TARGET_DIR:-target}
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-bench-ws.XXXXXX")
quire_pid=
peer_pid=
cleanup() {
    # Only the servers this script started, by their process ids.
    [ -n "$quire_pid" ] && kill "$quire_pid" 2>/dev/null || true
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== quire (core 0)" >&2
quire_cmd="taskset -c 0 $quire --database sqlite://\$TMP/db --listen 127.0.0.1:$port --log-format json --live-max-per-ip 100000 --live-max-connections 100000 --max-connections 100000 --max-connections-per-ip 100000 --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0"
start_quire() {
    taskset -c 0 "$quire" --database "sqlite://$work/db" --listen "127.0.0.1:$port" --log-format json \
        --live-max-per-ip 100000 --live-max-connections 100000 --max-connections 100000 \
        --max-connections-per-ip 100000 --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 >>"$work/quire.log" 2>&1 &
    quire_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null
}
start_quire
api=http://127.0.0.1:$port/api
token=$(curl -fsS -X POST "$api/users" -H 'Content-Type: application/json' \
    -d '{"user":{"username":"wsbench","email":"wsbench@example.com","password":"password-bench"}}' |
    jq -r .user.token)
slug=$(curl -fsS -X POST "$api/articles" -H 'Content-Type: application/json' -H "Authorization: Token $token" \
    -d '{"article":{"title":"Read under load","description":"d","body":"b","tagList":["elsewhere"]}}' |
    jq -r .article.slug)
# The "before" RSS must come from a process holding no freed memory the connections could
# reuse (a sign-up's password hash alone is 19 MiB): restart quire on the same database, so
# the baseline is a fresh process that has served nothing. The token stays valid (the signing
# secret is kept beside the database).
kill "$quire_pid"
wait "$quire_pid" 2>/dev/null || true
start_quire

ws_cmd="taskset -c 1 $bench ws --url ws://127.0.0.1:$port/api/live?tag=wsbench --connections $connections --source-ips $sources --server-pid \$QUIRE_PID --hold $hold --event-url $api/articles --token \$TOKEN --json"
load_cmd="taskset -c 1 $bench load --url $api/articles/$slug --rate $rate --duration $load_duration --warmup 2s --server-pid \$QUIRE_PID --json"
echo "== $connections idle subscribers, held $hold; load $rate GET/s inside the hold" >&2
taskset -c 1 "$bench" ws --url "ws://127.0.0.1:$port/api/live?tag=wsbench" --connections "$connections" \
    --source-ips "$sources" --server-pid "$quire_pid" --hold "$hold" --event-url "$api/articles" \
    --token "$token" --ready-file "$work/ready" --json >"$work/quire-ws.json" &
ws_pid=$!
while [ ! -e "$work/ready" ]; do
    kill -0 "$ws_pid" 2>/dev/null || { echo "quire-bench ws ended early" >&2; exit 1; }
    sleep 0.5
done
taskset -c 1 "$bench" load --url "$api/articles/$slug" --rate "$rate" --duration "$load_duration" \
    --warmup 2s --server-pid "$quire_pid" --json >"$work/load.json"
wait "$ws_pid"
kill "$quire_pid"
wait "$quire_pid" 2>/dev/null || true
quire_pid=

echo "== ws-peer (core 0)" >&2
peer_cmd="taskset -c 0 $bench ws-peer --listen 127.0.0.1:$peer_port"
taskset -c 0 "$bench" ws-peer --listen "127.0.0.1:$peer_port" >"$work/peer.out" 2>&1 &
peer_pid=$!
sleep 1
# The same probe as quire's: the peer broadcasts the POST's body to every connection.
taskset -c 1 "$bench" ws --url "ws://127.0.0.1:$peer_port/api/live?tag=bench" --connections "$connections" \
    --source-ips "$sources" --server-pid "$peer_pid" --hold 10s \
    --event-url "http://127.0.0.1:$peer_port/api/articles" --token peer --json >"$work/peer-ws.json"
kill "$peer_pid"
wait "$peer_pid" 2>/dev/null || true
peer_pid=

commit=$(git describe --always --dirty)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
python3 - "$work" "$out" "$goal_bytes" <<EOF
import json, sys
work, out, goal = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = json.load(open(f"{work}/quire-ws.json"))
p = json.load(open(f"{work}/peer-ws.json"))
hold_note = "" if q["hold_secs"] >= 300 else ", shorter than the issue's 5 minutes"
l = json.load(open(f"{work}/load.json"))
f = q["fan_out"]
pf = p["fan_out"]
kib = lambda b: f"{b / 1024:.2f} KiB ({b:.0f} B)"
met = lambda ok: "**met**" if ok else "**not met**"
p99_ms = l["latency_us"]["p99"] / 1000
load_errors = sum(v for v in l["errors"].values() if isinstance(v, (int, float)))
lines = [
 "# Live connections (WebSocket) benchmark",
 "",
 "Generated by \`bash scripts/bench-ws.sh\` from measured results: do not edit by hand, run it again.",
 "",
 "- **Machine**: $cpu, $(nproc) cores",
 "- **Date**: $(date -u '+%Y-%m-%d %H:%M UTC')",
 "- **Commit**: \`$commit\`",
 "- **Command**: \`bash scripts/bench-ws.sh\` (QUIRE_WS_CONNECTIONS=$connections, QUIRE_WS_HOLD=$hold, QUIRE_WS_RATE=$rate, QUIRE_WS_LOAD=$load_duration)",
 "- **quire**: \`$quire_cmd\`",
 "- **peer**: \`$peer_cmd\` (axum 0.8, tungstenite defaults: 128 KiB read buffer; every connection subscribed to one tokio broadcast channel, which the probe's POST feeds), loaded alone after quire stopped",
 "- **clients**: \`$ws_cmd\` (tokio-tungstenite, answering pings; spread over $sources); then \`$load_cmd\` inside the hold",
 "",
 "RSS per connection is the server's VmRSS growth from before the first connect to 3 s after the last, divided by the connections; the \"before\" reading is taken from a quire restarted after the set-up sign-up, so it has served nothing and holds no freed memory the connections could reuse. Kernel socket memory is \`/proc/net/sockstat\` \`TCP mem\` pages (both ends of each loopback connection, machine-wide) and, for the server's side only, the sum of \`ss -tm\` skmem (r+t+f+w+o+bl); it is not in the RSS.",
 "",
 "## Goals",
 "",
 "| goal | measured | met |",
 "|---|---|---|",
 f"| ≤ 1.5 KiB server RSS per idle subscribed connection ({q['connected']} connections; issue 18, was 2 KiB) | {kib(q['server_rss_per_connection'])} | {met(q['server_rss_per_connection'] <= goal)} |",
 f"| {l['rate']:.0f} GET/s open loop beside them: p99 ≤ 20 ms | p99 {p99_ms:.2f} ms, {l['responses']} responses, {load_errors} errors | {met(p99_ms <= 20 and load_errors == 0)} |",
 f"| zero connections lost over the hold ({q['hold_secs']:.0f} s{hold_note}) | {q['lost']} lost, {q['connect_failed']} failed to connect | {met(q['lost'] == 0 and q['connect_failed'] == 0)} |",
 f"| one event reaches all subscribers within 100 ms p99 of its write's response (issue 18, was 200 ms) | {f['delivered']} of {f['subscribers']}; p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.1f} ms | {met(f['delivered'] == f['subscribers'] and f['p99_ms'] <= 100)} |",
 "",
 "## quire vs the axum peer, per idle connection",
 "",
 "| | quire | axum peer (defaults) |",
 "|---|---:|---:|",
 f"| connections open | {q['connected']} | {p['connected']} |",
 f"| server RSS per connection | {kib(q['server_rss_per_connection'])} | {kib(p['server_rss_per_connection'])} |",
 f"| server RSS before → connected | {q['server_rss_before']/2**20:.1f} → {q['server_rss_connected']/2**20:.1f} MiB | {p['server_rss_before']/2**20:.1f} → {p['server_rss_connected']/2**20:.1f} MiB |",
 f"| quire RSS after the hold, load and event | {q['server_rss_end']/2**20:.1f} MiB | — |",
 f"| kernel TCP memory per connection (sockstat, both ends) | {q['kernel_socket_bytes_per_connection']:.0f} B | {p['kernel_socket_bytes_per_connection']:.0f} B |",
 f"| server-side skmem (ss), all sockets | {q['server_skmem_bytes']} B over {q['server_skmem_sockets']} | {p['server_skmem_bytes']} B over {p['server_skmem_sockets']} |",
 f"| connect time for all (256 handshakes in flight) | {q['connect_secs']:.1f} s, p99 {q['connect_p99_ms']:.0f} ms | {p['connect_secs']:.1f} s, p99 {p['connect_p99_ms']:.0f} ms |",
 f"| lost during hold | {q['lost']} over {q['hold_secs']:.0f} s | {p['lost']} over {p['hold_secs']:.0f} s |",
 f"| one event to every subscriber after the write's response: p50 / p99 / max | {f['p50_ms']:.1f} / {f['p99_ms']:.1f} / {f['max_ms']:.1f} ms ({f['delivered']} of {f['subscribers']}) | {pf['p50_ms']:.1f} / {pf['p99_ms']:.1f} / {pf['max_ms']:.1f} ms ({pf['delivered']} of {pf['subscribers']}) |",
 f"| fan-out p99, quire ÷ peer | {f['p99_ms'] / pf['p99_ms']:.2f}× | 1 |",
 f"| client RSS per connection (quire-bench, 4 KiB read buffer) | {kib(q['client_rss_per_connection'])} | {kib(p['client_rss_per_connection'])} |",
 "",
]
open(out, "w").write("\n".join(lines))
EOF
# BENCHMARKS.md is rewritten by scripts/bench.sh; only a link to this file is added there.
if [ -f BENCHMARKS.md ] && ! grep -q 'BENCHMARKS-ws.md' BENCHMARKS.md; then
    printf '\n<!-- ws:begin -->\nLive connections (WebSocket memory, fan-out): see [BENCHMARKS-ws.md](BENCHMARKS-ws.md), written by `bash scripts/bench-ws.sh`.\n<!-- ws:end -->\n' >>BENCHMARKS.md
fi
echo "== wrote $out" >&2
cat "$out"
