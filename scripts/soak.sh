#!/usr/bin/env bash
# Soak: quire under a steady mixed load with connection churn for a bounded time, sampled
# every 10 s; fails unless memory and descriptors stay flat, no socket is left in
# CLOSE_WAIT and no request fails.
#
#     bash scripts/soak.sh [MINUTES]        # default 30
#
# Load (all open loop, from quire-bench load pinned to core 1; quire on core 0):
#   - 300 req/s of GET /api/articles?limit=20 on 32 keep-alive connections;
#   - 200 req/s of GET /api/articles/article-123, a new connection for every request (churn);
#   - 50 req/s of POST .../comments (durable writes, signed in).
# Warm-up before sampling: QUIRE_SOAK_WARM_WRITES (30000) comments of 1 KiB are written at
# full speed, so SQLite's writer page cache (16 MB, bounded) is already full when the
# measurement starts; otherwise its fill (about 0.25 MB/min at 50 writes/s) would look like
# a leak for an hour.
# Verdict ("flat"): a least-squares line through the RSS samples after the first third must
# rise by at most QUIRE_SOAK_MAX_SLOPE_MB_PER_H (2) MB per hour, so a slow steady leak fails
# however small each third's growth; also, the highest RSS of the last third may exceed the
# highest of the middle third by at most QUIRE_SOAK_RSS_SLACK_MB (4); open descriptors at
# most 16 more (the churning connections in flight); no socket stuck in CLOSE_WAIT (seen at
# a sample and still there a second later); 0 failed requests.
# Samples go to $QUIRE_SOAK_OUT (default target/soak.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
rss_slack_mb=${QUIRE_SOAK_RSS_SLACK_MB:-4}
max_slope=${QUIRE_SOAK_MAX_SLOPE_MB_PER_H:-2}
warm_writes=${QUIRE_SOAK_WARM_WRITES:-30000}
target_dir=${CARGO_TARGET_DIR:-target}
out=${QUIRE_SOAK_OUT:-$target_dir/soak.csv}
port=${QUIRE_SOAK_PORT:-18095}

cargo build --release --locked -p quire-cli -p quire-bench >&2
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench
pin_server=() pin_load=()
if [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 0) pin_load=(taskset -c 1); fi

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-soak.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$quire" migrate --database "sqlite://$work/db" >/dev/null
"$bench" seed --database "$work/db" --users 1000 --articles 10000 --favorites 50000 \
    --follows 5000 --comments 10000 >&2
"${pin_server[@]}" "$quire" --database "sqlite://$work/db" --listen "127.0.0.1:$port" \
    --log-format json --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 \
    >"$work/quire.log" 2>&1 &
quire_pid=$!
pids+=("$quire_pid")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
token=$(curl -fs -X POST "http://127.0.0.1:$port/api/users/login" -H 'Content-Type: application/json' \
    -d '{"user":{"email":"user1@example.com","password":"password-bench"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["token"])')
printf '{"comment":{"body":"soak comment"}}' >"$work/comment.json"
python3 -c 'import json; print(json.dumps({"comment": {"body": "w" * 1024}}))' >"$work/warm.json"
echo "== warm-up: $warm_writes comments of 1 KiB" >&2
# 1,000/s for warm_writes/1000 seconds (open loop), so the count is what is asked for.
"${pin_load[@]}" "$bench" load --url "http://127.0.0.1:$port/api/articles/article-123/comments" \
    --method POST --rate 1000 --connections 16 --warmup 0s --duration "$((warm_writes / 1000))s" \
    --header "Authorization: Token $token" --header 'Content-Type: application/json' \
    --body-file "$work/warm.json" --json >"$work/warm-writes.json" 2>/dev/null
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); e=sum(s["errors"].values()); print(f"warm-up: {s[\"responses\"]} writes, {e} errors", file=sys.stderr); sys.exit(1 if e else 0)' "$work/warm-writes.json"

seconds=$((minutes * 60))
load() { "${pin_load[@]}" "$bench" load --warmup 0s --duration "${seconds}s" --json "$@"; }
base="http://127.0.0.1:$port"
load --url "$base/api/articles?limit=20" --rate 300 --connections 32 >"$work/reads.json" 2>/dev/null &
pids+=($!)
load --url "$base/api/articles/article-123" --rate 200 --connections 16 \
    --requests-per-connection 1 >"$work/churn.json" 2>/dev/null &
