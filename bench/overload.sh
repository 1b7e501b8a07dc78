#!/usr/bin/env bash
# Overload benchmark: /flags?v=2 past capacity with load shedding on (release build, server and
# load generators each pinned to a core, as in load.sh).
#
#   1. capacity: wrk with 32 connections (under the in-flight cap);
#   2. overload: wrk with CONNS connections (closed loop: a shed answer is followed at once by the
#      next request, so the offered rate is accepted + shed), while a curl probe on its own
#      connection samples the latency of single requests by status, and the server's resident
#      memory is sampled every half second.
#
# Usage: bench/overload.sh [duration-seconds]
#   FLAGS=N     flags in the project (default 1000: a heavier request, so that the offered load
#               reaches many times capacity with one wrk thread)
#   CAP=N       --max-in-flight-evaluations (default 64)
#   DELAY=MS    --max-queue-delay-ms (default 50)
#   CONNS=N     wrk connections during the overload (default 1024)
#   SERVER_CPU / CLIENT_CPU, VEXIL_BIN as in load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}
flags=${FLAGS:-1000}
cap=${CAP:-64}
delay=${DELAY:-50}
conns=${CONNS:-1024}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
ulimit -n 20000 2>/dev/null || true
if [ -n "${VEXIL_BIN:-}" ]; then vexil=$VEXIL_BIN; else cargo build --release -q -p vexil; vexil=./target/release/vexil; fi
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
summary() { awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s req/s, p50 %s, p99 %s\n", rps, p50, p99}'; }

keys=$("$vexil" project create --name bench --json --data-dir "$tmp/d")
export VEXIL_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
phx=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
port=$(free_port); host="http://127.0.0.1:$port"
taskset -c "$server_cpu" "$vexil" serve --addr "127.0.0.1:$port" --data-dir "$tmp/d" \
  --max-in-flight-evaluations "$cap" --max-queue-delay-ms "$delay" >"$tmp/log" 2>&1 &
pids+=($!); pid=$!
for _ in $(seq 100); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.1; done
python3 bench/seed.py "$host" "$phx" "$flags" >/dev/null
sleep 0.5

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%FT%TZ)"
echo "vexil: $vexil ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), $flags flags, --max-in-flight-evaluations $cap --max-queue-delay-ms $delay"
echo "server on cpu $server_cpu, wrk and probe on cpu $client_cpu; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS idle: $(( $(rss_kb "$pid") / 1024 )) MiB"

taskset -c "$client_cpu" wrk -t1 -c32 -d3s -s bench/overload.lua "$host" >/dev/null # warm-up
echo -n "capacity (wrk -c32, under the in-flight cap): "
taskset -c "$client_cpu" wrk -t1 -c32 -d${duration}s --latency -s bench/overload.lua "$host" >"$tmp/cap"
summary <"$tmp/cap"; grep '^status' "$tmp/cap" | tr '\n' ' '; echo

body='{"token":"'"$VEXIL_TOKEN"'","distinct_id":"probe","person_properties":{"email":"p@example.com","plan":"pro","age":34}}'
probe() { # one request at a time, new connection each (as a fresh client would)
  local end=$((SECONDS + duration - 2))
  while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -XPOST "$host/flags/?v=2" \
      -H 'content-type: application/json' -d "$body"
  done
}
: >"$tmp/rss"
(while kill -0 "$pid" 2>/dev/null; do rss_kb "$pid" >>"$tmp/rss"; sleep 0.5; done) &
pids+=($!)
taskset -c "$client_cpu" wrk -t1 -c"$conns" -d${duration}s --latency --timeout 10s -s bench/overload.lua "$host" >"$tmp/over" &
wrk_pid=$!
sleep 1
taskset -c "$client_cpu" bash -c "$(declare -f probe); host=$host body='$body' duration=$duration probe" >"$tmp/probe"
wait $wrk_pid
echo "overload (wrk -c$conns, all answers): $(summary <"$tmp/over")"
grep -E '^status|Socket errors|Non-2xx' "$tmp/over" || true
awk -v cap="$(awk '/Requests\/sec/ {print $2}' "$tmp/cap")" '
  /^status 200:/ {ok=$3} /^status 503:/ {shed=$3} /requests in/ {n=$1; t=$4+0}
  END {printf "offered %.0f req/s = %.1f x capacity; accepted %.0f req/s; shed %d of %d (%.1f%%)\n",
       n/t, n/t/cap, ok/t, shed, n, 100*shed/n}' "$tmp/over"
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR) {i=int(NR*p/100); if (i<1) i=1; printf "%.1f", a[i]*1000} else printf "-"}'; }
for code in 200 503; do
  n=$(awk -v c="$code" '$1==c' "$tmp/probe" | wc -l)
  echo "probe $code: $n requests, p50 $(awk -v c="$code" '$1==c {print $2}' "$tmp/probe" | pct 50) ms, p99 $(awk -v c="$code" '$1==c {print $2}' "$tmp/probe" | pct 99) ms, max $(awk -v c="$code" '$1==c {print $2}' "$tmp/probe" | pct 100) ms"
done
other=$(awk '$1!=200 && $1!=503' "$tmp/probe" | wc -l)
echo "probe other statuses: $other"
echo "RSS under overload: max $(( $(sort -n "$tmp/rss" | tail -1) / 1024 )) MiB; after: $(( $(rss_kb "$pid") / 1024 )) MiB"
kill -0 "$pid" && echo "server still running"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
