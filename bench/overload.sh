#!/usr/bin/env bash
# Overload benchmark: /flags?v=2 offered at 1×, 2×, 3× and 4× capacity by an open-loop generator
# (release build; server and generator each pinned to a core, as in load.sh; 50-flag project).
#
#   1. capacity: closed-loop maximum throughput, wrk -t1 -c64 with bench/flags.lua (load.sh's
#      measurement);
#   2. for each multiple k: crates/bench/examples/openloop.rs sends k × capacity requests per
#      second for DURATION seconds on a fixed schedule, whatever the answers, and measures each
#      latency from the time the request was due, so a server that falls behind is charged for
#      the wait and not hidden by coordinated omission (wrk, a closed loop, cannot offer more
#      than its connections carry); the server's VmRSS is sampled every 0.2 s and its VmHWM
#      read after each step, and the CPU time each process got is printed (utime + stime).
#
# Usage: bench/overload.sh [duration-seconds] [multiples]
#   e.g. bench/overload.sh 20 "1 2 3 4"
#   FLAGS=N     flags in the project (default 50, as in load.sh)
#   CONNS=N     most generator connections (default 4000; opened as needed): the most requests
#               that can wait at the server at once; past it, due requests wait in the
#               generator (still charged to the latency, and reported as send lag)
#   TIMEOUT=S   per-request timeout in seconds (default 10)
#   CAP=N / DELAY=MS / BUSY=MS   --max-in-flight-evaluations / --max-queue-delay-ms /
#               --max-busy-ms (default: serve's; 0 turns one off)
#   SERVER_CPU / CLIENT_CPU, VEXIL_BIN as in load.sh
# Needs wrk, taskset, bc and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}
multiples=${2:-1 2 3 4}
flags=${FLAGS:-50}
conns=${CONNS:-4000}
timeout=${TIMEOUT:-10}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
for tool in wrk taskset python3 bc; do
  command -v "$tool" >/dev/null || { echo "$tool is required"; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n 20000
# Two invocations: with `--example`, `cargo build -p vexil -p vexil-bench` builds only the example.
[ -n "${VEXIL_BIN:-}" ] || cargo build --release -q -p vexil
cargo build --release -q -p vexil-bench --example openloop
vexil=${VEXIL_BIN:-./target/release/vexil}
openloop=./target/release/examples/openloop
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks

keys=$("$vexil" project create --name bench --json --data-dir "$tmp/d")
export VEXIL_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_token"])' "$keys")
phx=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["personal_api_key"])' "$keys")
port=$(free_port); host="http://127.0.0.1:$port"
limits=()
[ -n "${CAP:-}" ] && limits+=(--max-in-flight-evaluations "$CAP")
[ -n "${DELAY:-}" ] && limits+=(--max-queue-delay-ms "$DELAY")
[ -n "${BUSY:-}" ] && limits+=(--max-busy-ms "$BUSY")
taskset -c "$server_cpu" "$vexil" serve --addr "127.0.0.1:$port" --data-dir "$tmp/d" "${limits[@]}" >"${SERVER_LOG:-$tmp/log}" 2>&1 &
pids+=($!); pid=$!
for _ in $(seq 100); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.1; done
python3 bench/seed.py "$host" "$phx" "$flags" >/dev/null
sleep 0.5
# bench/flags.lua's request with one distinct id (the generator sends one body).
cat >"$tmp/body.json" <<EOF
{"token":"$VEXIL_TOKEN","distinct_id":"user-1","groups":{"company":"acme-1"},"person_properties":{"email":"user1@example.com","plan":"pro","country":"US","age":34,"\$app_version":"3.4.1","\$browser":"Chrome","utm_source":"newsletter","signup_date":"2025-06-01","beta_opt_in":true,"seats":12},"group_properties":{"company":{"seats":42,"industry":"saas"}},"geoip_disable":true}
EOF
[ "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$host/flags/?v=2" -H 'content-type: application/json' --data-binary @"$tmp/body.json")" = 200 ]

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%FT%TZ)"
echo "vexil: $vexil ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), $flags flags, ${limits[*]:-serve defaults}"
echo "server on cpu $server_cpu, wrk and openloop on cpu $client_cpu; up to $conns connections, ${timeout}s timeout, ${duration}s steps"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS idle: $(( $(status_kb "$pid" VmRSS) / 1024 )) MiB"

