#!/usr/bin/env bash
# Checks deploy/Containerfile and deploy/kubernetes/ (run by .ci/run; runs from any directory).
#
#   bash scripts/check-deploy.sh                          every check below; exit 1 if any fails
#   bash scripts/check-deploy.sh --print-build-command    print only the Containerfile's one
#                                                          marked build command (for .ci/run)
#
# Checks, one line each:
#  - the Containerfile has exactly one build command: the one-line RUN right after the marker
#    comment (the command CI runs), and no other RUN line runs `cargo build`;
#  - its Rust image version is rust-toolchain.toml's; its final stage runs as a numeric
#    non-root USER, EXPOSEs one port, whose HEALTHCHECK asks /health/live, stops with SIGTERM;
#  - every manifest under deploy/kubernetes validates against the Kubernetes OpenAPI schemas
#    (kubernetes-validate, pinned, installed into $HOME/.cache/quire-kubevalidate when missing;
#    strict: unknown fields, kinds and API versions fail);
#  - deployment.yaml: terminationGracePeriodSeconds above quire's --shutdown-grace default
#    (read from quire-cli/src/config.rs) and above the preStop sleep plus twice the grace (the
#    drain's worst case), probes on /health/ready and /health/live, containerPort = EXPOSE,
#    runAsNonRoot with the Containerfile's uid; the Service, PDB, HPA, Secret example and
#    kustomization agree with it; `kubectl kustomize` builds the set when kubectl is present.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
containerfile="$root/deploy/Containerfile"
kube_dir="$root/deploy/kubernetes"
config_rs="$root/quire-cli/src/config.rs"
toolchain="$root/rust-toolchain.toml"

kubevalidate_version="1.37.0"
# The oldest Kubernetes the manifests are meant for, and the newest this version knows.
kube_versions=(1.30.0 1.37.0)
venv="$HOME/.cache/quire-kubevalidate"

marker='# ci-build-command: the next RUN line is the command .ci/run runs'

