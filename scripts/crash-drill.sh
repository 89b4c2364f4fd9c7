#!/usr/bin/env bash
# Crash-safety drill: `quire-bench crash-drill` runs quire on one inherited socket under a
# mixed write load (articles, comments, favorites from 8 signed-in writers), kills it with
# SIGKILL at a random moment, and before restarting it opens the SQLite file to check that
# every acknowledged write is there and PRAGMA integrity_check says ok. Fails on any loss.
#
#     bash scripts/crash-drill.sh [--seed N]      # 200 cycles, a few minutes
#
# Environment: QUIRE_CRASH_CYCLES (200); QUIRE_CRASH_BACKEND=postgres runs quire on a fresh
# PostgreSQL database (created on QUIRE_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/test,
# dropped afterwards) instead of a SQLite file. quire runs on core 0, the writers on core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${QUIRE_CRASH_CYCLES:-200}
cargo build --release --locked -p quire-cli -p quire-bench >&2
target_dir=${CARGO_TARGET_DIR:-target}
pin=()
wrapper=$(mktemp "${TMPDIR:-/tmp}/quire-pinned.XXXXXX")
database_args=()
pg_db=
admin=${QUIRE_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}
cleanup() {
    rm -f "$wrapper"
    if [ -n "$pg_db" ]; then psql -q "$admin" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
}
trap cleanup EXIT
if [ "${QUIRE_CRASH_BACKEND:-sqlite}" = postgres ]; then
    pg_db=quire_crash_$$
    psql -q "$admin" -c "CREATE DATABASE $pg_db" >/dev/null
    database_args=(--database "${admin%/*}/$pg_db")
    echo "crash drill on PostgreSQL database $pg_db" >&2
fi
if [ "$(nproc)" -ge 2 ]; then
    pin=(taskset -c 1)
    printf '#!/bin/sh\nexec taskset -c 0 %q "$@"\n' "$(realpath "$target_dir/release/quire")" >"$wrapper"
else
    printf '#!/bin/sh\nexec %q "$@"\n' "$(realpath "$target_dir/release/quire")" >"$wrapper"
fi
chmod +x "$wrapper"
"${pin[@]}" "$target_dir/release/quire-bench" crash-drill --quire "$wrapper" --cycles "$cycles" "${database_args[@]}" "$@"
