#!/usr/bin/env bash
# The web UI in a real browser: headless Chromium (Debian's `chromium`) driven by playwright-core
# (pinned in tests/ui/package.json) against a live `vexil serve`, with axe-core on every page and
# the published posthog-python SDK reading what the UI wrote. Ends with "ui: N passed, M failed".
#
# Usage: scripts/ui.sh [path/to/vexil]      (default: target/debug/vexil, built if missing)
#   UI_SCREENSHOTS=docs/screenshots scripts/ui.sh   also writes the README's screenshots
#
# Chromium missing: installed with apt-get when running as root; otherwise a loud skip, and with
# CI=true a failure. Needs node/npm and python3 (venv) with access to the npm registry and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '== ui: %s\n' "$*"; }
die() { printf 'ui: FAILED: %s\n' "$*" >&2; exit 1; }

chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [[ -z $chromium ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing chromium (apt-get)"
    apt-get install -y -q chromium >/dev/null || die "apt-get install chromium failed"
    chromium=$(command -v chromium)
  elif [[ ${CI:-} == true ]]; then
    die "chromium is required in CI (apt-get install chromium)"
  else
    printf '\n!! ui: SKIPPED: no chromium on this machine: the browser tests of the web UI did NOT run !!\n\n'
    exit 0
  fi
fi
for tool in node npm python3; do
  command -v "$tool" >/dev/null || die "'$tool' is required"
done

vexil=${1:-$root/target/debug/vexil}
[[ -x $vexil ]] || cargo build -q -p vexil
vexil=$(cd "$(dirname "$vexil")" && pwd)/$(basename "$vexil")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vexil-ui.XXXXXX")
server_pid=
cleanup() {
  local rc=$?
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f $tmp/server.log ]]; then
    echo "---- last lines of the vexil server log" >&2
    tail -n 30 "$tmp/server.log" >&2 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

retry() { "$@" || { echo "ui: retrying: $*" >&2; sleep 3; "$@"; }; }
say "installing playwright-core and axe-core (tests/ui/package.json) and posthog (Python)"
cp tests/ui/package.json tests/ui/harness.mjs tests/ui/*.test.mjs "$tmp/"
(cd "$tmp" && retry npm install -q --no-audit --no-fund >/dev/null) || die "npm install failed"
python3 -m venv "$tmp/venv" || die "python3 -m venv failed"
# The posthog version compat.sh pins (tests/compat/clients.json).
posthog_version=$(python3 scripts/compat-clients.py version python)
retry "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "posthog==$posthog_version" \
  || die "pip install posthog failed"

say "starting vexil serve (a fresh data directory: the first start prints the keys and the admin)"
# Flag usage written every 250 ms, so the usage check sees evaluations without a 10 s wait.
"$vexil" serve --addr 127.0.0.1:0 --data-dir "$tmp/data" --flag-usage-flush-interval 250ms >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 200); do
  grep -q '^vexil listening on ' "$tmp/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || die "vexil serve exited early"
  sleep 0.1
done
host=$(sed -n 's/^vexil listening on //p' "$tmp/server.out")
token=$(grep -o 'phc_[A-Za-z0-9]*' "$tmp/server.out" | head -1)
password=$(sed -n 's/^ *password: *//p' "$tmp/server.out")
[[ -n $host && -n $token && -n $password ]] || die "no address, token or admin password printed: $(cat "$tmp/server.out")"

shots=
if [[ -n ${UI_SCREENSHOTS:-} ]]; then
  mkdir -p "$UI_SCREENSHOTS"
  shots=$(cd "$UI_SCREENSHOTS" && pwd)
fi
say "headless $("$chromium" --version 2>/dev/null | tail -1) against $host"
# Every tests/ui/*.test.mjs against the same server (ui.test.mjs first); each prints its own
# "ui: N passed, M failed" line, which scripts/test.sh adds up.
rc=0
for test in "$tmp/ui.test.mjs" $(ls "$tmp"/*.test.mjs | grep -v '/ui\.test\.mjs$'); do
  VEXIL_HOST=$host VEXIL_TOKEN=$token VEXIL_ADMIN_PASSWORD=$password CHROMIUM=$chromium \
    UI_PYTHON=$tmp/venv/bin/python UI_SCREENSHOTS=$shots node "$test" || rc=1
done
exit $rc