taskset -c "$client_cpu" wrk -t1 -c64 -d3s -s bench/flags.lua "$host" >/dev/null # warm-up
taskset -c "$client_cpu" wrk -t1 -c64 -d${duration}s --latency -s bench/overload.lua "$host" >"$tmp/cap"
# Capacity counts answered evaluations only: a 503 is not capacity.
capacity=$(awk -v d="$duration" '/^status 200:/ {printf "%d", $3 / d}' "$tmp/cap")
echo "capacity (closed loop, wrk -t1 -c64): $capacity req/s, p99 $(awk '/^ +99%/ {print $2}' "$tmp/cap"), $(grep '^status' "$tmp/cap" | tr '\n' ' ')"

printf '%-3s %7s %7s %7s %7s %7s %6s %6s %9s %-33s %-28s %7s %6s %s\n' \
  x offered sent/s 200/s 503/s 429/s failed shed% "lag p99" "200 p50/p90/p99/p99.9/max ms" \
  "503 p50/p99/p99.9/max ms" "RSS max" VmHWM alive
for k in $multiples; do
  rate=$((capacity * k))
  : >"$tmp/rss"
  server_before=$(cpu_ticks "$pid"); started=$(date +%s.%N)
  taskset -c "$client_cpu" "$openloop" "$host/flags/?v=2" --body "$tmp/body.json" --json \
    --rate "$rate" --duration "$duration" --connections "$conns" --timeout "$timeout" \
    -H 'user-agent: posthog-python/7.91.1' >"$tmp/run.$k.json" 2>"$tmp/run.$k.err" &
  gen=$!; gen_ticks=0
  while kill -0 "$gen" 2>/dev/null; do
    status_kb "$pid" VmRSS >>"$tmp/rss" || true
    t=$(cpu_ticks "$gen" 2>/dev/null) && gen_ticks=$t
    sleep 0.2
  done
  wait "$gen" || true
  wall=$(echo "$(date +%s.%N) - $started" | bc)
  server_ticks=$(( $(cpu_ticks "$pid" 2>/dev/null || echo "$server_before") - server_before ))
  alive=no; kill -0 "$pid" 2>/dev/null && alive=yes
  hwm=$(( $(status_kb "$pid" VmHWM 2>/dev/null || echo 0) / 1024 ))
  rss=$(( $(sort -n "$tmp/rss" | tail -1) / 1024 ))
  [ -n "${KEEP:-}" ] && cp "$tmp/run.$k.json" "$KEEP.$k.json"
  python3 - "$tmp/run.$k.json" "$k" "$rss" "$hwm" "$alive" <<'PY'
import json, sys
path, k, rss, hwm, alive = sys.argv[1:]
try:
    r = json.load(open(path))
except ValueError:
    print(f"{k}x: no generator output (see {path[:-5]}.err)")
    sys.exit()
by = r["latency_ms_by_status"]
rate = lambda s: by.get(s, {}).get("per_second", 0)
n = lambda s: by.get(s, {}).get("count", 0)
fmt = lambda v: "-" if v is None else f"{v:.1f}"
def pct(s, keys):
    return "/".join(fmt(by[s][q]) for q in keys) if s in by else "-"
failed = r["timeouts"] + r["connect_errors"] + r["broken"] + r["not_sent"]
shed = 100 * n("503") / max(r["answered"], 1)
print(f"{k + 'x':<3} {r['rate']:>7} {r['sent_per_second']:>7.0f} {rate('200'):>7.0f} {rate('503'):>7.0f} "
      f"{rate('429'):>7.0f} {failed:>6} {shed:>6.1f} {fmt(r['send_lag_ms']['p99']):>9} "
      f"{pct('200', ('p50', 'p90', 'p99', 'p99.9', 'max')):<33} {pct('503', ('p50', 'p99', 'p99.9', 'max')):<28} "
      f"{rss:>3} MiB {hwm:>3} MiB {alive}")
other = {s: v["count"] for s, v in by.items() if s not in ("200", "503", "429")}
if failed or other:
    print(f"    timeouts {r['timeouts']}, connect errors {r['connect_errors']}, broken {r['broken']}, "
          f"not sent {r['not_sent']}, other statuses {other}")
PY
  # CPU each side got while the step ran (both cores are time-shared with anything else running).
  awk -v s="$server_ticks" -v g="$gen_ticks" -v w="$wall" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "    %.1f s wall: server cpu %.0f%%, generator cpu %.0f%%\n", w, 100*s/hz/w, 100*g/hz/w}'
  [ "$alive" = yes ] || break
  sleep 3 # let the last step's backlog drain
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
