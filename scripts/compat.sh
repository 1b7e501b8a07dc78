#!/usr/bin/env bash
# Compatibility tests: the real published PostHog SDKs (posthog for Python, posthog-node, posthog-rs,
# and posthog-js in headless Chromium), the official OpenFeature OFREP providers (node server, web in
# headless Chromium, Python, Rust) and a real SSE client (httpx-sse, on the change streams) against a
# live `vexil serve`, then a restart of the server and a persistence check. The browser suites
# (tests/compat/browser) need Debian's `chromium` (or CHROMIUM=path); without it this fails.
#
# Usage: scripts/compat.sh [path/to/vexil]        (default: target/debug/vexil, built if missing)
#
# Needs python3 (with venv) and node/npm, plus network access to PyPI and the npm registry; it
# installs everything else into a throwaway directory that is removed on exit. It never skips:
# a missing tool is an error. (Outside CI, VEXIL_COMPAT=skip skips it with a loud message.)
# VEXIL_COMPAT_KEEP=1 keeps the throwaway directory (server logs, venv) for debugging.
set -euo pipefail
cd "$(dirname "$0")/.."
# The SDK suites test compatibility, not overload (crates/server/tests/it/overload.rs does): on a
# 2-core CI machine running Chromium beside the debug server, the lateness and busy-time sheds
# once answered a posthog-js /flags with 503. Both are off for the servers started here.
export VEXIL_MAX_QUEUE_DELAY_MS=0 VEXIL_MAX_BUSY_MS=0
root=$(pwd)
started=$SECONDS

# The clients under test, pinned exactly in tests/compat/clients.json (the README's compatibility
# table is generated from it): the current majors, and older majors that are still widely deployed
# and speak the legacy endpoints (/decide, /api/feature_flag/local_evaluation).
clients() { python3 "$root/scripts/compat-clients.py" "$@"; }
mapfile -t PY_PACKAGES < <(clients spec python; clients spec httpx-sse)
mapfile -t PY_LEGACY_PACKAGES < <(clients spec python-legacy)
NODE_PACKAGE=$(clients spec node)
NODE_LEGACY_PACKAGE=$(clients spec node-legacy)
mapfile -t OFREP_PY_PACKAGES < <(clients spec ofrep-python)
mapfile -t OFREP_NODE_PACKAGES < <(clients spec ofrep-node)
# posthog-js and the OFREP web provider run in headless Chromium (Debian's `chromium`, driven by
# playwright-core), installed together (each spec once).
mapfile -t BROWSER_PACKAGES < <({ clients spec posthog-js; clients spec ofrep-web; } | awk '!seen[$0]++')
# The Rust provider (open-feature-ofrep, open-feature 0.3.0) is pinned by
# tests/compat/ofrep-rust/Cargo.lock (clients.json names the same version; the README check compares
# them) and built into target/ofrep-rust (minutes when cold: rustls on aws-lc).
ofrep_rust_target=$root/target/ofrep-rust
# posthog-rs (tests/compat/posthog-rs, pinned by its Cargo.lock) shares that target directory: the
# same reqwest/rustls/aws-lc builds.

say() { printf '== compat: %s\n' "$*"; }
die() { printf 'compat: FAILED: %s\n' "$*" >&2; exit 1; }

if [[ ${VEXIL_COMPAT:-} == skip ]]; then
  [[ ${CI:-} == true ]] && die "VEXIL_COMPAT=skip is not allowed in CI"
  printf '\n!! compat: SKIPPED (VEXIL_COMPAT=skip): the SDK compatibility tests did NOT run !!\n\n'
  exit 0
fi

for tool in python3 node npm curl; do
  command -v "$tool" >/dev/null || die "'$tool' is required (python3 with venv, node >= 20 with npm, curl)"
done
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[[ -n $CHROMIUM ]] || die "'chromium' is required for the browser suites (apt-get install chromium)"
export CHROMIUM

vexil=${1:-$root/target/debug/vexil}
if [[ ! -x $vexil ]]; then
  say "building $vexil"
  cargo build -q -p vexil
