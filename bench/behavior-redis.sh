#!/usr/bin/env bash
# Behavioural cohorts across nodes: capture on node A -> flipped /flags on node B (p50/p99 over
# TRIALS new persons, loopback), two `vexil serve` on one PostgreSQL database sharing a Redis of
# their own; and counter memory per active person in Redis (MEMORY USAGE, used_memory).
# Usage: bench/behavior-redis.sh [trials] [persons]
# POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) names a server where a
# temporary database is created. PROFILE=debug runs the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-200}
persons=${2:-100000}
profile=${PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)
pg=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build $flag -q -p vexil
cargo build $flag -q -p vexil-bench --example behavior
bin=./target/$profile
tmp=$(mktemp -d)
db="vexil_bench_$$"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql -q "$pg" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --save "" --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis="redis://127.0.0.1:$redis_port"

psql -q "$pg" -c "CREATE DATABASE $db" >/dev/null
url="${pg%/*}/$db"
keys=$("$bin/vexil" project create --name bench --json --database-url "$url")
token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
phx=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
free=($(free_port) $(free_port))
hosts=("http://127.0.0.1:${free[0]}" "http://127.0.0.1:${free[1]}")
serve() { # node index
    "$bin/vexil" serve --addr "127.0.0.1:${free[$1]}" --database-url "$url" --redis-url "$redis" >"$tmp/node$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -sf "${hosts[$1]}/_readiness" >/dev/null && break; sleep 0.1; done
}
# The cohort and flag are created through node A; node B learns them at its start.
serve 0
flag=$(SETUP_ONLY=1 "$bin/examples/behavior" "${hosts[0]}" "$phx" "$token")
serve 1

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), commit $(git rev-parse --short HEAD), $profile build, $(redis-server --version | cut -d' ' -f3)"
FLAG=$flag FLAGS_HOST=${hosts[1]} REDIS_URL=$redis "$bin/examples/behavior" "${hosts[0]}" "$phx" "$token" "$trials" "$persons"