# The command of the one-line RUN right after the one marker line; why not, on stderr.
build_command() {
    awk -v marker="$marker" '
        { line = $0; sub(/[ \t\r]+$/, "", line) }
        line == marker { marks++; if (marks == 1) after = NR + 1; next }
        NR == after {
            if (line ~ /^RUN[ \t]+[^ \t\[]/ && line !~ /\\$/) { cmd = line; sub(/^RUN[ \t]+/, "", cmd) }
            else bad = "line " NR ", after the marker, is not a one-line shell-form RUN: " line
        }
        line !~ /^[ \t]*#/ && line ~ /cargo[ \t]+build/ { builds++ }
        END {
            if (marks != 1) { print "expected exactly one marker line \"" marker "\", found " marks + 0 > "/dev/stderr"; exit 1 }
            if (bad != "") { print bad > "/dev/stderr"; exit 1 }
            if (cmd == "") { print "no RUN line after the marker" > "/dev/stderr"; exit 1 }
            if (cmd !~ /^cargo build / || cmd !~ /--locked/) { print "the marked command is not a `cargo build ... --locked`: " cmd > "/dev/stderr"; exit 1 }
            if (builds != 1) { print "expected one line running cargo build, found " builds + 0 > "/dev/stderr"; exit 1 }
            print cmd
        }' "$containerfile"
}

if [ "${1:-}" = "--print-build-command" ]; then
    build_command
    exit
elif [ $# -gt 0 ]; then
    echo "usage: $0 [--print-build-command]" >&2
    exit 2
fi

failures=0
ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }

echo "== deploy/Containerfile"
# On success build_command prints only the command; on failure only why.
if cmd="$(build_command 2>&1)"; then
    ok "one marked build command: $cmd"
else
    fail "build command: $cmd"
fi

# The instructions of the final stage, one per line (continuations joined, comments dropped).
final_stage="$(awk '
    /^[ \t]*#/ { next }
    { line = line $0 }
    /\\[ \t]*$/ { sub(/\\[ \t]*$/, " ", line); next }
    { print line; line = "" }' "$containerfile" | awk 'toupper($1) == "FROM" { n++; out = "" } { out = out $0 "\n" } END { printf "%s", out }')"
instruction() { printf '%s\n' "$final_stage" | awk -v want="$1" 'toupper($1) == want { $1 = ""; sub(/^ /, ""); last = $0 } END { print last }'; }

toolchain_version="$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' "$toolchain")"
image_version="$(sed -n 's/^ARG RUST_VERSION=\([^ ]*\)$/\1/p' "$containerfile")"
if [ -n "$toolchain_version" ] && [ "$image_version" = "$toolchain_version" ] \
    && grep -qE '^FROM ([^ ]*/)?rust:\$\{RUST_VERSION\}-' "$containerfile"; then
    ok "Rust image rust:$image_version matches rust-toolchain.toml ($toolchain_version)"
else
    fail "Rust image version '${image_version:-none}' (ARG RUST_VERSION, used by FROM rust:\${RUST_VERSION}-...) differs from rust-toolchain.toml's channel '${toolchain_version:-none}'"
fi

user="$(instruction USER)"
uid="${user%%:*}"
if [[ "$uid" =~ ^[0-9]+$ ]] && [ "$uid" -ne 0 ]; then
    ok "USER $user: numeric and not root"
else
    fail "USER '${user:-none}' in the final stage: must be a numeric uid other than 0 (runAsNonRoot verifies numbers only)"
    uid=""
fi

expose="$(instruction EXPOSE)"
expose_port="${expose%%/*}"
if [[ "$expose_port" =~ ^[0-9]+$ ]]; then
    ok "EXPOSE $expose_port"
else
    fail "EXPOSE '${expose:-none}': expected one port"
    expose_port=""
fi

listen="$(printf '%s\n' "$final_stage" | grep -o 'QUIRE_LISTEN=[^ ]*' | tail -n 1 || true)"
if [ -n "$expose_port" ] && [ "${listen##*:}" = "$expose_port" ]; then
    ok "ENV ${listen} listens on the EXPOSEd port"
else
    fail "ENV QUIRE_LISTEN ('${listen:-not set}') does not listen on the EXPOSEd port ${expose_port:-?}"
fi

healthcheck="$(instruction HEALTHCHECK)"
if [[ "$healthcheck" == *CMD* && "$healthcheck" == */health/live[\"\ ]* ]]; then
    ok "HEALTHCHECK asks /health/live"
else
    fail "HEALTHCHECK must ask /health/live, found: ${healthcheck:-none}"
fi

if [ "$(instruction STOPSIGNAL)" = "SIGTERM" ]; then
    ok "STOPSIGNAL SIGTERM (quire drains on it)"
else
    fail "STOPSIGNAL must be SIGTERM, found: $(instruction STOPSIGNAL)"
fi

echo "== kubernetes-validate $kubevalidate_version (in $venv)"
installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true)"
if [ "$installed" != "$kubevalidate_version" ]; then
    echo "installing kubernetes-validate==$kubevalidate_version into $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" \
        || ! "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$kubevalidate_version"; then
        rm -rf "$venv"
        echo "FAIL  cannot install kubernetes-validate==$kubevalidate_version from PyPI into $venv" >&2
        exit 1
    fi
fi

echo "== deploy/kubernetes: schemas (strict; Kubernetes ${kube_versions[*]})"
shopt -s nullglob
manifests=()
for file in "$kube_dir"/*.yaml "$kube_dir"/*.yml; do
    [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
[ ${#manifests[@]} -gt 0 ] || fail "no manifests in $kube_dir"
for file in "${manifests[@]}"; do
    name="$(basename "$file")"
    for version in "${kube_versions[@]}"; do
        # Exit status 1 on a schema error; an unknown kind or apiVersion is only a WARN line,
        # and a file with no resource passes silently: both fail here.
        if out="$("$venv/bin/kubernetes-validate" --strict -k "$version" "$file" 2>&1)" \
            && ! grep -q '^WARN' <<<"$out" && grep -q ' passed for resource ' <<<"$out"; then
            continue
        fi
        fail "schema: $name against Kubernetes $version:"
        sed 's/^/      /' <<<"${out:-(no output)}"
        continue 2
    done
    ok "schema: $name ($(grep -c ' passed for resource ' <<<"$out") resource(s))"
done

echo "== deploy/kubernetes: consistency with quire and the Containerfile"
# --shutdown-grace's default: the default_value of the #[arg(...)] naming QUIRE_SHUTDOWN_GRACE.
grace_default="$(awk '
    /#\[arg\(/ { block = "" ; inside = 1 }
    inside { block = block $0 }
    inside && /\)\]/ { inside = 0; if (block ~ /env = "QUIRE_SHUTDOWN_GRACE"/) { print block; exit } }' "$config_rs" \
    | sed -n 's/.*default_value = "\([^"]*\)".*/\1/p')"
[ -n "$grace_default" ] || fail "cannot find --shutdown-grace's default (env = \"QUIRE_SHUTDOWN_GRACE\", default_value = ...) in $config_rs"

set +e
KUBE_DIR="$kube_dir" IMAGE_UID="$uid" EXPOSE_PORT="$expose_port" GRACE_DEFAULT="$grace_default" \
    "$venv/bin/python" - <<'PY'
import glob, os, re, sys
import yaml

kube_dir = os.environ["KUBE_DIR"]
failures = 0

def ok(msg):
    print(f"ok    {msg}")

def fail(msg):
    global failures
    failures += 1
    print(f"FAIL  {msg}")

def check(cond, good, bad):
    ok(good) if cond else fail(bad)

def seconds(text):
    """A humantime duration such as 10s, 1m 30s, 500ms, in seconds."""
    units = {"ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60,
             "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600}
    parts = re.findall(r"(\d+)\s*([a-z]+)", text or "")
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text):
        return None
    if any(u not in units for _, u in parts):
        return None
    return sum(int(n) * units[u] for n, u in parts)

docs = {}
files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(kube_dir, "*.y*ml")))
for path in sorted(glob.glob(os.path.join(kube_dir, "*.y*ml"))):
    try:
        with open(path) as f:
            docs[os.path.basename(path)] = [d for d in yaml.safe_load_all(f) if d]
    except yaml.YAMLError as e:
        fail(f"{os.path.basename(path)}: not YAML ({str(e).splitlines()[0]})")

def only(name, kind):
    found = [d for d in docs.get(name, []) if d.get("kind") == kind]
    if len(found) != 1:
        fail(f"{name}: expected one {kind}, found {len(found)}")
        return None
    return found[0]

dep = only("deployment.yaml", "Deployment")
if dep is None:
    sys.exit(1)
pod = dep["spec"]["template"]["spec"]
pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
containers = pod.get("containers", [])
c = next((c for c in containers if c.get("name") == "quire"), containers[0] if containers else {})
ports = c.get("ports", [])
env = {e["name"]: e for e in c.get("env", [])}
args = c.get("args", []) + c.get("command", [])

def resolve(port):
    """A probe's or Service's port (a number or a port name) as the container's port number."""
    if port is None:
        return None
    for p in ports:
        if port in (p.get("name"), p.get("containerPort")):
            return p.get("containerPort")
    return None

# The grace quire runs with: the Deployment's --shutdown-grace / QUIRE_SHUTDOWN_GRACE if
# set, else the default from config.rs.
default_grace = seconds(os.environ["GRACE_DEFAULT"])
grace, source = default_grace, f"default {os.environ['GRACE_DEFAULT']}"
for i, a in enumerate(args):
    if a == "--shutdown-grace" and i + 1 < len(args):
        grace, source = seconds(args[i + 1]), f"--shutdown-grace {args[i + 1]}"
    elif a.startswith("--shutdown-grace="):
        grace, source = seconds(a.split("=", 1)[1]), a
if "--shutdown-grace" not in " ".join(args) and "value" in env.get("QUIRE_SHUTDOWN_GRACE", {}):
    value = env["QUIRE_SHUTDOWN_GRACE"]["value"]
    grace, source = seconds(value), f"QUIRE_SHUTDOWN_GRACE={value}"

pre_stop = (c.get("lifecycle") or {}).get("preStop") or {}
sleep = 0
if "sleep" in pre_stop:
    sleep = pre_stop["sleep"].get("seconds", 0)
elif "exec" in pre_stop:
    command = pre_stop["exec"].get("command", [])
    if len(command) == 2 and command[0].endswith("sleep") and command[1].isdigit():
        sleep = int(command[1])
    else:
        fail(f"preStop {command}: expected [\"/bin/sleep\", \"N\"]")
elif pre_stop:
    fail(f"preStop: only a sleep is expected, found {pre_stop}")

tgps = pod.get("terminationGracePeriodSeconds")
if default_grace is None or grace is None:
    fail(f"cannot read a duration from the shutdown grace ({source})")
elif not isinstance(tgps, int):
    fail("deployment.yaml: terminationGracePeriodSeconds is not set")
else:
    check(tgps > default_grace,
          f"terminationGracePeriodSeconds {tgps} > --shutdown-grace default {default_grace:g}s",
          f"terminationGracePeriodSeconds {tgps} must be above --shutdown-grace's default "
          f"{default_grace:g}s (quire-cli/src/config.rs)")
    worst = sleep + 2 * grace
    check(tgps > worst,
          f"terminationGracePeriodSeconds {tgps} > preStop sleep {sleep}s + 2 x grace {grace:g}s "
          f"({source}) = {worst:g}s",
          f"terminationGracePeriodSeconds {tgps} must be above preStop sleep {sleep}s + 2 x "
          f"shutdown grace {grace:g}s ({source}) = {worst:g}s: quire drains in-flight requests "
          f"and then WebSockets, each for up to the grace")

for probe, want in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live"),
                    ("startupProbe", "/health/live")):
    get = (c.get(probe) or {}).get("httpGet")
    if get is None:
        if probe != "startupProbe":
            fail(f"{probe}: expected httpGet {want}")
        continue
    check(get.get("path") == want and resolve(get.get("port")) is not None,
          f"{probe} httpGet {want} on port {get.get('port')}",
          f"{probe} httpGet must ask {want} on the container's port, found "
          f"{get.get('path')} on {get.get('port')}")

