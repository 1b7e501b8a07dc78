#!/usr/bin/env bash
# Load benchmark of a release build, server and load generator each pinned to its own core:
#
#   1. /flags?v=2 with a 50-flag project and a realistic body (fresh distinct id per request),
#      side by side in the same run with a bare hyper server (the ceiling) answering the same
#      POST with an 11-byte body and with a body the size of Vexil's response; ROUNDS rounds,
#      interleaved, so that noise from other work on the machine hits all three alike;
#   2. (unless FLAGS_ONLY=1) capture, resident memory and /flags with 1,000 flags, and
#      /flags/definitions fresh and 304.
#
# Usage: bench/load.sh [duration-seconds] [rounds]
#   SERVER_CPU / CLIENT_CPU  cores for the server and for wrk (default 0 and 1)
#   FLAGS_ONLY=1             only part 1
#   PROFILE=1                also `perf record` Vexil during one extra /flags run (perf.data in
#                            target/load-profile/, summary printed)
#   VEXIL_BIN=path           measure this vexil binary instead of building one
#   BEFORE_BIN=path          also measure this (older) vexil build, same project and seed, in the
#                            same interleaved rounds: before/after in the same conditions
# Needs wrk (apt-get install wrk) and taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
rounds=${2:-3}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
conns=64
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)"; exit 1; }
command -v taskset >/dev/null || { echo "taskset is required (util-linux)"; exit 1; }
if [ -n "${VEXIL_BIN:-}" ]; then
  cargo build --release -q -p vexil-bench --example ceiling
  vexil=$VEXIL_BIN
else
  # Two invocations: with `--example`, `cargo build -p vexil -p vexil-bench` builds only the example.
  cargo build --release -q -p vexil
  cargo build --release -q -p vexil-bench --example ceiling
  vexil=./target/release/vexil
fi
ceiling=./target/release/examples/ceiling
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1"; exit 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
load() { taskset -c "$client_cpu" wrk -t1 -c$conns "$@"; }
summary() { # wrk output → "req/s p50 p99"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s req/s, p50 %s, p99 %s\n", rps, p50, p99}'
}
rps() { awk '/Requests\/sec/ {print $2}'; }
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; } # utime and stime, in clock ticks
# $1 = server pid, then wrk args → wrk output in $tmp/w; on stdout "req/s µs-cpu/req µs-system/req"
# (CPU = user + system time of the server process over the requests wrk completed).
measure() {
  local pid=$1; shift
  local before after
  before=$(cpu_ticks "$pid")
  load "$@" >"$tmp/w"
  after=$(cpu_ticks "$pid")
  awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n=$1} /Requests\/sec/ {r=$2}
    BEGIN {split(b, B, " "); split(a, A, " ")}
    END {printf "%s %.1f %.1f\n", r, (A[1]+A[2]-B[1]-B[2])/hz*1e6/n, (A[2]-B[2])/hz*1e6/n}' "$tmp/w"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

start_vexil() { # $1 = data dir [$2 = binary]
  port=$(free_port)
  taskset -c "$server_cpu" "${2:-$vexil}" serve --addr "127.0.0.1:$port" --data-dir "$1" >"$1.log" 2>&1 &
  pids+=($!); vexil_pid=$!
  host="http://127.0.0.1:$port"
  wait_ready "$host/_readiness"
}

start_ceiling() { # $1 = response bytes (empty: "hello world") → sets ceiling_url
  local p; p=$(free_port)
  taskset -c "$server_cpu" "$ceiling" "127.0.0.1:$p" ${1:+"$1"} &
  pids+=($!); ceiling_pid=$!
  ceiling_url="http://127.0.0.1:$p"
  wait_ready "$ceiling_url/"
}

project() { # $1 = data dir → exports VEXIL_TOKEN VEXIL_SECRET PHX
  local keys; keys=$("$vexil" project create --name bench --json --data-dir "$1")
  export VEXIL_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
  export VEXIL_SECRET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret_api_key"])' "$keys")
  PHX=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%FT%TZ)"
