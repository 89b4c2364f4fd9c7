#!/usr/bin/env bash
# quire on PostgreSQL next to quire on SQLite, on the same data in the same run, and the
# PostgreSQL section of BENCHMARKS.md (between <!-- pg:begin --> and <!-- pg:end -->):
#
#     QUIRE_BENCH_BACKEND=postgres bash scripts/bench.sh     # or: bash scripts/bench-pg.sh
#
# - cached reads: quire's CPU per request on PostgreSQL vs on SQLite (goal: within 10%);
# - uncached reads (--cache off): quire's and PostgreSQL's CPU per request, both backends;
# - durable writes: 64 clients adding comments, quire killed with SIGKILL while they write,
#   every acknowledged id looked up afterwards; next to pgbench running the same INSERT with
#   64 clients on the same server in the same run;
# - start-up: exec to /health/ready on the seeded PostgreSQL database;
# - cached reads with --redis (the fence of every request, shared rate limits): quire's CPU
#   per request next to the same instance without Redis (goal: within 15%), and Redis's.
#
# The data set is seeded into SQLite by `quire-bench seed`, then moved with `quire copy` into a
# fresh PostgreSQL database (created on QUIRE_BENCH_POSTGRES_URL's server, dropped at the end).
# quire runs on core 0, the load generator and pgbench on core 1; PostgreSQL's processes are
# not pinned (its CPU is read from /proc for every process named postgres).
#
# Environment (all optional): QUIRE_BENCH_SCALE=full|small, QUIRE_BENCH_DURATION=10s,
# QUIRE_BENCH_WARMUP=2s, QUIRE_BENCH_CONNECTIONS=100, QUIRE_BENCH_OUT=BENCHMARKS.md,
# QUIRE_BENCH_POSTGRES_URL=postgres://root@127.0.0.1:5432/test (trust or a password in the URL),
# QUIRE_BENCH_REDIS_URL=redis://127.0.0.1:6379/0 (keys under quire-bench-PID:, deleted after).
set -euo pipefail
cd "$(dirname "$0")/.."

scale=${QUIRE_BENCH_SCALE:-full}
duration=${QUIRE_BENCH_DURATION:-10s}
warmup=${QUIRE_BENCH_WARMUP:-2s}
connections=${QUIRE_BENCH_CONNECTIONS:-100}
out=${QUIRE_BENCH_OUT:-BENCHMARKS.md}
admin=${QUIRE_BENCH_POSTGRES_URL:-postgres://root@127.0.0.1:5432/test}
redis_url=${QUIRE_BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
port=18080

case $scale in
full) seed_args=(--users 10000 --articles 100000 --favorites 1000000 --follows 50000 --comments 100000 --tags 50) ;;
small) seed_args=(--users 1000 --articles 10000 --favorites 100000 --follows 5000 --comments 10000 --tags 50) ;;
*) echo "QUIRE_BENCH_SCALE must be full or small, not $scale" >&2; exit 2 ;;
esac
command -v pgbench >/dev/null || export PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
for tool in psql pgbench jq taskset redis-cli; do
    command -v "$tool" >/dev/null || { echo "bench-pg needs $tool" >&2; exit 1; }
done
redis-cli -u "$redis_url" ping >/dev/null || { echo "no Redis answers at $redis_url" >&2; exit 1; }

