#!/usr/bin/env bash
# Load benchmark of a release build: /flags?v=2 with a 50-flag project and a realistic body,
# next to a bare hyper "hello world" (the ceiling) measured the same way; resident memory idle
# and under load with 1,000 flags; /flags/definitions fresh and 304.
# Usage: bench/load.sh [duration-seconds]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}
threads=2
conns=64
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)"; exit 1; }
cargo build --release -q -p vexil -p vexil-bench --example ceiling
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1"; exit 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
summary() { # wrk output → "req/s p50 p99"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s req/s, p50 %s, p99 %s\n", rps, p50, p99}'
}

start_vexil() { # $1 = data dir
  port=$(free_port)
  ./target/release/vexil serve --addr "127.0.0.1:$port" --data-dir "$1" >"$1.log" 2>&1 &
  pids+=($!); vexil_pid=$!
  host="http://127.0.0.1:$port"
  wait_ready "$host/_readiness"
}

project() { # $1 = data dir → exports VEXIL_TOKEN VEXIL_SECRET PHX
  local keys; keys=$(./target/release/vexil project create --name bench --json --data-dir "$1")
  export VEXIL_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
  export VEXIL_SECRET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret_api_key"])' "$keys")
  PHX=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "wrk: -t$threads -c$conns -d${duration}s --latency"

# 1. The ceiling: bare hyper hello world.
cport=$(free_port)
./target/release/examples/ceiling "127.0.0.1:$cport" &
pids+=($!)
wait_ready "http://127.0.0.1:$cport/"
echo -n "ceiling (hyper hello world, GET):        "
wrk -t$threads -c$conns -d${duration}s --latency "http://127.0.0.1:$cport/" | summary
echo -n "ceiling (hyper hello world, POST body):  "
VEXIL_TOKEN=x wrk -t$threads -c$conns -d${duration}s --latency -s bench/flags.lua "http://127.0.0.1:$cport/" | summary

# 2. /flags with 50 flags.
mkdir -p "$tmp/d50"; project "$tmp/d50"; start_vexil "$tmp/d50"
python3 bench/seed.py "$host" "$PHX" 50 >/dev/null
sleep 0.5
echo -n "vexil /flags?v=2, 50 flags, realistic body: "
wrk -t$threads -c$conns -d${duration}s --latency -s bench/flags.lua "$host" | summary
resp_bytes=$(curl -s -XPOST "$host/flags/?v=2" -H 'content-type: application/json' -d "{\"token\":\"$VEXIL_TOKEN\",\"distinct_id\":\"u\",\"person_properties\":{\"email\":\"u@example.com\",\"plan\":\"pro\",\"country\":\"US\",\"age\":34,\"\$app_version\":\"3.4.1\",\"signup_date\":\"2025-06-01\"}}" | wc -c)
cport2=$(free_port)
./target/release/examples/ceiling "127.0.0.1:$cport2" "$resp_bytes" &
pids+=($!)
wait_ready "http://127.0.0.1:$cport2/"
echo -n "ceiling with a ${resp_bytes}-byte response (same size as vexil's): "
VEXIL_TOKEN=x wrk -t$threads -c$conns -d${duration}s --latency -s bench/flags.lua "http://127.0.0.1:$cport2/" | summary

echo -n "vexil /batch/ capture, 10 events per request (durable ack): "
wrk -t$threads -c$conns -d${duration}s --latency -s bench/capture.lua "$host" | summary

# 3. 1,000 flags: memory idle and under load, definitions fresh and 304.
mkdir -p "$tmp/d1000"; project "$tmp/d1000"
kill "$vexil_pid"; start_vexil "$tmp/d1000"
python3 bench/seed.py "$host" "$PHX" 1000 >/dev/null
sleep 0.5
echo "vexil RSS idle with 1,000 flags: $(( $(rss_kb "$vexil_pid") / 1024 )) MiB"
wrk -t$threads -c$conns -d${duration}s --latency -s bench/flags.lua "$host" >"$tmp/w1000" &
wpid=$!
sleep $(( duration / 2 ))
echo "vexil RSS under /flags load with 1,000 flags: $(( $(rss_kb "$vexil_pid") / 1024 )) MiB"
wait $wpid
echo -n "vexil /flags?v=2, 1,000 flags: "; summary <"$tmp/w1000"
etag=$(curl -si "$host/flags/definitions?token=$VEXIL_TOKEN" -H "Authorization: Bearer $VEXIL_SECRET" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
size=$(curl -s "$host/flags/definitions?token=$VEXIL_TOKEN" -H "Authorization: Bearer $VEXIL_SECRET" | wc -c)
echo -n "definitions fresh (200, $((size / 1024)) KiB, 1,000 flags): "
VEXIL_ETAG= wrk -t$threads -c16 -d$(( duration / 2 ))s --latency -s bench/definitions.lua "$host" | summary
echo -n "definitions unchanged (304):                       "
VEXIL_ETAG="$etag" wrk -t$threads -c16 -d$(( duration / 2 ))s --latency -s bench/definitions.lua "$host" | summary