echo "vexil: $vexil ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "servers pinned to cpu $server_cpu, wrk to cpu $client_cpu; wrk -t1 -c$conns -d${duration}s, $rounds rounds"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. /flags with 50 flags next to the two ceilings.
mkdir -p "$tmp/d50"
if [ -n "${BEFORE_BIN:-}" ]; then
  # The older binary creates and seeds the project, and each server gets its own copy: a newer
  # binary migrates a data dir forward, an older one cannot open a migrated one.
  vexil_now=$vexil; vexil=$BEFORE_BIN
  project "$tmp/d50"; start_vexil "$tmp/d50" "$BEFORE_BIN"
  python3 bench/seed.py "$host" "$PHX" 50 >/dev/null
  kill "$vexil_pid"; wait "$vexil_pid" 2>/dev/null || true
  vexil=$vexil_now
  cp -r "$tmp/d50" "$tmp/d50b"
  start_vexil "$tmp/d50"
else
  project "$tmp/d50"; start_vexil "$tmp/d50"
  python3 bench/seed.py "$host" "$PHX" 50 >/dev/null
fi
sleep 0.5
resp_bytes=$(curl -s -XPOST "$host/flags/?v=2" -H 'content-type: application/json' -d "{\"token\":\"$VEXIL_TOKEN\",\"distinct_id\":\"u\",\"groups\":{\"company\":\"acme-1\"},\"person_properties\":{\"email\":\"u@example.com\",\"plan\":\"pro\",\"country\":\"US\",\"age\":34,\"\$app_version\":\"3.4.1\",\"\$browser\":\"Chrome\",\"utm_source\":\"newsletter\",\"signup_date\":\"2025-06-01\",\"beta_opt_in\":true,\"seats\":12},\"group_properties\":{\"company\":{\"seats\":42,\"industry\":\"saas\"}},\"geoip_disable\":true}" | wc -c)
if [ -n "${BEFORE_BIN:-}" ]; then
  # Same project (the copied data dir, so the same token and flags), older binary.
  main_pid=$vexil_pid; main_host=$host
  start_vexil "$tmp/d50b" "$BEFORE_BIN"; before_pid=$vexil_pid; before_host=$host
  vexil_pid=$main_pid; host=$main_host
  load -d2s -s bench/flags.lua "$before_host" >/dev/null
fi
start_ceiling ""; tiny_url=$ceiling_url; tiny_pid=$ceiling_pid
start_ceiling "$resp_bytes"; same_url=$ceiling_url; same_pid=$ceiling_pid
# Warm-up, not reported.
load -d2s -s bench/flags.lua "$host" >/dev/null
: >"$tmp/tiny"; : >"$tmp/same"; : >"$tmp/vexil"; : >"$tmp/before"
# Each run also reports the server's CPU time per request (utime + stime over requests served):
# unlike req/s it barely moves when other work on the machine takes turns on the server's core.
for r in $(seq "$rounds"); do
  read -r t tc tk < <(VEXIL_TOKEN=x measure "$tiny_pid" -d${duration}s --latency -s bench/flags.lua "$tiny_url/")
  echo "$t $tc" >>"$tmp/tiny"; echo -n "round $r: ceiling 11 B: $(summary <"$tmp/w"), ${tc} µs cpu/req (${tk} system)"
  read -r s sc sk < <(VEXIL_TOKEN=x measure "$same_pid" -d${duration}s --latency -s bench/flags.lua "$same_url/")
  echo "$s $sc" >>"$tmp/same"; echo -n " | ceiling ${resp_bytes} B: $(summary <"$tmp/w"), ${sc} µs cpu/req (${sk} system)"
  read -r v vc vk < <(measure "$vexil_pid" -d${duration}s --latency -s bench/flags.lua "$host")
  echo "$v $vc" >>"$tmp/vexil"; echo " | vexil /flags?v=2: $(summary <"$tmp/w"), ${vc} µs cpu/req (${vk} system)"
  if [ -n "${BEFORE_BIN:-}" ]; then
    read -r b bc bk < <(measure "$before_pid" -d${duration}s --latency -s bench/flags.lua "$before_host")
    echo "$b $bc" >>"$tmp/before"; echo "round $r: vexil before ($BEFORE_BIN): $(summary <"$tmp/w"), ${bc} µs cpu/req (${bk} system)"
  fi
  awk -v v="$v" -v t="$t" -v s="$s" -v vc="$vc" -v tc="$tc" -v sc="$sc" 'BEGIN {printf "round %d: vexil / 11-byte ceiling %.1f%% (by cpu/req %.1f%%), vexil / same-size ceiling %.1f%% (by cpu/req %.1f%%)\n", '"$r"', 100*v/t, 100*tc/vc, 100*v/s, 100*sc/vc}'
