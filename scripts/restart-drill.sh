#!/usr/bin/env bash
# Zero-downtime restart drill: `quire-bench restart-drill` holds one listening socket, starts
# quire on it (inherited, LISTEN_FDS=1), and every second starts a replacement, waits for its
# READY=1 and sends the old one SIGTERM, while `quire-bench load` sends an open-loop load
# through the same socket. Fails on any failed request or non-zero exit.
#
#     bash scripts/restart-drill.sh
#
# Environment: QUIRE_DRILL_RESTARTS (20), QUIRE_DRILL_RATE (2000 req/s),
# QUIRE_DRILL_INTERVAL (1s). quire runs on core 0 and the load on core 1 when 2+ cores.
set -euo pipefail
cd "$(dirname "$0")/.."
restarts=${QUIRE_DRILL_RESTARTS:-20}
rate=${QUIRE_DRILL_RATE:-2000}
interval=${QUIRE_DRILL_INTERVAL:-1s}

cargo build --release -p quire-cli -p quire-bench >&2
target_dir=${CARGO_TARGET_DIR:-target}
pin=()
if [ "$(nproc)" -ge 2 ]; then pin=(taskset -c 1); fi
# The drill (and the load it starts) run on core 1; each quire is pinned to core 0 by taskset
# in a wrapper, so the two never share a core.
wrapper=$(mktemp "${TMPDIR:-/tmp}/quire-pinned.XXXXXX")
trap 'rm -f "$wrapper"' EXIT
if [ "$(nproc)" -ge 2 ]; then
    printf '#!/bin/sh\nexec taskset -c 0 %q "$@"\n' "$(realpath "$target_dir/release/quire")" >"$wrapper"
else
    printf '#!/bin/sh\nexec %q "$@"\n' "$(realpath "$target_dir/release/quire")" >"$wrapper"
fi
chmod +x "$wrapper"
"${pin[@]}" "$target_dir/release/quire-bench" restart-drill \
    --quire "$wrapper" --restarts "$restarts" --rate "$rate" --interval "$interval" "$@"