expose = os.environ["EXPOSE_PORT"]
numbers = [p.get("containerPort") for p in ports]
check(len(numbers) == 1 and expose.isdigit() and numbers[0] == int(expose),
      f"containerPort {numbers[0] if numbers else None} = Containerfile EXPOSE {expose}",
      f"containerPort(s) {numbers} must be the Containerfile's EXPOSE {expose or '?'}")
listen = env.get("QUIRE_LISTEN", {}).get("value")
if listen is not None:
    check(numbers and listen.rsplit(":", 1)[-1] == str(numbers[0]),
          f"QUIRE_LISTEN {listen} listens on containerPort",
          f"QUIRE_LISTEN {listen} does not listen on containerPort {numbers}")

sc_pod, sc_c = pod.get("securityContext") or {}, c.get("securityContext") or {}
non_root = sc_c.get("runAsNonRoot", sc_pod.get("runAsNonRoot"))
run_as = sc_c.get("runAsUser", sc_pod.get("runAsUser"))
image_uid = os.environ["IMAGE_UID"]
check(non_root is True and image_uid.isdigit() and run_as == int(image_uid),
      f"runAsNonRoot, runAsUser {run_as} = Containerfile USER {image_uid}",
      f"securityContext needs runAsNonRoot: true and runAsUser = the Containerfile's uid "
      f"({image_uid or '?'}), found runAsNonRoot {non_root}, runAsUser {run_as}")

