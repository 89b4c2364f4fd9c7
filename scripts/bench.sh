#!/usr/bin/env bash
# quire's benchmark suite: builds the release binaries, seeds a temporary database, runs
# every scenario against quire and against the bare hyper peer (`quire-bench hello`) and
# rewrites BENCHMARKS.md from the measured JSON results. One command:
#
#     bash scripts/bench.sh
#
# Placement (needs 2 cores): each server is pinned to core 0, the load generator to core 1,
# so the client never steals the server's CPU. Both servers idle while the other is loaded.
#
# Environment (all optional):
#   QUIRE_BENCH_SCALE=full|small   data set: full = 10K users, 100K articles, 1M favorites,
#                                  50K follows, 100K comments (default); small = a tenth
#                                  (1K users, 10K articles, 100K favorites)
#   QUIRE_BENCH_DURATION=10s       measured window of each run
#   QUIRE_BENCH_WARMUP=2s          unmeasured load before it
#   QUIRE_BENCH_CONNECTIONS=100    connections of the CPU-per-request scenarios
#   QUIRE_BENCH_MANY=10000         connections of the many-connections run
#   QUIRE_BENCH_OUT=BENCHMARKS.md  where the report goes
# With the defaults the whole run takes about 5 minutes after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=${QUIRE_BENCH_SCALE:-full}
duration=${QUIRE_BENCH_DURATION:-10s}
warmup=${QUIRE_BENCH_WARMUP:-2s}
connections=${QUIRE_BENCH_CONNECTIONS:-100}
many=${QUIRE_BENCH_MANY:-10000}
out=${QUIRE_BENCH_OUT:-BENCHMARKS.md}
quire_port=18080
hello_port=18081

case $scale in
full) seed_args=(--users 10000 --articles 100000 --favorites 1000000 --follows 50000 --comments 100000 --tags 50) ;;
small) seed_args=(--users 1000 --articles 10000 --favorites 100000 --follows 5000 --comments 10000 --tags 50) ;;
*) echo "QUIRE_BENCH_SCALE must be full or small, not $scale" >&2; exit 2 ;;
esac

echo "== building release binaries" >&2
cargo build --release -p quire-cli -p quire-bench
target_dir=${CARGO_TARGET_DIR:-target}
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-bench.XXXXXX")
db=$work/bench.db
results=$work/results.jsonl
quire_pid=
hello_pid=
cleanup() {
    # Only the two servers this script started, by their process ids.
    [ -n "$quire_pid" ] && kill "$quire_pid" 2>/dev/null || true
    [ -n "$hello_pid" ] && kill "$hello_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== seeding $scale data set" >&2
"$quire" migrate --database "sqlite://$db" >/dev/null
seed_line=$("$bench" seed --database "$db" "${seed_args[@]}")
echo "$seed_line" >&2

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== starting quire (core 0) and hello (core 0)" >&2
quire_cmd="taskset -c 0 $quire --database sqlite://\$DB --listen 127.0.0.1:$quire_port --log-format json"
taskset -c 0 "$quire" --database "sqlite://$db" --listen "127.0.0.1:$quire_port" --log-format json \
    >"$work/quire.log" 2>&1 &
quire_pid=$!
taskset -c 0 "$bench" hello --listen "127.0.0.1:$hello_port" >"$work/hello.out" 2>&1 &
hello_pid=$!

for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$quire_port/health/ready" >/dev/null 2>&1 &&
        curl -fsS "http://127.0.0.1:$hello_port/" >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$quire_port/health/ready" >/dev/null
curl -fsS "http://127.0.0.1:$hello_port/" >/dev/null

token=$(curl -fsS -X POST "http://127.0.0.1:$quire_port/api/users/login" \
    -H 'Content-Type: application/json' \
    -d '{"user":{"email":"user1@example.com","password":"password-bench"}}' | jq -r .user.token)
[ -n "$token" ] && [ "$token" != null ] || { echo "login as user1 failed" >&2; exit 1; }
auth="Authorization: Token $token"

# run SCENARIO GOAL_JSON quire|hello PATH [load options...]
# Runs one measurement with the client on core 1 and appends its JSON result, with the
# command as it ran (the token shown as $TOKEN), to the results file.
run() {
    local scenario=$1 goal=$2 target=$3 path=$4
    shift 4
    local port=$quire_port pid=$quire_pid pid_name='$QUIRE_PID'
    if [ "$target" = hello ]; then
        port=$hello_port pid=$hello_pid pid_name='$HELLO_PID'
    fi
    local args=(--url "http://127.0.0.1:$port$path" --duration "$duration")
    # The scenario's own --warmup, if it has one, replaces the default.
    [[ " $* " == *" --warmup "* ]] || args+=(--warmup "$warmup")
    args+=("$@")
    local shown="taskset -c 1 quire-bench load" arg
    for arg in "${args[@]}"; do
        arg=${arg//"$token"/\$TOKEN}
        case $arg in
        *[[:space:]?\&\$]*) shown+=" \"$arg\"" ;;
        *) shown+=" $arg" ;;
        esac
    done
    shown+=" --server-pid $pid_name --json"
    echo "== $scenario: $target" >&2
    taskset -c 1 "$bench" load "${args[@]}" --server-pid "$pid" --json >"$work/run.json"
    jq -c --arg scenario "$scenario" --arg target "$target" --argjson goal "$goal" \
        --arg command "$shown" \
        '{scenario: $scenario, target: $target, goal: $goal, command: $command, result: .}' \
        "$work/run.json" >>"$results"
}

