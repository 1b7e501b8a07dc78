#!/usr/bin/env bash
# Behavioural cohorts: capture -> flipped /flags latency (p50/p99 over TRIALS new persons, on
# loopback) and counter memory per active person. Usage: bench/behavior.sh [trials] [persons]
# PROFILE=debug runs the debug build (no release build needed; slower numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-200}
persons=${2:-100000}
profile=${PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)
cargo build $flag -q -p vexil
cargo build $flag -q -p vexil-bench --example behavior
bin=./target/$profile
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
keys=$("$bin/vexil" project create --name bench --json --data-dir "$tmp")
token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
phx=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
"$bin/vexil" serve --addr "127.0.0.1:$port" --data-dir "$tmp" >"$tmp/serve.log" 2>&1 &
pid=$!
host="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), commit $(git rev-parse --short HEAD), $profile build"
"$bin/examples/behavior" "$host" "$phx" "$token" "$trials" "$persons"
