#!/usr/bin/env bash
# Change propagation across nodes (release build; PROFILE=debug runs the debug one): three `vexil serve` nodes on one PostgreSQL
# database (loopback), a flag PATCHed through node A, and the time until `/flags` on B and C
# serves the change (p50/p99 over CHANGES changes), for a project of FLAGS flags, and until a
# client streaming /flags/definitions/stream from B and from C gets the change event.
# PostgreSQL: VEXIL_TEST_POSTGRES_URL, else the server on 127.0.0.1:5432 (user postgres); a
# fresh database is created there and dropped afterwards.
# Usage: bench/propagation.sh [flags] [changes]
set -euo pipefail
cd "$(dirname "$0")/.."
flags=${1:-1000}
changes=${2:-200}
server=${VEXIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
profile=${PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)
cargo build $flag -q -p vexil
cargo build $flag -q -p vexil-bench --example propagation
db="vexil_bench_propagation_$$"
psql "$server" -qAtc "CREATE DATABASE $db"
url="${server%/*}/$db"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$server" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    rm -rf "$tmp"
}
trap cleanup EXIT

keys=$(./target/$profile/vexil project create --name bench --json --database-url "$url")
token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
phx=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
hosts=()
for node in a b c; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # The management rate limit would throttle the seeding, not what is measured.
    ./target/$profile/vexil serve --addr "127.0.0.1:$port" --database-url "$url" \
        --management-rate 0 >"$tmp/$node.log" 2>&1 &
    pids+=($!)
    hosts+=("http://127.0.0.1:$port")
done
for host in "${hosts[@]}"; do
    for _ in $(seq 100); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.1; done
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), commit $(git rev-parse --short HEAD), $(psql "$server" -qAtc 'SHOW server_version' | cut -d' ' -f1) PostgreSQL"
SECRET_KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret_api_key"])' "$keys") \
    ./target/$profile/examples/propagation "${hosts[@]}" "$phx" "$token" "$flags" "$changes"
for i in 1 2; do
    node=$([ $i = 1 ] && echo B || echo C)
    echo "node $node: $(curl -s "${hosts[$i]}/metrics" | grep -E '^vexil_propagation_(reloads_total|applied_total|lag_seconds_(sum|count))' | tr '\n' ' ')"
done