# both SCENARIO GOAL_JSON PATH [load options...]: the same load on quire, then on hello.
both() {
    local scenario=$1 goal=$2 path=$3
    shift 3
    run "$scenario" "$goal" quire "$path" "$@"
    run "$scenario" "$goal" hello "$path" "$@"
}

single='{"cpu_ratio_at_most": 2.0}'
list='{"cpu_ratio_at_most": 4.0}'
authed='{"cpu_ratio_at_most": 5.0}'
tags='{"cpu_ratio_at_most": 1.5}'
conns='{"connections_throughput_at_least": 0.6}'
c=(--connections "$connections")

both "GET /api/articles/article-123 (anonymous)" "$single" /api/articles/article-123 "${c[@]}"
both "GET /api/articles?limit=20" "$list" "/api/articles?limit=20" "${c[@]}"
both "GET /api/articles?tag=tag7&limit=20" "$list" "/api/articles?tag=tag7&limit=20" "${c[@]}"
both "GET /api/tags" "$tags" /api/tags "${c[@]}"
both "GET /api/articles/feed (authenticated)" "$authed" /api/articles/feed "${c[@]}" --header "$auth"
both "GET /api/articles/article-123 (authenticated)" "$authed" /api/articles/article-123 "${c[@]}" --header "$auth"
# Connecting 10,000 sockets takes a few seconds (SYN backlog): a longer warm-up for those.
many_scenario="GET /api/articles/article-123: $connections vs $many connections"
run "$many_scenario" "$conns" quire /api/articles/article-123 "${c[@]}"
run "$many_scenario" "$conns" quire /api/articles/article-123 --connections "$many" --warmup 5s
run "$many_scenario" "$conns" hello /api/articles/article-123 "${c[@]}"
run "$many_scenario" "$conns" hello /api/articles/article-123 --connections "$many" --warmup 5s

if ! kill -0 "$quire_pid" 2>/dev/null; then
    echo "quire died during the run; its log:" >&2
    tail -20 "$work/quire.log" >&2
    exit 1
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== writing $out" >&2
counts=${seed_line#*: }
"$bench" report --results "$results" \
    --cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    --cores "$(nproc)" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --commit "$(git describe --always --dirty)" \
    --dataset "$scale scale (QUIRE_BENCH_SCALE=$scale): $counts; every user's password is \`password-bench\`" \
    --setup "quire started as \`$quire_cmd\` (logs to a file; default settings otherwise), \`quire-bench hello\` likewise on core 0 at port $hello_port, one server loaded at a time; the load generator pinned with \`taskset -c 1\`; closed loop, $connections keep-alive connections unless stated, $duration measured after $warmup of warm-up (5s before the $many-connection runs); load average (1, 5, 15 min) $load_before before the runs, $load_after after, a sign of other work sharing the machine" \
    >"$work/report.md"
mv "$work/report.md" "$out"
echo "== done: $out" >&2