cpu_request = ((c.get("resources") or {}).get("requests") or {}).get("cpu")
check(cpu_request is not None, f"CPU request {cpu_request} (the HPA's measure)",
      "the container needs a CPU request: the HPA's utilization is relative to it")

def selects(selector):
    labels = (selector or {}).get("matchLabels", selector or {})
    return bool(labels) and all(pod_labels.get(k) == v for k, v in labels.items())

svc = only("service.yaml", "Service")
if svc:
    targets = [p.get("targetPort", p.get("port")) for p in svc["spec"].get("ports", [])]
    check(selects(svc["spec"].get("selector")) and targets and all(resolve(t) for t in targets),
          f"Service selects the pods and targets their port ({targets})",
          f"Service must select the pod labels {pod_labels} and target a container port, "
          f"found selector {svc['spec'].get('selector')} targetPort {targets}")

pdb = only("pdb.yaml", "PodDisruptionBudget")
if pdb:
    spec = pdb["spec"]
    check(selects(spec.get("selector")) and ("minAvailable" in spec) != ("maxUnavailable" in spec),
          "PodDisruptionBudget selects the pods, with one of minAvailable/maxUnavailable",
          "PodDisruptionBudget must select the pod labels and set exactly one of "
          "minAvailable/maxUnavailable")

