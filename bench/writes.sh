#!/usr/bin/env bash
# Write benchmark of a release build: create flags one by one (the time for the first 2,000 is
# reported), then PATCH flags of the 10,000-flag project and poll /flags until each change is
# visible (p50/p99), then 20 concurrent PATCHes without `version` (conflicts counted).
# Usage: bench/writes.sh [flags] [patches]
set -euo pipefail
cd "$(dirname "$0")/.."
flags=${1:-10000}
patches=${2:-200}
cargo build --release -q -p vexil
cargo build --release -q -p vexil-bench --example writes
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
keys=$(./target/release/vexil project create --name bench --json --data-dir "$tmp")
token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
phx=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
./target/release/vexil serve --addr "127.0.0.1:$port" --data-dir "$tmp" >"$tmp/serve.log" 2>&1 &
pid=$!
host="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), commit $(git rev-parse --short HEAD)"
./target/release/examples/writes "$host" "$phx" "$token" "$flags" "$patches"