echo "== building release binaries" >&2
cargo build --release --locked -p quire-cli -p quire-bench
target_dir=${CARGO_TARGET_DIR:-target}
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-bench-pg.XXXXXX")
db=$work/bench.db
pg_name=quire_bench_$$
pg_url=${admin%/*}/$pg_name
quire_pid=
cleanup() {
    [ -n "$quire_pid" ] && kill "$quire_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $pg_name WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -u "$redis_url" --scan --pattern "quire-bench-$$:*" |
        xargs -r redis-cli -u "$redis_url" del >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== seeding $scale data set into SQLite, then copying it to PostgreSQL ($pg_name)" >&2
"$quire" migrate --database "sqlite://$db" >/dev/null
seed_line=$("$bench" seed --database "$db" "${seed_args[@]}")
echo "$seed_line" >&2
psql -q "$admin" -c "CREATE DATABASE $pg_name" >/dev/null
copy_started=$SECONDS
"$quire" copy --from "sqlite://$db" --to "$pg_url" --log-format json >/dev/null
copy_s=$((SECONDS - copy_started))
psql -q "$pg_url" -c "VACUUM ANALYZE" >/dev/null
pg_version=$(psql -qtA "$pg_url" -c "SHOW server_version")

unlimited=(--rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 --max-connections-per-ip 20000)

# start_quire DATABASE_URL [flags...]: quire on core 0, waits until ready.
start_quire() {
    local url=$1
    shift
    taskset -c 0 "$quire" --database "$url" --listen "127.0.0.1:$port" --log-format json \
        --media-dir "$work/media" "${unlimited[@]}" "$@" >>"$work/quire.log" 2>&1 &
    quire_pid=$!
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return 0
        kill -0 "$quire_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "quire did not become ready; its log:" >&2
    tail -20 "$work/quire.log" >&2
    exit 1
}

stop_quire() {
    kill "$quire_pid" && wait "$quire_pid" 2>/dev/null || true
    quire_pid=
}

# ticks NAME: CPU ticks of every process named NAME (a server's backends and helpers).
ticks() {
    local total=0 pid ticks
    for pid in $(pgrep -x "$1"); do
        ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + ticks))
    done
    echo "$total"
}

# measure NAME PATH: a warm-up run, then a measured run (no warm-up of its own, so the
# PostgreSQL ticks read around it cover exactly its requests); one JSON line per run.
measure() {
    local name=$1 path=$2
    local url="http://127.0.0.1:$port$path"
    echo "== $name: $path" >&2
    taskset -c 1 "$bench" load --url "$url" --connections "$connections" --duration "$warmup" \
        --warmup 0s --json >/dev/null
    local before after redis_before redis_after
    before=$(ticks postgres)
    redis_before=$(ticks redis-server)
    taskset -c 1 "$bench" load --url "$url" --connections "$connections" --duration "$duration" \
        --warmup 0s --server-pid "$quire_pid" --json >"$work/run.json"
    after=$(ticks postgres)
    redis_after=$(ticks redis-server)
    jq -c --arg name "$name" --arg path "$path" --argjson pg_ticks "$((after - before))" \
        --argjson redis_ticks "$((redis_after - redis_before))" --argjson hz "$(getconf CLK_TCK)" \
        '{name: $name, path: $path, rps: .rps, responses: .responses, errors: .errors,
          quire_us: .server_cpu.us_per_request,
          pg_us: ($pg_ticks / $hz * 1e6 / (if .responses > 0 then .responses else 1 end)),
          redis_us: ($redis_ticks / $hz * 1e6 / (if .responses > 0 then .responses else 1 end))}' \
        "$work/run.json" >>"$work/reads.jsonl"
}

paths=(/api/articles/article-123 "/api/articles?limit=20")
for config in "sqlite cached|sqlite://$db|--cache on" "postgres cached|$pg_url|--cache on" \
    "sqlite uncached|sqlite://$db|--cache off" "postgres uncached|$pg_url|--cache off" \
    "postgres cached redis|$pg_url|--cache on --redis $redis_url --redis-prefix quire-bench-$$:"; do
    IFS='|' read -r name url flags <<<"$config"
    # shellcheck disable=SC2086 # flags are several words on purpose
    start_quire "$url" $flags
    for path in "${paths[@]}"; do
        measure "$name" "$path"
    done
    stop_quire
done

echo "== durable writes on PostgreSQL (kill -9 with writes in flight)" >&2
# One instance, declared as such (--cache on), as the README advises for a single instance;
# the default (--cache auto) keeps the cache off on PostgreSQL without Redis.
start_quire "$pg_url" --cache on
token=$(curl -fsS -X POST "http://127.0.0.1:$port/api/users/login" \
    -H 'Content-Type: application/json' \
    -d '{"user":{"email":"user1@example.com","password":"password-bench"}}' | jq -r .user.token)
printf '%s' '{"comment":{"body":"a comment written under load"}}' >"$work/comment.json"
taskset -c 1 "$bench" load --url "http://127.0.0.1:$port/api/articles/article-1/comments" \
    --method POST --body-file "$work/comment.json" --header "Content-Type: application/json" \
    --header "Authorization: Token $token" --connections 64 \
    --duration "$(( ${duration%s} + 60 ))s" --warmup 0s \
    --record-ids "$work/acked-ids.txt" --json >"$work/writes.json" &
writes_pid=$!
# quire's and PostgreSQL's CPU from the load's start to the kill: their cost per write.
quire_write_ticks=$(awk '{print $14 + $15}' "/proc/$quire_pid/stat")
pg_write_ticks=$(ticks postgres)
sleep "${duration%s}"
quire_write_ticks=$(( $(awk '{print $14 + $15}' "/proc/$quire_pid/stat") - quire_write_ticks ))
pg_write_ticks=$(( $(ticks postgres) - pg_write_ticks ))
kill -9 "$quire_pid"
wait "$quire_pid" 2>/dev/null || true
quire_pid=
kill -TERM "$writes_pid"
wait "$writes_pid"
psql -qtA "$pg_url" -c "SELECT id FROM comments" >"$work/stored-ids.txt"
durable=$(python3 - "$work/acked-ids.txt" "$work/stored-ids.txt" "$quire_write_ticks" "$pg_write_ticks" "$(getconf CLK_TCK)" <<'PY'
import json, sys
acked = [int(l) for l in open(sys.argv[1]) if l.strip()]
stored = {int(l) for l in open(sys.argv[2]) if l.strip()}
lost = [i for i in acked if i not in stored]
per_write = lambda ticks: int(ticks) / int(sys.argv[5]) * 1e6 / max(len(acked), 1)
print(json.dumps({"acked_ids": len(acked), "lost": len(lost), "lost_sample": lost[:10],
                  "quire_us": per_write(sys.argv[3]), "pg_us": per_write(sys.argv[4])}))
PY
)
echo "durable writes: $durable" >&2

echo "== pgbench: the same INSERT, 64 clients" >&2
printf '%s\n' "INSERT INTO comments (article_id, author_id, body, created_at, updated_at) VALUES (1, 1, 'a comment written under load', 1, 1) RETURNING id;" >"$work/insert.sql"
pgbench_cmd=(pgbench -n -M prepared -c 64 -j 1 -T "${duration%s}" -f "$work/insert.sql" "$pg_url")
pgbench_tps=$(taskset -c 1 "${pgbench_cmd[@]}" 2>/dev/null |
    awk '/^tps = / {print $3; exit}')
[ -n "$pgbench_tps" ] || { echo "pgbench gave no tps" >&2; exit 1; }
echo "pgbench: $pgbench_tps tps" >&2

echo "== start-up on the seeded PostgreSQL database" >&2
startup=$(python3 - "$quire" "$pg_url" <<'PY'
import http.client, json, subprocess, sys, time
quire, url = sys.argv[1], sys.argv[2]
best = None
for _ in range(5):
    start = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", "0", quire, "--database", url, "--media-dir", "/tmp",
                             "--listen", "127.0.0.1:18089", "--log-format", "json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", 18089, timeout=1)
            conn.request("GET", "/health/ready")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None, "quire exited"
        time.sleep(0.001)
    ms = (time.monotonic() - start) * 1000
    best = ms if best is None else min(best, ms)
    proc.terminate()
    proc.wait()
print(json.dumps({"ready_ms": best}))
PY
)

echo "== writing the PostgreSQL section of $out" >&2
python3 - "$work/reads.jsonl" "$work/writes.json" "$durable" "$pgbench_tps" "$startup" \
    "$(git describe --always --dirty)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    "$(nproc)" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$scale" "${seed_line#*: }" "$pg_version" \
    "$connections" "$duration" "$warmup" "$copy_s" <<'PY' >"$work/pg.md"
import json, sys
(reads_file, writes_file, durable, pgbench_tps, startup, commit, cpu, cores, date, scale, counts,
 pg_version, connections, duration, warmup, copy_s) = sys.argv[1:]
reads = [json.loads(l) for l in open(reads_file)]
writes = json.load(open(writes_file))
durable, startup, pgbench_tps = json.loads(durable), json.loads(startup), float(pgbench_tps)
ok = lambda b: "met" if b else "**not met**"
errs = lambda r: sum(r["errors"].values())
def run(name, path):
    return next(r for r in reads if r["name"] == name and r["path"] == path)
print("<!-- pg:begin -->")
print("## PostgreSQL")
print()
print(f"Measured by `QUIRE_BENCH_BACKEND=postgres bash scripts/bench.sh` (runs `scripts/bench-pg.sh`) at {commit} on {date}: {cpu}, {cores} cores; PostgreSQL {pg_version} on the same machine (its own service, not pinned). Data: {scale} scale ({counts}), seeded into SQLite and moved to PostgreSQL with `quire copy` ({float(copy_s):.0f} s). quire on core 0, the load generator and pgbench on core 1; one quire at a time on the same data. Closed loop, {connections} keep-alive connections, {duration} measured after {warmup} of warm-up. CPU per request: quire's from `/proc/PID/stat` over the measured window; PostgreSQL's summed over every `postgres` process.")
print()
print("| scenario | SQLite | PostgreSQL | goal | met |")
print("|---|---|---|---|---|")
for path in ("/api/articles/article-123", "/api/articles?limit=20"):
    s, p = run("sqlite cached", path), run("postgres cached", path)
    ratio = p["quire_us"] / s["quire_us"]
    clean = errs(s) == 0 and errs(p) == 0
    print(f"| cached `GET {path}`: quire CPU per request | {s['quire_us']:.1f} µs ({s['rps']:.0f}/s) | {p['quire_us']:.1f} µs ({p['rps']:.0f}/s); ratio {ratio:.2f} | PostgreSQL within 10% of SQLite (ratio ≤ 1.10), no errors | {ok(ratio <= 1.10 and clean)} |")
for path in ("/api/articles/article-123", "/api/articles?limit=20"):
    s, p = run("sqlite uncached", path), run("postgres uncached", path)
    clean = errs(s) == 0 and errs(p) == 0
    print(f"| uncached (`--cache off`) `GET {path}`: CPU per request | quire {s['quire_us']:.1f} µs ({s['rps']:.0f}/s) | quire {p['quire_us']:.1f} µs + PostgreSQL {p['pg_us']:.1f} µs ({p['rps']:.0f}/s) | reported (no goal); no errors | {ok(clean)} |")
for path in ("/api/articles/article-123", "/api/articles?limit=20"):
    p, r = run("postgres cached", path), run("postgres cached redis", path)
    ratio = r["quire_us"] / p["quire_us"]
    clean = errs(p) == 0 and errs(r) == 0
    print(f"| cached `GET {path}` with `--redis` (a read fence per request, shared rate limits): CPU per request | — | quire {r['quire_us']:.1f} µs + Redis {r['redis_us']:.1f} µs ({r['rps']:.0f}/s) vs quire {p['quire_us']:.1f} µs without Redis; ratio {ratio:.2f} | quire within 15% of the same instance without Redis (ratio ≤ 1.15), no errors | {ok(ratio <= 1.15 and clean)} |")
acked = durable["acked_ids"]
wps = acked / writes["duration_s"]
unexpected = sum(v for k, v in writes["errors"].items() if k not in ("connect", "io", "timeout"))
ratio = wps / pgbench_tps
print(f"| durable writes: 64 clients adding comments for {writes['duration_s']:.1f} s to one instance (`--cache on`), `kill -9` of quire while they write | — | {wps:.0f} acknowledged writes/s ({acked} ids); {durable['lost']} lost after the kill; other errors {unexpected}; pgbench, same INSERT, 64 clients: {pgbench_tps:.0f}/s; ratio {ratio:.2f} | ≥ 5,000 acknowledged writes/s, 0 lost (ratio to pgbench reported) | {ok(wps >= 5000 and durable['lost'] == 0 and unexpected == 0)} |")
print(f"| start-up on the seeded PostgreSQL database | — | exec to `/health/ready` 200 in {startup['ready_ms']:.0f} ms (best of 5) | < 200 ms | {ok(startup['ready_ms'] < 200)} |")
print()
print(f"pgbench command: `taskset -c 1 pgbench -n -M prepared -c 64 -j 1 -T {duration.rstrip('s')} -f insert.sql $DB` with `insert.sql` = `INSERT INTO comments (article_id, author_id, body, created_at, updated_at) VALUES (1, 1, 'a comment written under load', 1, 1) RETURNING id;`. quire's write does more per request (HTTP, token check, the article looked up by slug, the comment returned with its author), so the ratio is the cost of all that, not of the INSERT.")
# A capacity model from the figures above (CPU per request of each part), for one
# PostgreSQL and one Redis shared by N quire instances.
cached = run("postgres cached redis", "/api/articles/article-123")
miss_article = run("postgres uncached", "/api/articles/article-123")
miss_list = run("postgres uncached", "/api/articles?limit=20")
pg_write, quire_write = durable["pg_us"], durable["quire_us"]
mix = {"cached": 0.95, "miss": 0.04, "write": 0.01}
miss_pg = (miss_article["pg_us"] + miss_list["pg_us"]) / 2
miss_quire = (miss_article["quire_us"] + miss_list["quire_us"]) / 2
quire_cost = mix["cached"] * cached["quire_us"] + mix["miss"] * miss_quire + mix["write"] * quire_write
pg_cost = mix["miss"] * miss_pg + mix["write"] * pg_write
# Every request passes one fence (reads) or makes one announcement (writes), at about the
# same Redis cost.
redis_cost = cached["redis_us"]
per_core = lambda us: 1e6 / us if us > 0 else float("inf")
print()
print("### Capacity model (on paper, from the figures above)")
print()
print(f"Inputs, CPU per request measured in this run: a cached article read costs quire {cached['quire_us']:.1f} µs and Redis {cached['redis_us']:.1f} µs (its read fence); a cache miss costs quire {miss_quire:.0f} µs and PostgreSQL {miss_pg:.0f} µs (mean of the uncached article and list); a durable write costs quire {quire_write:.0f} µs and PostgreSQL {pg_write:.0f} µs (the comment run above, without Redis); every request costs Redis one fence or one announcement, counted at the fence's measured cost. Mix assumed: {mix['cached']:.0%} cached reads, {mix['miss']:.0%} cache misses, {mix['write']:.0%} writes.")
print()
print("| part | CPU per request of the mix | requests/s one core of it carries |")
print("|---|---|---|")
print(f"| quire (each instance) | {quire_cost:.1f} µs | {per_core(quire_cost):,.0f} |")
print(f"| PostgreSQL | {pg_cost:.1f} µs | {per_core(pg_cost):,.0f} |")
print(f"| Redis (single-threaded) | {redis_cost:.2f} µs | {per_core(redis_cost):,.0f} |")
first = min((per_core(pg_cost), "PostgreSQL"), (per_core(redis_cost), "Redis"))
print()
print(f"With one core each for PostgreSQL and Redis, {first[1]} saturates first, at about {first[0]:,.0f} requests/s of this mix, which {first[0] / per_core(quire_cost):.1f} quire cores serve. Writes alone: one PostgreSQL core carries about {per_core(pg_write):,.0f} durable writes/s. What to add then: for PostgreSQL-bound read misses, read replicas (`--database-replica`, built); for writes, a larger primary (writes do not spread); for Redis, a second Redis per concern (fences and limits vs events) before Redis Cluster; a second region needs its own database primary and is out of scope. A model, not a measurement: the cluster drill and the 3-instance runs of issue 14 have not measured it yet.")
print("<!-- pg:end -->")
PY
python3 - "$out" "$work/pg.md" <<'PY'
import os, re, sys
out, section = sys.argv[1], open(sys.argv[2]).read().strip()
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n"
if "<!-- pg:begin -->" in text:
    text = re.sub(r"<!-- pg:begin -->.*?<!-- pg:end -->", lambda _: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(out, "w").write(text)
PY
cat "$work/pg.md" >&2
echo "== done: $out" >&2
