#!/usr/bin/env bash
# What one more idle WebSocket costs a warm quire: server RSS after 9,000 idle subscribers and
# after 18,000 (in two batches, each settled before its reading), so the second batch's growth
# is the marginal cost per connection, without the one-time costs the first batch pays
# (runtime, allocator and buffer warm-up). bench-ws.sh measures the goal's own figure (all
# growth from a fresh start, divided by all connections); this separates the two. One command:
#
#     bash scripts/bench-ws-marginal.sh
#
# quire runs on core 0, the clients (`quire-bench ws`, two source addresses per batch) on core 1.
# Environment (optional): QUIRE_WS_BATCH=9000 connections per batch.
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${QUIRE_WS_BATCH:-9000}
port=18092
cargo build --release -p quire-cli -p quire-bench >&2
target_dir=${CARGO_TARGET_DIR:-target}
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench
work=$(mktemp -d "${TMPDIR:-/tmp}/quire-ws-marginal.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$quire" migrate --database "sqlite://$work/db" >/dev/null 2>&1
taskset -c 0 "$quire" --database "sqlite://$work/db" --listen "127.0.0.1:$port" --log-format json \
    --live-max-per-ip 100000 --live-max-connections 100000 --max-connections 100000 \
    --max-connections-per-ip 100000 --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 \
    >"$work/quire.log" 2>&1 &
quire_pid=$!
pids+=("$quire_pid")
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$quire_pid/status"; }
# batch SOURCES HOLD: opens $batch idle subscribers from SOURCES and waits until all are open.
batch() {
    taskset -c 1 "$bench" ws --url "ws://127.0.0.1:$port/api/live?tag=marginal" \
        --connections "$batch" --source-ips "$1" --hold "$2" --json >"$work/batch-$1.json" 2>"$work/batch-$1.err" &
    local client=$!
    pids+=("$client")
    until grep -q 'connected in' "$work/batch-$1.err" 2>/dev/null; do
        kill -0 "$client" 2>/dev/null || { cat "$work/batch-$1.err" >&2; exit 1; }
        sleep 0.2
    done
    sleep 3
}
fresh=$(rss_kib)
batch 127.0.0.2,127.0.0.3 60s
first=$(rss_kib)
batch 127.0.0.4,127.0.0.5 30s
second=$(rss_kib)
python3 - "$fresh" "$first" "$second" "$batch" "$(git describe --always --dirty)" <<'PY'
import sys
commit = sys.argv[5]
fresh, first, second, batch = (int(v) for v in sys.argv[1:5])
per = lambda a, b, n: (b - a) * 1024 / n
print(f"commit {commit}: server RSS {fresh} KiB fresh, {first} KiB with {batch}, {second} KiB with {2 * batch} idle subscribers")
print(f"all growth / all connections (bench-ws.sh's figure): {per(fresh, second, 2 * batch):.0f} B")
print(f"first batch: {per(fresh, first, batch):.0f} B per connection; second batch (marginal): {per(first, second, batch):.0f} B per connection")
PY
