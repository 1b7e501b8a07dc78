#!/usr/bin/env bash
# Instructions per /flags?v=2 request, counted by callgrind: a cost per request that does not
# depend on what else runs on the machine (bench/load.sh's req/s and CPU time do), for comparing
# builds while the machine is shared. Same project and body as bench/load.sh: 50 flags
# (bench/seed.py), posthog-python's body with a fresh distinct id per request
# (bench/instructions.py, one keep-alive connection, requests one after another).
#
# Each server runs under `valgrind --tool=callgrind` pinned to one core (so Tokio starts one
# worker, as in bench/load.sh), is warmed up with instrumentation off, then counts N requests
# (`callgrind_control -i on`, N requests, dump). Printed: instructions per request for the bare
# hyper ceiling answering an 11-byte body and one of Vexil's response size, for Vexil, and (with
# BEFORE_BIN) an older Vexil on a copy of the same project; the ratios; Vexil's top functions.
# Vexil runs with the overload controller's queue-delay and busy-time shedding off
# (VEXIL_MAX_QUEUE_DELAY_MS=0, VEXIL_MAX_BUSY_MS=0): under callgrind it runs ~50x slower and would
# shed. What the server does while idle during the counted window (Tokio's timer) is counted too.
# Callgrind counts user-space instructions only: the kernel's share (the loopback writes) is not
# in these figures, so the ceilings' counts are small and the ratios are not bench/load.sh's.
# SHA-1 runs its portable code under valgrind (no SHA-NI), more instructions than natively.
#
# Usage: bench/instructions.sh [N]        (default 2000)
#   VEXIL_BIN=path    measure this vexil binary instead of building one
#   BEFORE_BIN=path   also measure this older vexil build
#   SERVER_CPU        core for the servers (default 0)
#   TOP               how many functions of the profile to print (default 25)
# Needs valgrind (apt-get install valgrind) and taskset. Profiles stay in target/instructions/
# (callgrind_annotate target/instructions/vexil.out).
set -euo pipefail
cd "$(dirname "$0")/.."
export VEXIL_MAX_QUEUE_DELAY_MS=0 VEXIL_MAX_BUSY_MS=0
n=${1:-2000}
warm=200
cpu=${SERVER_CPU:-0}
top=${TOP:-25}
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)"; exit 1; }
if [ -n "${VEXIL_BIN:-}" ]; then
  cargo build --release -q -p vexil-bench --example ceiling
  vexil=$VEXIL_BIN
else
  cargo build --release -q -p vexil
  cargo build --release -q -p vexil-bench --example ceiling
  vexil=./target/release/vexil
fi
ceiling=./target/release/examples/ceiling
out=target/instructions
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not ready: $1"; exit 1; }

# The project: created and seeded by the older binary when there is one (a newer binary migrates
# a data dir forward, an older one cannot open a migrated one), then copied for each server.
seeder=${BEFORE_BIN:-$vexil}
keys=$("$seeder" project create --name bench --json --data-dir "$tmp/d")
token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
phx=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
port=$(free_port)
"$seeder" serve --addr "127.0.0.1:$port" --data-dir "$tmp/d" >"$tmp/seed.log" 2>&1 &
seed_pid=$!; pids+=($seed_pid)
wait_ready "http://127.0.0.1:$port/_readiness"
python3 bench/seed.py "http://127.0.0.1:$port" "$phx" 50 >/dev/null
resp_bytes=$(curl -s -XPOST "http://127.0.0.1:$port/flags/?v=2" -H 'content-type: application/json' \
  -d "{\"token\":\"$token\",\"distinct_id\":\"user-1\",\"groups\":{\"company\":\"acme-1\"},\"person_properties\":{\"email\":\"user1@example.com\",\"plan\":\"pro\",\"country\":\"US\",\"age\":34,\"\$app_version\":\"3.4.1\",\"\$browser\":\"Chrome\",\"utm_source\":\"newsletter\",\"signup_date\":\"2025-06-01\",\"beta_opt_in\":true,\"seats\":12},\"group_properties\":{\"company\":{\"seats\":42,\"industry\":\"saas\"}},\"geoip_disable\":true}" | wc -c)
kill "$seed_pid"; wait "$seed_pid" 2>/dev/null || true

# count NAME URL COMMAND... → instructions per request on stdout, profile in $out/NAME.out
count() {
  local name=$1 url=$2; shift 2
  rm -f "$out/$name".out*
  taskset -c "$cpu" valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$out/$name.out" "$@" >"$tmp/$name.log" 2>&1 &
  local pid=$!; pids+=($pid)
  wait_ready "$url/_readiness"
  python3 bench/instructions.py "$url" "$token" "$warm" >&2 || exit 1
  callgrind_control -i on "$pid" >/dev/null
  python3 bench/instructions.py "$url" "$token" "$n" >&2 || exit 1
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # The dump holds the counted window only (instrumentation was off before it).
  local dump; dump=$(ls "$out/$name".out.* 2>/dev/null | head -1)
  mv "$dump" "$out/$name.out"
  awk -v n="$n" '/^summary:|^totals:/ {t=$2} END {printf "%.0f\n", t/n}' "$out/$name.out"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%FT%TZ)"
echo "vexil: $vexil ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); $n requests counted after $warm, one connection, callgrind on cpu $cpu"
p=$(free_port); tiny=$(count ceiling-tiny "http://127.0.0.1:$p" "$ceiling" "127.0.0.1:$p")
p=$(free_port); same=$(count ceiling-same "http://127.0.0.1:$p" "$ceiling" "127.0.0.1:$p" "$resp_bytes")
cp -r "$tmp/d" "$tmp/dv"
p=$(free_port); vx=$(count vexil "http://127.0.0.1:$p" "$vexil" serve --addr "127.0.0.1:$p" --data-dir "$tmp/dv")
echo "instructions per request: ceiling 11 B $tiny, ceiling $resp_bytes B $same, vexil /flags?v=2 (50 flags) $vx"
if [ -n "${BEFORE_BIN:-}" ]; then
  cp -r "$tmp/d" "$tmp/db"
  p=$(free_port); bx=$(count vexil-before "http://127.0.0.1:$p" "$BEFORE_BIN" serve --addr "127.0.0.1:$p" --data-dir "$tmp/db")
  awk -v b="$bx" -v v="$vx" -v t="$tiny" 'BEGIN {printf "BEFORE vexil (before) %d instructions per request (%.1f%% of the 11-byte ceiling); after / before %.3f\n", b, 100*t/b, v/b}'
fi
awk -v v="$vx" -v t="$tiny" -v s="$same" 'BEGIN {printf "RESULT instructions: 11-byte ceiling / vexil %.1f%%; same-size ceiling / vexil %.1f%%\n", 100*t/v, 100*s/v}'
echo "-- vexil, top $top functions by own instructions (per request)"
callgrind_annotate --threshold=100 "$out/vexil.out" 2>/dev/null | awk -v n="$n" -v top="$top" '
  /^-+$/ {dash++; next}
  dash >= 4 && $1 ~ /^[0-9,]+$/ && !/PROGRAM TOTALS/ && shown < top {
    gsub(",", "", $1); fn=$0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", fn)
    printf "%9.0f  %s\n", $1/n, substr(fn, 1, 150); shown++ }'