pids+=($!)
load --url "$base/api/articles/article-123/comments" --method POST --rate 50 --connections 8 \
    --header "Authorization: Token $token" --header 'Content-Type: application/json' \
    --body-file "$work/comment.json" >"$work/writes.json" 2>/dev/null &
pids+=($!)

mkdir -p "$(dirname "$out")"
echo "second,rss_kb,fds,close_wait_seen,close_wait" >"$out"
# Sockets in CLOSE_WAIT on quire's port. A churning client's socket passes through it for
# an instant before quire closes its side; one still there a second later is stuck.
close_wait() { ss -Htan state close-wait "( sport = :$port )" | awk '{print $3, $4}' | sort; }
echo "== soak: $minutes min, sampling every 10 s into $out" >&2
start=$(date +%s)
while :; do
    now=$(($(date +%s) - start))
    [ "$now" -ge "$seconds" ] && break
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$quire_pid/status")
    fds=$(ls "/proc/$quire_pid/fd" | wc -l)
    seen=$(close_wait)
    stuck=0
    if [ -n "$seen" ]; then
        sleep 1
        stuck=$(comm -12 <(echo "$seen") <(close_wait) | grep -c . || true)
    fi
    echo "$now,$rss,$fds,$(echo -n "$seen" | grep -c . || true),$stuck" >>"$out"
    printf '\r[%4ds] rss %d kB, fds %d, close_wait stuck %d ' "$now" "$rss" "$fds" "$stuck" >&2
    sleep 10
done
echo >&2
wait "${pids[1]}" "${pids[2]}" "${pids[3]}"

python3 - "$out" "$work" "$rss_slack_mb" "$minutes" "$max_slope" <<'PY'
import csv, json, sys
out, work, slack_mb, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
max_slope = float(sys.argv[5])
rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(out))]
third = max(1, len(rows) // 3)
middle, last = rows[third:2 * third], rows[2 * third:]
failures = []
# Least-squares slope of RSS (MB) against time (hours) after the first third.
fit = rows[third:]
if len(fit) < 3:
    failures.append(f"too few samples ({len(rows)}) to fit a slope: run longer")
    slope = float("nan")
else:
    xs = [r["second"] / 3600 for r in fit]
    ys = [r["rss_kb"] / 1024 for r in fit]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    if slope > max_slope:
        failures.append(f"RSS rises {slope:.2f} MB/h over the last two thirds (at most {max_slope})")
rss_mid, rss_last = max(r["rss_kb"] for r in middle) / 1024, max(r["rss_kb"] for r in last) / 1024
fds_mid, fds_last = max(r["fds"] for r in middle), max(r["fds"] for r in last)
close_wait = max(r["close_wait"] for r in rows)
if rss_last > rss_mid + slack_mb:
    failures.append(f"RSS grew: {rss_mid:.1f} MB -> {rss_last:.1f} MB")
if fds_last > fds_mid + 16:
    failures.append(f"descriptors grew: {fds_mid} -> {fds_last}")
if close_wait:
    failures.append(f"{close_wait} sockets stuck in CLOSE_WAIT")
loads = {}
for name in ("reads", "churn", "writes"):
    summary = json.load(open(f"{work}/{name}.json"))
    errors = sum(summary["errors"].values())
    loads[name] = (summary["responses"], errors)
    if errors:
        failures.append(f"{name}: {errors} failed requests {summary['errors']}")
first = rows[0]
print(f"soak {minutes} min, {len(rows)} samples: RSS {first['rss_kb']/1024:.1f} MB at start, "
      f"max {rss_mid:.1f} MB in the middle third, {rss_last:.1f} MB in the last; "
      f"RSS slope {slope:.2f} MB/h after the first third; "
      f"fds {first['fds']} at start, max {fds_mid} middle, {fds_last} last; stuck in CLOSE_WAIT max {close_wait} "
      f"(passing through it at a sample: {sum(1 for r in rows if r['close_wait_seen'])} samples); "
      + ", ".join(f"{n} {r} responses / {e} errors" for n, (r, e) in loads.items()))
if failures:
    print("FAILED: " + "; ".join(failures))
    sys.exit(1)
print("ok: flat memory and descriptors, no CLOSE_WAIT, no failed request")
PY