hpa = only("hpa.yaml", "HorizontalPodAutoscaler")
if hpa:
    ref = hpa["spec"].get("scaleTargetRef", {})
    cpu = [m for m in hpa["spec"].get("metrics", [])
           if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"]
    check(ref.get("kind") == "Deployment" and ref.get("name") == dep["metadata"]["name"]
          and cpu and hpa["spec"].get("minReplicas", 1) >= 2,
          f"HPA scales Deployment {ref.get('name')} on CPU, from {hpa['spec'].get('minReplicas')} pods",
          "HPA must scale this Deployment on CPU with minReplicas >= 2 (the PDB needs two)")
    check("replicas" not in dep["spec"], "Deployment leaves replicas to the HPA",
          "Deployment sets replicas: every kubectl apply would undo the HPA's count")

secret = only("secret.example.yaml", "Secret")
if secret:
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    refs = [(e["name"], e["valueFrom"]["secretKeyRef"]) for e in env.values()
            if "secretKeyRef" in e.get("valueFrom", {})]
    missing = [f"{name} ({ref['key']})" for name, ref in refs
               if ref.get("name") != secret["metadata"]["name"] or ref.get("key") not in keys]
    check(refs and not missing,
          f"secret.example.yaml has every key the Deployment reads ({len(refs)})",
          f"secret.example.yaml lacks what the Deployment reads: {missing or 'no secretKeyRef at all'}")
    for name in ("QUIRE_DATABASE_URL", "QUIRE_REDIS_URL"):
        check(name in dict(refs), f"{name} comes from the Secret",
              f"{name} must come from the Secret (valueFrom.secretKeyRef)")

kustomization = (docs.get("kustomization.yaml") or [{}])[0]
listed = kustomization.get("resources", [])
expected = sorted(n for n in files if n not in ("kustomization.yaml", "secret.example.yaml"))
check(sorted(listed) == expected,
      f"kustomization.yaml lists {', '.join(expected)} (not secret.example.yaml)",
      f"kustomization.yaml must list {expected} and not secret.example.yaml, found {listed}")

sys.exit(min(failures, 100))
PY
status=$?
set -e
failures=$((failures + status))

if command -v kubectl >/dev/null; then
    if out="$(kubectl kustomize "$kube_dir" 2>&1)"; then
        ok "kubectl kustomize builds $(grep -c '^kind:' <<<"$out") resources"
    else
        fail "kubectl kustomize $kube_dir:"
        sed 's/^/      /' <<<"$out"
    fi
else
    echo "skip  kubectl kustomize (no kubectl)"
fi

if [ "$failures" -gt 0 ]; then
    echo "check-deploy: FAILED ($failures)" >&2
    exit 1
fi
echo "check-deploy: all checks passed"
