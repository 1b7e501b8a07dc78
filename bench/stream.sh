#!/usr/bin/env bash
# Change-stream benchmark of a release build (crates/bench/examples/stream.rs): change -> event
# latency at a /flags/definitions/stream client (p50/p99, alone and among N idle streams), N idle
# streams on one server with its RSS per stream, and one change's fan-out to all of them.
# Usage: bench/stream.sh [streams] [changes]          (defaults: 10000, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-10000}
changes=${2:-200}
cargo build --release -q -p vexil
cargo build --release -q -p vexil-bench --example stream
# One socket per stream in each process, plus headroom: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > streams + 1100 )) || { echo "open-file limit $(ulimit -n) too low for $streams streams" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
keys=$(./target/release/vexil project create --name bench --json --data-dir "$tmp")
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$keys" "$1"; }
./target/release/vexil serve --addr "127.0.0.1:$port" --data-dir "$tmp" \
  --max-streams $((streams + 10)) --max-connections $((streams + 1000)) \
  --management-rate 0 >"$tmp/serve.log" 2>&1 &
pid=$!
host="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), commit $(git rev-parse --short HEAD)"
./target/release/examples/stream "$host" "$(field personal_api_key)" "$(field api_token)" \
  "$(field secret_api_key)" "$pid" "$streams" "$changes"
