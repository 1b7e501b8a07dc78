#!/usr/bin/env bash
# The whole test suite: Rust unit/integration/property tests, then the CLI conformance check.
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

echo "== cargo test --workspace"
cargo test --workspace

echo "== vexil eval reproduces the 1000-id consistency lists"
vexil="$root/target/debug/vexil"
cargo build -q -p vexil
"$root/scripts/check-eval-consistency.sh" "$vexil"

echo "== SDK compatibility: the real posthog (Python) and posthog-node clients against vexil serve"
"$root/scripts/compat.sh" "$vexil"

echo "ALL TESTS PASSED"
