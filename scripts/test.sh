#!/usr/bin/env bash
# The whole test suite: Rust unit/integration/property tests, the `vexil eval` conformance check,
# then the real PostHog SDKs against a live `vexil serve`, then the web UI in headless Chromium. Ends with one "N passed, N failed" line.
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log=$(mktemp)
# PostgreSQL and Redis for the backend tests: the ones configured or on 127.0.0.1, else temporary.
source "$root/scripts/backends.sh"
trap 'rm -f "$log"; stop_test_backends' EXIT
start_test_backends

echo "== cargo test --workspace"
cargo test --workspace 2>&1 | tee "$log"

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
vexil="$target_dir/debug/vexil"
cargo build -q -p vexil

echo "== vexil eval reproduces the 1000-id consistency lists"
"$root/scripts/check-eval-consistency.sh" "$vexil" 2>&1 | tee -a "$log"

echo "== SDK compatibility: the real posthog (Python) and posthog-node clients against vexil serve"
"$root/scripts/compat.sh" "$vexil" 2>&1 | tee -a "$log"

echo "== web UI: headless Chromium (playwright-core, axe-core) against vexil serve"
"$root/scripts/ui.sh" "$vexil" 2>&1 | tee -a "$log"

# Totals: cargo's "test result" lines, the eval check's and compat's own closing lines.
python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
passed = failed = 0
for p, f in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
    passed, failed = passed + int(p), failed + int(f)
for p, f in re.findall(r"^(?:conformance/\S+|compat|ui(?:/\S+)?): (\d+) passed, (\d+) failed$", text, re.M):
    passed, failed = passed + int(p), failed + int(f)
print(f"total: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
