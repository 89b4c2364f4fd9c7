#!/usr/bin/env bash
# The web UI's figures (issue 16), each next to the hello peer in the same run where a ratio
# applies:
#   CPU per cached page render (home, article; anonymous and signed in) vs `quire-bench hello`;
#   bytes transferred per page (compressed, before images) and time to first byte;
#   Lighthouse (performance, accessibility, best practices, SEO) on home, article, editor and
#   profile, in Debian's Chromium.
# The blog is seeded with realistic content: 40 articles with ~2 KB Markdown bodies, tags,
# 8 comments on the measured article. Rewrites the section between <!-- web:begin --> and
# <!-- web:end --> in BENCHMARKS.md.
#
#     bash scripts/bench-web.sh
#
# quire and hello run pinned to core 0, the load generator and Lighthouse on core 1. Needs jq,
# Chromium (/usr/bin/chromium) and npm (Lighthouse is installed into ~/.cache/quire-lighthouse).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${QUIRE_BENCH_OUT:-BENCHMARKS.md}
duration=${QUIRE_BENCH_DURATION:-10s}
port=18080
hello_port=18081
lighthouse_version=13.5.0
lh_dir="$HOME/.cache/quire-lighthouse"
if [ ! -x "$lh_dir/node_modules/.bin/lighthouse" ]; then
    echo "== installing lighthouse $lighthouse_version into $lh_dir" >&2
    mkdir -p "$lh_dir"
    (cd "$lh_dir" && npm install --no-audit --no-fund --loglevel=error "lighthouse@$lighthouse_version")
fi
echo "== building release binaries" >&2
cargo build --release -p quire-cli -p quire-bench
target_dir=${CARGO_TARGET_DIR:-target}
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-web.XXXXXX")
quire_pid=
hello_pid=
cleanup() {
    [ -n "$quire_pid" ] && kill "$quire_pid" 2>/dev/null || true
    [ -n "$hello_pid" ] && kill "$hello_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

taskset -c 0 "$quire" --database "sqlite://$work/db" --listen "127.0.0.1:$port" --log-format json \
    --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 >"$work/quire.log" 2>&1 &
quire_pid=$!
taskset -c 0 "$bench" hello --listen "127.0.0.1:$hello_port" >"$work/hello.log" 2>&1 &
hello_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"

echo "== seeding" >&2
python3 - "$base" "$work" <<'PY'
import json, sys, urllib.request
base, work = sys.argv[1], sys.argv[2]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
tokens = {}
for name in ("anna", "ben"):
    tokens[name] = call("POST", "/api/users", {"user": {"username": name, "email": f"{name}@example.com", "password": "password-bench"}})["user"]["token"]
paragraph = ("Rust's ownership rules let a server hold tens of thousands of connections without a garbage "
             "collector pausing them. This paragraph is here to make the body the size of a real post, with "
             "**emphasis**, `inline code` and a [link](https://www.rust-lang.org/). ")
body = "\n\n".join([f"## Part {i}\n\n{paragraph * 2}" for i in range(1, 5)]) + "\n\n```rust\nfn main() {\n    println!(\"hello\");\n}\n```\n"
for i in range(40):
    a = call("POST", "/api/articles", {"article": {"title": f"Notes on servers, part {i}", "description": "How a small Rust server keeps many readers happy, one sentence at a time.",
              "body": body, "tagList": ["rust", "servers", f"part{i % 5}"]}}, tokens["anna" if i % 2 else "ben"])
slug = a["article"]["slug"]
for i in range(8):
    call("POST", f"/api/articles/{slug}/comments", {"comment": {"body": f"Comment {i}: a reader's thought, with **some** Markdown."}}, tokens["ben"])
call("POST", "/api/profiles/anna/follow", None, tokens["ben"])
open(f"{work}/slug", "w").write(slug)
open(f"{work}/token", "w").write(tokens["ben"])
print(f"seeded 40 articles of {len(body)} bytes of Markdown; measured article {slug}", file=sys.stderr)
PY
slug=$(cat "$work/slug")
token=$(cat "$work/token")
cookie="quire_session=$token"
results="$work/results.jsonl"

# cpu NAME TARGET PATH [load options]: CPU per request of one page.
cpu() {
    local name=$1 target=$2 path=$3 p=$port pid=$quire_pid
    shift 3
    if [ "$target" = hello ]; then p=$hello_port; pid=$hello_pid; fi
    echo "== $name ($target)" >&2
    taskset -c 1 "$bench" load --url "http://127.0.0.1:$p$path" --duration "$duration" --warmup 2s \
        --connections 32 --server-pid "$pid" --json "$@" >"$work/run.json"
    jq -c --arg name "$name" --arg target "$target" '{kind: "cpu", name: $name, target: $target,
        us: .server_cpu.us_per_request, rps: .rps}' "$work/run.json" >>"$results"
}
cpu "home page" quire "/" --header "Accept-Encoding: gzip, br"
cpu "article page" quire "/articles/$slug" --header "Accept-Encoding: gzip, br"
cpu "home page, signed in" quire "/?feed=your" --header "Accept-Encoding: gzip, br" --header "Cookie: $cookie"
cpu "hello peer" hello "/"

