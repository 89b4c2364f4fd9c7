#!/usr/bin/env bash
# Runs the fault drills and conformance checks that take minutes, and rewrites the section
# between <!-- drills:begin --> and <!-- drills:end --> in BENCHMARKS.md from what they
# measured in this run: each row with its command, commit, date and machine.
#
#     bash scripts/drills.sh
#
# Drills: the crash drill on SQLite and on PostgreSQL (QUIRE_DRILLS_POSTGRES=0 skips it),
# the zero-downtime restart drill, Autobahn, and schemathesis against quire's document and
# the RealWorld spec. A failing drill is recorded as not met and makes the script exit 1
# after the section is written. The long drills (soak, slowloris) write their own section.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${QUIRE_BENCH_OUT:-BENCHMARKS.md}
work=$(mktemp -d "${TMPDIR:-/tmp}/quire-drills.XXXXXX")
trap 'rm -rf "$work"' EXIT
commit=$(git describe --always --dirty)
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
failed=0

# drill NAME COMMAND...: runs it, keeping its output and exit status for the report.
drill() {
    local name=$1
    shift
    echo "== $name: $*" >&2
    local started
    started=$(date -u '+%Y-%m-%d %H:%M UTC')
    "$@" >"$work/$name.out" 2>"$work/$name.err"
    local status=$?
    [ "$status" -eq 0 ] || failed=1
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$started" "$*" >>"$work/index.tsv"
}

drill crash-sqlite bash scripts/crash-drill.sh --json
if [ "${QUIRE_DRILLS_POSTGRES:-1}" = 1 ]; then
    drill crash-postgres env QUIRE_CRASH_BACKEND=postgres bash scripts/crash-drill.sh --json
fi
drill restart bash scripts/restart-drill.sh --json
drill autobahn bash scripts/autobahn.sh
drill schemathesis bash scripts/schemathesis.sh

python3 - "$work" "$out" "$commit" "$machine" <<'PY'
import json, os, re, sys
work, out, commit, machine = sys.argv[1:5]
rows = []
for line in open(f"{work}/index.tsv"):
    name, status, started, command = line.rstrip("\n").split("\t")
    stdout = open(f"{work}/{name}.out").read()
    stderr = open(f"{work}/{name}.err").read()
    ok = status == "0"
    verdict = "met" if ok else f"**not met** (exit {status})"
    where = f"`{command}` · commit `{commit}` · {started} · {machine}"
    last_json = next((json.loads(l) for l in reversed(stdout.splitlines()) if l.startswith("{")), None)
    if name.startswith("crash"):
        store = "PostgreSQL" if name.endswith("postgres") else "SQLite"
        what = (f"crash safety on {store}: SIGKILL at a random moment (uptime 0.2-1.2 s) under 8 writers of "
                "articles, comments and favorites; after each kill, and once more after the writers stop, "
                "every acknowledged write is looked up and every article's favorites_count checked")
        if last_json:
            measured = (f"{last_json['cycles']} kills (seed {last_json['seed']}): {last_json['acknowledged_writes']:,} "
                        f"acknowledged writes, {last_json['lost_writes']} lost, {last_json['integrity_failures']} "
                        f"integrity failures, {last_json['seconds']:.0f} s")
        else:
            measured = "no result: " + (stderr.strip().splitlines() or ["(no output)"])[-1]
        goal = "0 lost, 0 integrity failures"
    elif name == "restart":
        what = "zero-downtime restart: socket takeovers (inherited socket, `READY=1`, SIGTERM the old one) under an open-loop load of `/api/articles?limit=10`; the load runs until the last old process has exited"
        if last_json:
            e = last_json["load"]["errors"]
            measured = (f"{last_json['restarts']} restarts, {last_json['load']['responses']:,} responses at "
                        f"{last_json['rate']:.0f} req/s; errors {sum(e.values())}; p99 {last_json['load']['latency_us']['p99']/1000:.1f} ms, "
                        f"max {last_json['load']['latency_us']['max']/1000:.1f} ms; bad exits {last_json['bad_exits']}; "
                        f"slowest start to READY {last_json['slowest_ready_ms']} ms")
        else:
            measured = "no result: " + (stderr.strip().splitlines() or ["(no output)"])[-1]
        goal = "0 errors, every process exits 0"
    elif name == "autobahn":
        line = next((l for l in stdout.splitlines() if l.startswith("autobahn:")), "no report")
        what = "Autobahn WebSocket conformance, cases 1-7, 9, 10 (kosoku) against an echo peer on quire's WebSocket layer"
        measured = line.removeprefix("autobahn: ")
        goal = "≥ 300 cases, each OK, NON-STRICT or INFORMATIONAL"
    else:
        summaries = re.findall(r"(\d+) generated, (.*)", stdout)
        what = ("schemathesis 4.32.5, 100 examples per operation: (1) quire's `/api/openapi.json`, "
                "(2) the RealWorld spec with the two deliberate deviations and RealWorld's documented 403/404")
        measured = "; ".join(f"({i}) {g} generated, {r.strip()}" for i, (g, r) in enumerate(summaries, 1)) or "no summary"
        goal = "no failure in either pass, no ERROR in quire's log"
    rows.append(f"| {what} | {where} | {measured} | {goal} | {verdict} |")
section = "\n".join([
    "<!-- drills:begin -->",
    "## Production drills",
    "",
    "Written by `bash scripts/drills.sh` from this run's results (each row: its command, commit, date and machine).",
    "quire pinned to core 0, drivers to core 1.",
    "",
    "| drill | command, commit, date, machine | measured | goal | met |",
    "|---|---|---|---|---|",
    *rows,
    "<!-- drills:end -->",
]) + "\n"
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n"
if "<!-- drills:begin -->" in text:
    text = re.sub(r"<!-- drills:begin -->.*?<!-- drills:end -->\n?", lambda _: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(out, "w").write(text)
print(section)
PY
exit "$failed"
