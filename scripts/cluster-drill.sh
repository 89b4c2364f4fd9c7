#!/usr/bin/env bash
# Cluster drill: `quire-bench cluster-drill` runs 3 quire instances on one fresh PostgreSQL
# database and a private Redis under mixed load (8 writers reading every acknowledged write
# back on another instance, 2,000 anonymous reads/s, 2 SSE subscribers per instance), then
# kill -9s one instance and restarts it, kill -9s Redis (append-only file fsynced on every
# write, so it keeps its data; --redis-persistence none for one that loses it) and restarts it,
# and restarts every instance in
# turn. Fails on any stale read, lost write, missed or duplicated event, or failed request
# other than those the kill -9 cut off (counted and shown).
#
#     bash scripts/cluster-drill.sh [quire-bench cluster-drill flags]     # about a minute
#     QUIRE_DRILL_VIA=nginx bash scripts/cluster-drill.sh                 # through deploy/nginx.conf
#
# Environment: QUIRE_PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/test), where the
# drill's database is created and dropped afterwards; QUIRE_DRILL_PHASE (8s) per phase.
# quire and PostgreSQL share core 0, the drill runs on core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p quire-cli -p quire-bench >&2
target_dir=${CARGO_TARGET_DIR:-target}
admin=${QUIRE_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}
pg_db=quire_cluster_$$
wrapper=$(mktemp "${TMPDIR:-/tmp}/quire-pinned.XXXXXX")
nginx_dir=
cleanup() {
    rm -f "$wrapper"
    if [ -n "$nginx_dir" ]; then
        nginx -p "$nginx_dir" -c "$PWD/deploy/nginx.conf" -s stop 2>/dev/null || true
        rm -rf "$nginx_dir"
    fi
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT
psql -q "$admin" -c "CREATE DATABASE $pg_db" >/dev/null
pin=()
if [ "$(nproc)" -ge 2 ]; then
    pin=(taskset -c 1)
    printf '#!/bin/sh\nexec taskset -c 0 %q "$@"\n' "$(realpath "$target_dir/release/quire")" >"$wrapper"
else
    printf '#!/bin/sh\nexec %q "$@"\n' "$(realpath "$target_dir/release/quire")" >"$wrapper"
fi
chmod +x "$wrapper"
via=()
if [ "${QUIRE_DRILL_VIA:-}" = nginx ]; then
    command -v nginx >/dev/null || { echo "nginx is needed (apt-get install nginx)" >&2; exit 1; }
    nginx_dir=$(mktemp -d)
    nginx -p "$nginx_dir" -c "$PWD/deploy/nginx.conf" -t >&2
    nginx -p "$nginx_dir" -c "$PWD/deploy/nginx.conf"
    via=(--via http://127.0.0.1:8080 --base-port 8080)
fi
"${pin[@]}" "$target_dir/release/quire-bench" cluster-drill --quire "$wrapper" \
    --database "${admin%/*}/$pg_db" --phase "${QUIRE_DRILL_PHASE:-8s}" "${via[@]}" "$@"