done
col() { awk -v c="$1" '{print $c}' "$2" | median; }
mt=$(col 1 "$tmp/tiny"); ms=$(col 1 "$tmp/same"); mv=$(col 1 "$tmp/vexil")
mtc=$(col 2 "$tmp/tiny"); msc=$(col 2 "$tmp/same"); mvc=$(col 2 "$tmp/vexil")
echo "median req/s: ceiling 11 B $mt, ceiling $resp_bytes B $ms, vexil /flags?v=2 (50 flags) $mv"
echo "median µs of server cpu per request: ceiling 11 B $mtc, ceiling $resp_bytes B $msc, vexil $mvc"
if [ -n "${BEFORE_BIN:-}" ]; then
  mb=$(col 1 "$tmp/before"); mbc=$(col 2 "$tmp/before")
  awk -v b="$mb" -v bc="$mbc" -v t="$mt" -v tc="$mtc" 'BEGIN {printf "BEFORE vexil (before) %s req/s, %s µs cpu/req: / 11-byte ceiling %.1f%% by req/s (%.1f%% by cpu/req)\n", b, bc, 100*b/t, 100*tc/bc}'
fi
awk -v v="$mv" -v t="$mt" -v s="$ms" 'BEGIN {printf "RESULT vexil / 11-byte ceiling: %.1f%% by req/s", 100*v/t}'
awk -v v="$mvc" -v t="$mtc" 'BEGIN {printf " (%.1f%% by cpu/req)", 100*t/v}'
awk -v v="$mv" -v s="$ms" 'BEGIN {printf "; vexil / same-size ceiling: %.1f%% by req/s", 100*v/s}'
awk -v v="$mvc" -v s="$msc" 'BEGIN {printf " (%.1f%% by cpu/req)\n", 100*s/v}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${PROFILE:-0}" = 1 ]; then
  out=target/load-profile; mkdir -p "$out"
  perf record -F 999 -g --call-graph dwarf,16384 -p "$vexil_pid" -o "$out/perf.data" -- sleep "$duration" 2>/dev/null &
  perf_pid=$!
  load -d${duration}s -s bench/flags.lua "$host" >/dev/null
  wait $perf_pid || true
  echo "profile: $out/perf.data (perf report -i $out/perf.data --no-children)"
  echo "-- self time, top symbols"
  perf report -i "$out/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.7 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-120 | head -40
  echo "-- inclusive time of the request path's parts"
  perf report -i "$out/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-160 |
    grep -E "routes::flags::evaluate|ProjectSnapshot>::evaluate|vexil_engine::eval::evaluate |write_json|decode_body|from_json|serde_json::de::from_trait|__GI___writev|poll_read_head<hyper::|hash::hash01|Test::matches|path_router" | head -20
fi

[ "${FLAGS_ONLY:-0}" = 1 ] && exit 0

# 2. Capture, memory, 1,000 flags, definitions.
echo -n "vexil /batch/ capture, 10 events per request (durable ack): "
load -d${duration}s --latency -s bench/capture.lua "$host" | summary

mkdir -p "$tmp/d1000"; project "$tmp/d1000"
kill "$vexil_pid"; start_vexil "$tmp/d1000"
python3 bench/seed.py "$host" "$PHX" 1000 >/dev/null
sleep 0.5
echo "vexil RSS idle with 1,000 flags: $(( $(rss_kb "$vexil_pid") / 1024 )) MiB"
load -d${duration}s --latency -s bench/flags.lua "$host" >"$tmp/w1000" &
wpid=$!
sleep $(( duration / 2 ))
echo "vexil RSS under /flags load with 1,000 flags: $(( $(rss_kb "$vexil_pid") / 1024 )) MiB"
wait $wpid
echo -n "vexil /flags?v=2, 1,000 flags: "; summary <"$tmp/w1000"
etag=$(curl -si "$host/flags/definitions?token=$VEXIL_TOKEN" -H "Authorization: Bearer $VEXIL_SECRET" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
size=$(curl -s "$host/flags/definitions?token=$VEXIL_TOKEN" -H "Authorization: Bearer $VEXIL_SECRET" | wc -c)
echo -n "definitions fresh (200, $((size / 1024)) KiB, 1,000 flags): "
VEXIL_ETAG= load -d$(( duration / 2 ))s --latency -s bench/definitions.lua "$host" | summary
echo -n "definitions unchanged (304):                       "
VEXIL_ETAG="$etag" load -d$(( duration / 2 ))s --latency -s bench/definitions.lua "$host" | summary