# size NAME PATH: compressed bytes and first byte (median of 20, after a warm-up request).
size() {
    local name=$1 path=$2
    curl -s -o /dev/null -H 'Accept-Encoding: gzip, br' "$base$path"
    for _ in $(seq 20); do
        curl -s -o /dev/null -H 'Accept-Encoding: gzip, br' -w '%{size_download} %{time_starttransfer}\n' "$base$path"
    done | sort -k2 -n | sed -n 10p | jq -R -c --arg name "$name" 'split(" ") | {kind: "size", name: $name,
        bytes: (.[0] | tonumber), ttfb_ms: ((.[1] | tonumber) * 1000)}' >>"$results"
}
size "home page" "/"
size "article page" "/articles/$slug"
css_bytes=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip, br' -w '%{size_download}' "$base/assets/quire.css")
js_bytes=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip, br' -w '%{size_download}' "$base/assets/quire.js")

# lighthouse NAME PATH [cookie]
lighthouse() {
    local name=$1 path=$2 headers='{}'
    [ $# -ge 3 ] && headers=$(jq -nc --arg c "$3" '{Cookie: $c}')
    echo "== lighthouse $name" >&2
    CHROME_PATH=/usr/bin/chromium taskset -c 1 "$lh_dir/node_modules/.bin/lighthouse" "$base$path" --quiet \
        --chrome-flags="--headless --no-sandbox --disable-gpu --disable-background-networking" \
        --only-categories=performance,accessibility,best-practices,seo --extra-headers "$headers" \
        --output=json --output-path="$work/lh.json" >/dev/null 2>"$work/lh.err" || { cat "$work/lh.err" >&2; return 1; }
    jq -c --arg name "$name" '{kind: "lighthouse", name: $name,
        performance: (.categories.performance.score * 100), accessibility: (.categories.accessibility.score * 100),
        best_practices: (.categories["best-practices"].score * 100), seo: (.categories.seo.score * 100)}' "$work/lh.json" >>"$results"
}
lighthouse home "/"
lighthouse article "/articles/$slug"
lighthouse editor "/editor" "$cookie"
lighthouse profile "/profile/anna"

python3 - "$results" "$out" "$(git describe --always --dirty)" "$css_bytes" "$js_bytes" "$duration" <<'PY'
import json, os, re, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out, commit, css, js, duration = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
hello = next(r["us"] for r in rows if r["kind"] == "cpu" and r["target"] == "hello")
lines = ["<!-- web:begin -->", "## Web UI (issue 16)", "",
         f"Command: `bash scripts/bench-web.sh` · commit `{commit}` · {datetime.date.today()} · {cpu}, {os.cpu_count()} cores · "
         "quire (default settings, access log on, rate limits off) and `quire-bench hello` pinned to core 0; the load "
         f"generator (32 keep-alive connections, {duration} after 2 s of warm-up, `Accept-Encoding: gzip, br`) and Lighthouse on core 1. "
         "Seed: 40 articles with 2.5 KB Markdown bodies, 8 comments on the measured article.", "",
         "| page | quire CPU per request | hello peer | ratio | goal | met |", "|---|---:|---:|---:|---|---|"]
for r in rows:
    if r["kind"] == "cpu" and r["target"] == "quire":
        ratio = r["us"] / hello
        lines.append(f"| {r['name']} | {r['us']:.1f} µs ({r['rps']:.0f}/s) | {hello:.1f} µs | {ratio:.2f}× | ≤ 3× | {'met' if ratio <= 3 else 'not met'} |")
lines += ["", "| page | bytes transferred (compressed, before images; CSS and script extra) | first byte (median of 20) | goal | met |", "|---|---:|---:|---|---|"]
for r in rows:
    if r["kind"] == "size":
        total = r["bytes"] + css + js
        met = total <= 30_000 and r["ttfb_ms"] <= 5
        lines.append(f"| {r['name']} | {r['bytes']} B + {css} B CSS + {js} B script = {total} B | {r['ttfb_ms']:.2f} ms | ≤ 30 KB, ≤ 5 ms | {'met' if met else 'not met'} |")
lines += ["", "| Lighthouse 13.5.0 (Chromium, desktop defaults) | performance | accessibility | best practices | SEO | goal | met |", "|---|---:|---:|---:|---:|---|---|"]
for r in rows:
    if r["kind"] == "lighthouse":
        scores = [r["performance"], r["accessibility"], r["best_practices"], r["seo"]]
        lines.append(f"| {r['name']} | {scores[0]:.0f} | {scores[1]:.0f} | {scores[2]:.0f} | {scores[3]:.0f} | each ≥ 95 | {'met' if min(scores) >= 95 else 'not met'} |")
lines.append("<!-- web:end -->")
section = "\n".join(lines) + "\n"
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n"
if "<!-- web:begin -->" in text:
    text = re.sub(r"<!-- web:begin -->.*?<!-- web:end -->\n?", section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(out, "w").write(text)
print(section)
PY
