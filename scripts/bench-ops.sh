#!/usr/bin/env bash
# The operator commands' figures (issue 17), on the 100K-article seed (quire-bench seed:
# 10,000 users, 100,000 articles of 1-3 KB, 1,000,000 favorites, 50,000 follows, 100,000
# comments):
#   1. `quire backup` while quire serves 2,000 req/s (1,800 GET of a 20-article page + 200
#      POST of a comment, open loop): p99 of those requests during the backup against the same
#      load without it, in the same run; the backup's time and size.
#   2. `quire export` then `quire import` into a fresh database: time, throughput and peak
#      RSS of each (also on a 10K-article seed, to show RSS does not grow with the data), and
#      identical GET answers from the source and the imported copy for 1,000 sampled
#      articles, 50 list pages and 200 profiles.
# Rewrites the section between <!-- ops:begin --> and <!-- ops:end --> in BENCHMARKS.md.
#
#     bash scripts/bench-ops.sh
#
# quire is pinned to core 0; the load generator and the commands run on core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${QUIRE_BENCH_OUT:-BENCHMARKS.md}
window=${QUIRE_BENCH_WINDOW:-20s}
port=18090
copy_port=18091

echo "== building release binaries" >&2
cargo build --release -p quire-cli -p quire-bench
target_dir=${CARGO_TARGET_DIR:-target}
quire=$(realpath "$target_dir/release/quire")
bench=$(realpath "$target_dir/release/quire-bench")

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-ops.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

serve() { # serve DIR PORT -> pid in $served
    taskset -c 0 "$quire" --database "sqlite://$1/quire.db" --listen "127.0.0.1:$2" --log-format json \
        --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 >"$1/quire.log" 2>&1 &
    served=$!
    pids+=("$served")
    for _ in $(seq 300); do curl -fs "http://127.0.0.1:$2/health/ready" >/dev/null && return; sleep 0.1; done
    echo "quire did not start" >&2; exit 1
}

seed() { # seed DIR ARTICLES USERS
    mkdir -p "$1"
    "$quire" migrate --database "sqlite://$1/quire.db" >/dev/null 2>&1
    "$bench" seed --database "$1/quire.db" --articles "$2" --users "$3" \
        --favorites $(($2 * 10)) --follows $(($3 * 5)) --comments "$2" >/dev/null 2>&1
}

# Peak RSS (KiB) and wall seconds of a command, via /usr/bin/time when present, else ps sampling.
measure() { # measure NAME CMD... ; writes $work/NAME.json (stdout) and $work/NAME.time
    local name=$1; shift
    /usr/bin/time -f "%M %e" -o "$work/$name.time" taskset -c 1 "$@" >"$work/$name.json" 2>"$work/$name.err"
}
command -v /usr/bin/time >/dev/null || { apt-get install -y -q time >/dev/null; }

echo "== seeding 100K articles" >&2
seed "$work/big" 100000 10000
seed "$work/small" 10000 1000
db_bytes=$(stat -c %s "$work/big/quire.db")

serve "$work/big" "$port"
big_pid=$served
base="http://127.0.0.1:$port"
token=$(curl -fs -X POST "$base/api/users" -H 'Content-Type: application/json' \
    -d '{"user":{"username":"benchwriter","email":"bench@example.com","password":"bench-password-1"}}' | jq -r .user.token)
printf '{"comment":{"body":"%s"}}' "$(head -c 300 /dev/zero | tr '\0' 'c')" >"$work/comment.json"

load_pair() { # load_pair TAG: 1,800 GET + 200 POST per second for $window
    taskset -c 1 "$bench" load --url "$base/api/articles?limit=20" --rate 1800 --connections 32 \
        --duration "$window" --warmup 2s --json >"$work/$1-get.json" &
    local g=$!
    taskset -c 1 "$bench" load --url "$base/api/articles/article-1/comments" --method POST \
        --header "Authorization: Token $token" --header "Content-Type: application/json" \
        --body-file "$work/comment.json" --rate 200 --connections 8 \
        --duration "$window" --warmup 2s --json >"$work/$1-post.json" &
    local p=$!
    wait "$g" "$p"
}

echo "== load without a backup" >&2
load_pair quiet
echo "== load with a backup running" >&2
(sleep 2.5; measure backup "$quire" backup --to "$work/backup.tar.gz" --database "sqlite://$work/big/quire.db" --json) &
backup_runner=$!
load_pair busy
wait "$backup_runner"

echo "== export and import" >&2
for size in big small; do
    measure "export-$size" "$quire" export --to "$work/$size.tar.gz" --no-media --database "sqlite://$work/$size/quire.db" --json
    mkdir -p "$work/$size-copy"
    measure "import-$size" "$quire" import --from "$work/$size.tar.gz" --database "sqlite://$work/$size-copy/quire.db" --json
done

