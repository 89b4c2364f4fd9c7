#!/usr/bin/env bash
# quire's media on S3-compatible storage (issue 15), each next to a plain client in the same run:
#   upload of 128 MiB through quire into its bucket vs the same bytes PUT straight to the S3 server;
#   download of 128 MiB from the bucket through quire vs a plain GET of the same object;
#   10 concurrent 128 MiB uploads + 10 downloads through quire: quire's peak RSS growth.
# The S3 server is moto's server mode (PyPI; installed into ~/.cache/quire-moto if missing),
# a private one on port 15000. Rewrites the section between <!-- media-s3:begin --> and
# <!-- media-s3:end --> in BENCHMARKS.md.
#
#     bash scripts/bench-media-s3.sh
#
# quire runs pinned to core 0; the S3 server and the client to core 1, so both paths use the
# same S3 server on the same core and quire's hop adds its own core.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${QUIRE_BENCH_OUT:-BENCHMARKS.md}
port=18080
s3_port=15000
bucket=quire-bench

moto_venv="$HOME/.cache/quire-moto"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
    echo "== installing moto[server] into $moto_venv" >&2
    python3 -m venv "$moto_venv"
    "$moto_venv/bin/pip" install -q 'moto[server]==5.2.5'
fi
echo "== building release binaries" >&2
cargo build --release -p quire-cli -p quire-bench
target_dir=${CARGO_TARGET_DIR:-target}
quire=$target_dir/release/quire
bench=$target_dir/release/quire-bench

work=$(mktemp -d "${TMPDIR:-/tmp}/quire-media-s3.XXXXXX")
quire_pid=
moto_pid=
cleanup() {
    [ -n "$quire_pid" ] && kill "$quire_pid" 2>/dev/null || true
    [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

taskset -c 1 "$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 60); do curl -fs -o /dev/null "http://127.0.0.1:$s3_port/" && break; sleep 0.5; done
# Public read-write, so the plain client needs no signature (quire signs its own requests).
curl -fs -o /dev/null -X PUT -H 'x-amz-acl: public-read-write' "http://127.0.0.1:$s3_port/$bucket"

start_quire() {
    taskset -c 0 "$quire" --database "sqlite://$work/db" --listen "127.0.0.1:$port" --log-format json \
        --media-store "s3://$bucket" --s3-endpoint "http://127.0.0.1:$s3_port" \
        --s3-access-key-id bench --s3-secret-access-key bench \
        --max-media-bytes $((1024 * 1024 * 1024)) \
        --rate-limit-ip 0 --rate-limit-user 0 --rate-limit-auth 0 \
        >> "$work/quire.log" 2>&1 &
    quire_pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null
}
stop_quire() {
    kill "$quire_pid"
    wait "$quire_pid" 2>/dev/null || true
    quire_pid=
}
start_quire
token=$(curl -fs -X POST "http://127.0.0.1:$port/api/users" -H 'Content-Type: application/json' \
    -d '{"user":{"username":"bench","email":"bench@example.com","password":"password-bench"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["token"])')

run() {
    echo "== media $1" >&2
    taskset -c 1 "$bench" media --scenario "$1" --quire "127.0.0.1:$port" --token "$token" "${@:2}" | tee -a "$work/results.jsonl"
}
run s3-upload --s3 "127.0.0.1:$s3_port" --bucket "$bucket" --repeat 3
run s3-download --s3 "127.0.0.1:$s3_port" --bucket "$bucket" --server-pid "$quire_pid" --repeat 5
# The RSS-growth row starts from a fresh process that has received no upload and hashed no
# password (the blob it downloads is uploaded before a restart; the token stays valid).
head -c $((128 * 1024 * 1024)) /dev/urandom >"$work/download.bin"
media_id=$(curl -fs -X POST "http://127.0.0.1:$port/api/media" -H "Authorization: Token $token" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$work/download.bin" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["media"]["id"])')
rm -f "$work/download.bin"
stop_quire
start_quire
run concurrent --server-pid "$quire_pid" --media-id "$media_id" --repeat 1
moto_version=$("$moto_venv/bin/pip" show moto 2>/dev/null | awk '/^Version/ {print $2}')

python3 - "$work/results.jsonl" "$out" "$(git describe --always --dirty)" "$moto_version" <<'PY'
import json, os, re, sys, datetime
results = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out, commit, moto = sys.argv[2], sys.argv[3], sys.argv[4]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
lines = ["<!-- media-s3:begin -->", "## Media on S3-compatible storage (issue 15)", "",
         f"Command: `bash scripts/bench-media-s3.sh` · commit `{commit}` · {datetime.date.today()} · "
         f"{cpu}, {os.cpu_count()} cores · S3 server: moto {moto} (server mode), pinned with the client to core 1; "
         "quire on core 0 with `--media-store s3://...` (8 MiB parts). The plain client is `quire-bench`'s "
         "own HTTP/1.1 client: one unsigned `PUT` of the object, one `GET` of the blob quire stored.", "",
         "| scenario | through quire | straight to the S3 server | ratio / figure | goal | met |",
         "|---|---:|---:|---:|---|---|"]
for r in results:
    if "ratio" in r:
        lines.append(f"| {r['scenario']} (128 MiB) | {r['quire_mb_s']:.0f} MB/s | {r['peer_mb_s']:.0f} MB/s | {r['ratio']:.2f} | {r['goal']} | {'met' if r['met'] else 'not met'} |")
    elif "rss_growth_mb" in r:
        lines.append(f"| {r['scenario']}, through quire to S3 | RSS +{r['rss_growth_mb']:.1f} MB (from {r['rss_before_mb']:.1f} MB) | — | — | {r['goal']} | {'met' if r['met'] else 'not met'} |")
by = {r["scenario"]: r for r in results}
u = by.get("media upload to S3")
if u and not u["met"]:
    lines += ["", f"Upload goal missed in this run ({u['quire_mb_s']:.0f} vs {u['peer_mb_s']:.0f} MB/s): "
              "quire's upload is a multipart upload (16 parts of 8 MiB, each part hashed on the blocking pool), "
              "then a server-side copy of the finished object to its content address and a delete of the "
              "temporary one; the S3 server writes the bytes three times (parts, assembled object, copy) where "
              "the plain PUT writes them once."]
c = next((r for r in results if "rss_growth_mb" in r), None)
if c and not c["met"]:
    lines += ["", f"RSS goal missed in this run (+{c['rss_growth_mb']:.1f} MB): the upload part buffers are a pool "
              "kept for reuse, `--s3-upload-buffer-mib` (16 MiB = 16.8 MB by default) once all are in use, and each "
              "of the 20 connections adds its read buffer (at most `--max-header-bytes`, 64 KiB) and, for downloads, "
              "the S3 response's read buffers (measured at 0.7 to 1 MB per download); `--s3-upload-buffer-mib 8` "
              "lowers the first part by 8 MB at the cost of receiving and sending an upload's parts in turn."]
lines += ["", "The RSS-growth row reads its baseline from a freshly started quire that has received no "
          "upload and hashed no password (the blob it downloads was uploaded before a restart)."]
lines.append("<!-- media-s3:end -->")
section = "\n".join(lines) + "\n"
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n"
if "<!-- media-s3:begin -->" in text:
    text = re.sub(r"<!-- media-s3:begin -->.*?<!-- media-s3:end -->\n?", section, text, flags=re.S)
elif "<!-- media:end -->" in text:
    text = text.replace("<!-- media:end -->\n", "<!-- media:end -->\n\n" + section, 1)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(out, "w").write(text)
print(section)
PY