fi
vexil=$(cd "$(dirname "$vexil")" && pwd)/$(basename "$vexil")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vexil-compat.XXXXXX")
server_pid=
server_problems=()
# Stops the server with SIGTERM and records it if it had died before or did not exit cleanly (0).
stop_server() {
  [[ -n $server_pid ]] || return 0
  local rc=0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      server_problems+=("vexil serve did not stop within 10 s of SIGTERM")
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || rc=$?
    [[ $rc -eq 0 ]] || server_problems+=("vexil serve exited with status $rc after SIGTERM")
  else
    wait "$server_pid" 2>/dev/null || rc=$?
    server_problems+=("vexil serve died during the tests (status $rc)")
  fi
  server_pid=
}
cleanup() {
  local rc=$?
  stop_server
  if [[ $rc -ne 0 && -f $tmp/server.log ]]; then
    echo "---- last lines of the vexil server log ($tmp/server.log)" >&2
    tail -n 40 "$tmp/server.log" >&2 || true
  fi
  if [[ ${VEXIL_COMPAT_KEEP:-} == 1 ]]; then
    echo "compat: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- clients under test -----------------------------------------------------------------------
t0=$SECONDS
# Registries can hiccup: one retry for each install.
retry() { "$@" || { echo "compat: retrying: $*" >&2; sleep 3; "$@"; }; }
python_env() { # dir, packages...
  local dir=$1
  shift
  say "installing $* into a virtualenv"
  python3 -m venv "$dir" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  retry "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" || die "pip install $* failed"
}
node_env() { # dir, package
  say "installing $2"
  mkdir -p "$1"
  cp "$root"/tests/compat/node/package.json "$root"/tests/compat/node/*.mjs "$1/"
  (cd "$1" && retry npm install --no-audit --no-fund --loglevel=error "$2" >/dev/null) || die "npm install $2 failed"
}
python_env "$tmp/venv" "${PY_PACKAGES[@]}"
python_env "$tmp/venv-legacy" "${PY_LEGACY_PACKAGES[@]}"
node_env "$tmp/node" "$NODE_PACKAGE"
node_env "$tmp/node-legacy" "$NODE_LEGACY_PACKAGE"
python_env "$tmp/venv-ofrep" "${OFREP_PY_PACKAGES[@]}"
say "installing ${OFREP_NODE_PACKAGES[*]}"
mkdir -p "$tmp/ofrep-node"
cp "$root"/tests/compat/ofrep-node/package.json "$root"/tests/compat/ofrep-node/*.mjs "$root"/tests/compat/node/lib.mjs "$tmp/ofrep-node/"
(cd "$tmp/ofrep-node" && retry npm install --no-audit --no-fund --loglevel=error "${OFREP_NODE_PACKAGES[@]}" >/dev/null) \
  || die "npm install ${OFREP_NODE_PACKAGES[*]} failed"
say "installing ${BROWSER_PACKAGES[*]}"
mkdir -p "$tmp/browser"
cp "$root"/tests/compat/browser/package.json "$root"/tests/compat/browser/*.mjs "$root"/tests/compat/node/lib.mjs "$tmp/browser/"
(cd "$tmp/browser" && retry npm install --no-audit --no-fund --loglevel=error "${BROWSER_PACKAGES[@]}" >/dev/null) \
  || die "npm install ${BROWSER_PACKAGES[*]} failed"
say "building the Rust OFREP provider's tests (tests/compat/ofrep-rust)"
(cd "$root/tests/compat/ofrep-rust" && CARGO_TARGET_DIR=$ofrep_rust_target retry cargo test -q --locked --test provider --no-run) \
  || die "building tests/compat/ofrep-rust failed"
say "building the posthog-rs tests and the test GeoIP database's writer (tests/compat/posthog-rs)"
(cd "$root/tests/compat/posthog-rs" && CARGO_TARGET_DIR=$ofrep_rust_target retry cargo test -q --locked --test sdk --no-run \
  && CARGO_TARGET_DIR=$ofrep_rust_target cargo run -q --locked --bin write-test-geoip -- "$tmp/geoip.mmdb") \
  || die "building tests/compat/posthog-rs failed"
py=$tmp/venv/bin/python
version_of() { "$1" -c 'import posthog.version as v; print(v.VERSION)'; }
node_version_of() { node -p 'require(process.argv[1]).version' "$1/node_modules/posthog-node/package.json"; }
py_version=$(version_of "$py")
py_legacy_version=$(version_of "$tmp/venv-legacy/bin/python")
node_version=$(node_version_of "$tmp/node")
node_legacy_version=$(node_version_of "$tmp/node-legacy")
js_version=$(node -p 'require(process.argv[1]).version' "$tmp/browser/node_modules/posthog-js/package.json")
say "clients: posthog (python) $py_version and $py_legacy_version, posthog-node $node_version and $node_legacy_version, posthog-js $js_version, node $(node --version), $("$CHROMIUM" --version 2>/dev/null | head -1)"
[[ $py_version == $(clients version python) && $node_version == $(clients version node) && $js_version == $(clients version posthog-js) ]] \
  || die "installed clients differ from the pins in tests/compat/clients.json"
# Newer majors on the registries: a warning (VEXIL_COMPAT_NEWER=fail makes it an error, e.g. in a
# scheduled CI job that should notice a new SDK major).
say "newer releases of the pinned clients"
PATH="$tmp/venv/bin:$PATH" clients newer || die "a newer major of a client exists (VEXIL_COMPAT_NEWER=fail)"
t_install=$((SECONDS - t0))

# ---- server -----------------------------------------------------------------------------------
data=$tmp/data
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=http://127.0.0.1:$port

# One project per suite, created offline before the server starts, so the suites never see each
# other's flags.
create_project() {
  "$vexil" project create --name "$1" --json --data-dir "$data" > "$tmp/project-$1.json" \
    || die "vexil project create --name $1 failed"
}
projects=(python node walkthrough ofrep-node ofrep-python ofrep-rust posthog-rs sse browser ofrep-web)
for name in "${projects[@]}"; do
  create_project "$name"
done

# A small replay window, so that the SSE suite can fall out of it. GeoIP from the test database,
# with the clients' own address (127.0.0.1) as the trusted proxy: a suite sets X-Forwarded-For to
# be somewhere (the others send none, and loopback has no country).
serve_args=(--stream-replay 8 --geoip-db "$tmp/geoip.mmdb" --trusted-proxies 127.0.0.1/32)
start_server() {
  "$vexil" serve --addr "127.0.0.1:$port" --data-dir "$data" "${serve_args[@]}" >>"$tmp/server.log" 2>&1 &
  server_pid=$!
  "$py" - "$host" "$server_pid" "${#projects[@]}" <<'PY' || die "vexil serve did not become ready on $host"
import os, sys, time, requests
host, pid, projects = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("vexil serve exited")
    try:
        r = requests.get(host + "/_readiness", timeout=2)
        if r.status_code == 200 and r.json().get("loaded") == projects:
            sys.exit(0)
    except requests.RequestException:
        pass
    time.sleep(0.1)
sys.exit("timed out")
PY
}

# Environment for a suite: the server and one project's keys.
project_env() {
  "$py" - "$tmp/project-$1.json" <<'PY'
import json, shlex, sys
p = json.load(open(sys.argv[1]))
for name, key in [("VEXIL_PROJECT_ID", "id"), ("VEXIL_TOKEN", "api_token"),
                  ("VEXIL_SECRET_KEY", "secret_api_key"), ("VEXIL_PERSONAL_KEY", "personal_api_key")]:
    print(f"export {name}={shlex.quote(str(p[key]))}")
PY
}

export VEXIL_HOST=$host
# The SDKs read these; a developer's setting must not change what is tested.
unset POSTHOG_CAPTURE_MODE POSTHOG_CAPTURE_COMPRESSION POSTHOG_LOCAL_EVALUATION_ENDPOINT
export VEXIL_COMPAT_STATE=$tmp/state
export PYTHONDONTWRITEBYTECODE=1
export POSTHOG_DISABLE_TELEMETRY=1
mkdir -p "$VEXIL_COMPAT_STATE"
pytest_args=(-p no:cacheprovider -q -rfE --color=no --durations=3)
failures=()
timings=()

run_phase() { # name, then the command (run in a subshell with that phase's project env)
  local name=$1 t=$SECONDS rc=0 log
  shift
  log=$tmp/phase-$((${#timings[@]} + 1)).log
  say "$name"
  ( "$@" ) 2>&1 | tee "$log" || rc=$?
  timings+=("$name $((SECONDS - t))s")
  if [[ $rc -ne 0 ]]; then
    failures+=("$name (exit $rc)")
  fi
}

# Adds up the closing lines of pytest ("3 failed, 58 passed, 1 error in 5s"), node's runner
# ("ℹ pass 18", "ℹ fail 0", "ℹ cancelled 0") and cargo test ("test result: ok. 6 passed; 0 failed")
# over every phase: prints "PASSED FAILED".
count_tests() {
  "$py" - "$tmp"/phase-*.log <<'PY'
import re, sys
passed = failed = 0
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8", errors="replace").read()
    for line in text.splitlines():
        if re.match(r"^=*\s*\d+ (passed|failed|errors?)\b.* in [\d.]+s", line.strip()):
            passed += sum(int(n) for n in re.findall(r"(\d+) passed", line))
            failed += sum(int(n) for n in re.findall(r"(\d+) (?:failed|errors?)\b", line))
        m = re.match(r"^test result: \w+\. (\d+) passed; (\d+) failed", line.strip())
        if m:  # cargo test
            passed += int(m.group(1))
            failed += int(m.group(2))
        m = re.match(r"^ℹ (pass|fail|cancelled) (\d+)$", line.strip())
        if m:
            if m.group(1) == "pass":
                passed += int(m.group(2))
            else:
                failed += int(m.group(2))
print(passed, failed)
PY
}

python_suite() { eval "$(project_env python)"; "$py" -m pytest "${pytest_args[@]}" "$root/tests/compat/python/sdk"; }
walkthrough_suite() {
  eval "$(project_env walkthrough)"
  VEXIL_README=$root/README.md "$py" -m pytest "${pytest_args[@]}" "$root/tests/compat/python/walkthrough"
}
node_suite() {
  eval "$(project_env node)"
  cd "$tmp/node" && node --test --test-reporter=spec ./*.test.mjs
}
legacy_python_suite() {
  eval "$(project_env python)"
  "$tmp/venv-legacy/bin/python" -m pytest "${pytest_args[@]}" "$root/tests/compat/python/legacy"
}
legacy_node_suite() {
  eval "$(project_env node)"
  cd "$tmp/node-legacy" && node --test --test-reporter=spec ./legacy.mjs
}
ofrep_node_suite() {
  eval "$(project_env ofrep-node)"
  cd "$tmp/ofrep-node" && node --test --test-reporter=spec ./ofrep.test.mjs
}
ofrep_rust_suite() {
  eval "$(project_env ofrep-rust)"
  cd "$root/tests/compat/ofrep-rust" && CARGO_TARGET_DIR=$ofrep_rust_target cargo test -q --locked --test provider
}
posthog_rs_suite() {
  eval "$(project_env posthog-rs)"
  cd "$root/tests/compat/posthog-rs" && CARGO_TARGET_DIR=$ofrep_rust_target cargo test -q --locked --test sdk
}
ofrep_python_suite() {
  eval "$(project_env ofrep-python)"
  "$tmp/venv-ofrep/bin/python" -m pytest "${pytest_args[@]}" "$root/tests/compat/ofrep-python"
}
browser_suite() {
  eval "$(project_env browser)"
  cd "$tmp/browser" && node --test --test-reporter=spec ./posthog-js.test.mjs
}
ofrep_web_suite() {
  eval "$(project_env ofrep-web)"
  cd "$tmp/browser" && node --test --test-reporter=spec ./ofrep-web.test.mjs
}
sse_suite() {
  eval "$(project_env sse)"
  "$py" -m pytest "${pytest_args[@]}" "$root/tests/compat/sse"
}
persistence_before() {
  eval "$(project_env python)"
  "$py" -m pytest "${pytest_args[@]}" "$root/tests/compat/python/persistence/test_before_restart.py"
}
persistence_after() {
  eval "$(project_env python)"
  "$py" -m pytest "${pytest_args[@]}" "$root/tests/compat/python/persistence/test_after_restart.py"
}
behavior_before() {
  eval "$(project_env behavior)"
  "$py" -m pytest "${pytest_args[@]}" "$root/tests/compat/python/behavior/test_before_restart.py"
}
behavior_after() {
  eval "$(project_env behavior)"
  "$py" -m pytest "${pytest_args[@]}" "$root/tests/compat/python/behavior/test_after_restart.py"
}
node_after_restart() {
  eval "$(project_env node)"
  cd "$tmp/node" && node --test --test-reporter=spec ./after-restart.mjs
}

t0=$SECONDS
say "starting vexil serve on $host (data dir $data)"
start_server
t_start=$((SECONDS - t0))

run_phase "python SDK suite" python_suite
run_phase "README walkthrough" walkthrough_suite
run_phase "node SDK suite" node_suite
run_phase "legacy posthog (python) $py_legacy_version" legacy_python_suite
run_phase "legacy posthog-node $node_legacy_version" legacy_node_suite
run_phase "OFREP: @openfeature/ofrep-provider (node server SDK)" ofrep_node_suite
run_phase "OFREP: openfeature-provider-ofrep (python)" ofrep_python_suite
run_phase "OFREP: open-feature-ofrep (rust)" ofrep_rust_suite
run_phase "posthog-rs $(clients version posthog-rs)" posthog_rs_suite
run_phase "posthog-js $js_version in headless Chromium" browser_suite
run_phase "OFREP: @openfeature/ofrep-web-provider (web SDK) in headless Chromium" ofrep_web_suite
run_phase "SSE: httpx-sse on /flags/definitions/stream and the OFREP stream" sse_suite
run_phase "persistence: record before restart" persistence_before

say "restarting the server (SIGTERM, then start again on the same data dir)"
t0=$SECONDS
stop_server
start_server
t_restart=$((SECONDS - t0))
run_phase "persistence: check after restart" persistence_after
run_phase "persistence: node project after restart" node_after_restart

stop_server

# Behavioural cohorts: a `test-clock` build of the same sources (`vexil serve --test-clock`, whose
# time POST /_test/clock moves) on its own data dir, restarted between the two parts.
say "building vexil with the test-clock feature"
t0=$SECONDS
target_dir=$("$py" -c 'import json, subprocess, sys; print(json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"]))["target_directory"])')
cargo build -q -p vexil --features test-clock || die "cargo build -p vexil --features test-clock failed"
cp "$target_dir/debug/vexil" "$tmp/vexil-test-clock"
cargo build -q -p vexil || die "cargo build -p vexil failed" # the plain binary back in place
vexil=$tmp/vexil-test-clock data=$tmp/data-behavior projects=(behavior) serve_args=(--test-clock)
create_project behavior
start_server
t_build_clock=$((SECONDS - t0))
run_phase "behavioural cohorts: before restart" behavior_before
stop_server
start_server
run_phase "behavioural cohorts: after restart, window closing" behavior_after
stop_server

read -r n_passed n_failed < <(count_tests)
say "timings: install ${t_install}s; first start ${t_start}s; test-clock build ${t_build_clock}s; $(printf '%s; ' "${timings[@]}")restart ${t_restart}s; total $((SECONDS - started))s"
say "posthog (python) $py_version + $py_legacy_version, posthog-node $node_version + $node_legacy_version, posthog-rs $(clients version posthog-rs), posthog-js $js_version, OFREP providers (node, web, python, rust): $n_passed passed, $n_failed failed"
failures+=("${server_problems[@]}")
if [[ ${#failures[@]} -gt 0 ]]; then
  die "$(printf '%s; ' "${failures[@]}")"
fi
if [[ $n_passed -eq 0 || $n_failed -ne 0 ]]; then
  die "the runners reported $n_passed passed and $n_failed failed"
fi
echo "compat: $n_passed passed, 0 failed"