echo "== comparing answers" >&2
serve "$work/big-copy" "$copy_port"
python3 - "$work" "$base" "http://127.0.0.1:$copy_port" <<'PY' >"$work/compare.json"
import json, random, sqlite3, sys, urllib.request
work, a, b = sys.argv[1:4]
db = sqlite3.connect(f"{work}/big-copy/quire.db")
rng = random.Random(17)
slugs = [r[0] for r in db.execute("SELECT slug FROM articles")]
names = [r[0] for r in db.execute("SELECT username FROM users")]
paths = [f"/api/articles/{s}" for s in rng.sample(slugs, 1000)]
paths += [f"/api/articles?limit=20&offset={rng.randrange(0, 99980)}" for _ in range(40)]
paths += [f"/api/articles?tag=tag{rng.randrange(50)}&limit=20" for _ in range(10)]
paths += [f"/api/profiles/{n}" for n in rng.sample(names, 200)]
same = differ = 0
first = None
for p in paths:
    x = urllib.request.urlopen(a + p).read()
    y = urllib.request.urlopen(b + p).read()
    if json.loads(x) == json.loads(y):
        same += 1
    else:
        differ += 1
        first = first or p
print(json.dumps({"compared": len(paths), "same": same, "differ": differ, "first_difference": first}))
PY

machine="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores"
commit=$(git describe --always --dirty)
python3 - "$work" "$out" "$machine" "$commit" "$db_bytes" <<'PY'
import json, re, sys
work, out, machine, commit, db_bytes = sys.argv[1:6]
def j(name): return json.load(open(f"{work}/{name}.json"))
def t(name):
    kib, secs = open(f"{work}/{name}.time").read().split()
    return int(kib) / 1024, float(secs)
q_get, q_post, b_get, b_post = j("quiet-get"), j("quiet-post"), j("busy-get"), j("busy-post")
backup = j("backup"); b_rss, b_secs = t("backup")
cmp = json.load(open(f"{work}/compare.json"))
ms = lambda us: f"{us / 1000:.2f} ms"
lines = ["<!-- ops:begin -->", "## Operations: backup, export, import (issue 17)", "",
  f"`bash scripts/bench-ops.sh` at {commit} on {machine}. Seed: `quire-bench seed` with 100,000 "
  f"articles (1-3 KB bodies), 10,000 users, 1,000,000 favorites, 50,000 follows, 100,000 comments: "
  f"a {int(db_bytes) / 2**20:.0f} MiB database. quire on core 0; load and commands on core 1.", "",
  "| row | without backup | during `quire backup` | ratio | goal |", "|---|---|---|---|---|"]
for label, q, b in [("GET 20-article page, 1,800/s: p99", q_get, b_get), ("POST comment, 200/s: p99", q_post, b_post)]:
    ratio = b["latency_us"]["p99"] / max(q["latency_us"]["p99"], 1)
    lines.append(f"| {label} | {ms(q['latency_us']['p99'])} | {ms(b['latency_us']['p99'])} | {ratio:.2f}x | ≤ 2x: {'met' if ratio <= 2 else 'not met'} |")
errs = sum(sum(x["errors"].values()) for x in (q_get, q_post, b_get, b_post))
lines += ["",
  f"The backup (`--to backup.tar.gz`, gzip at its fastest level) took **{backup['seconds']:.1f} s** "
  f"(snapshot {backup['snapshot_seconds']:.1f} s), wrote {backup['archive_bytes'] / 2**20:.0f} MiB, "
  f"peak RSS {b_rss:.0f} MiB. Requests measured with the backup running: "
  f"{b_get['responses'] + b_post['responses']:,}; failed requests in both windows: {errs}.", "",
  "| step | rows | time | rows/s | peak RSS | archive |", "|---|---|---|---|---|---|"]
for size, label in [("big", "100K articles"), ("small", "10K articles")]:
    e, i = j(f"export-{size}"), j(f"import-{size}")
    (er, es), (ir, isecs) = t(f"export-{size}"), t(f"import-{size}")
    lines.append(f"| export, {label} | {e['rows']:,} | {es:.1f} s | {e['rows'] / es:,.0f} | {er:.0f} MiB | {e['archive_bytes'] / 2**20:.0f} MiB |")
    lines.append(f"| import, {label} | {i['rows']:,} | {isecs:.1f} s | {i['rows'] / isecs:,.0f} | {ir:.0f} MiB | |")
lines += ["",
  f"Answers compared between the source and the imported copy (both served, GET, JSON compared): "
  f"**{cmp['same']} of {cmp['compared']} identical** (1,000 articles, 50 list pages, 200 profiles)"
  + (f"; first difference: `{cmp['first_difference']}`" if cmp["differ"] else "") + ".",
  "<!-- ops:end -->", ""]
section = "\n".join(lines)
text = open(out).read()
if "<!-- ops:begin -->" in text:
    text = re.sub(r"<!-- ops:begin -->.*?<!-- ops:end -->\n?", section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(out, "w").write(text)
print(section)
PY
