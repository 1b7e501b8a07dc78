#!/usr/bin/env bash
# A local Vexil cluster: PostgreSQL, three `vexil serve` nodes on one database, and a
# round-robin client demo (no load balancer) that creates a flag through one node and reads
# it from all three, then changes it through another.
#
# Usage: scripts/cluster.sh [--quick] [--bin PATH] [--base-port N]
#   --quick      run the demo and stop everything (the test suite runs this, so the script
#                cannot rot); without it the nodes keep running until Ctrl-C
#   --bin PATH   the vexil binary (default: build target/release/vexil)
#   --base-port  nodes listen on N, N+1, N+2 (default 8361; free ports with --quick)
#
# PostgreSQL: VEXIL_DATABASE_URL if set (used as is); else a fresh database on the server
# VEXIL_TEST_POSTGRES_URL names or on 127.0.0.1:5432 (user postgres, trust auth), dropped on
# exit; else a temporary server (initdb) in a temp dir, deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0
bin=""
base_port=8361
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --bin) bin=$2; shift ;;
        --base-port) base_port=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z "$bin" ]]; then
    cargo build --release -q -p vexil
    bin="$root/target/release/vexil"
fi

# shellcheck source=scripts/backends.sh
source "$root/scripts/backends.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
server=""
database=""
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n "$database" ]]; then
        psql "$server" -qAtc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    _backends_tmp=$tmp stop_test_backends
}
trap cleanup EXIT

if [[ -n "${VEXIL_DATABASE_URL:-}" ]]; then
    url=$VEXIL_DATABASE_URL
    echo "postgres: $url (VEXIL_DATABASE_URL)"
else
    server=${VEXIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    if ! psql "$server" -qAtc 'SELECT 1' >/dev/null 2>&1; then
        _backends_tmp=$tmp
        _backends_start_postgres >/dev/null
        server=$VEXIL_TEST_POSTGRES_URL
    fi
    database="vexil_cluster_$$"
    psql "$server" -qAtc "CREATE DATABASE $database" >/dev/null
    url="${server%/*}/$database"
    echo "postgres: $url (created for this cluster, dropped on exit)"
fi

keys=$("$bin" project create --name "Cluster demo" --json --database-url "$url")
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
token=$(field "$keys" api_token)
personal=$(field "$keys" personal_api_key)

hosts=()
# All three at once, as an orchestrator starts them: on an empty database each one's first
# start tries to create the web UI's administrator, and exactly one of them does.
for n in 1 2 3; do
    if [[ $quick == 1 ]]; then port=$(_backends_free_port); else port=$((base_port + n - 1)); fi
    "$bin" serve --addr "127.0.0.1:$port" --database-url "$url" >"$tmp/node$n.log" 2>&1 &
    pids+=($!)
    hosts+=("http://127.0.0.1:$port")
done
for host in "${hosts[@]}"; do
    for _ in $(seq 200); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.05; done
    curl -sf "$host/_readiness" >/dev/null || { echo "cluster.sh: $host not ready" >&2; cat "$tmp"/node*.log >&2; exit 1; }
done
admins=$(cat "$tmp"/node*.log | grep -c "Created the web UI administrator" || true)
if [[ $quick == 1 && $admins != 1 ]]; then
    echo "cluster.sh: $admins nodes created the web UI administrator, expected exactly 1" >&2; exit 1
fi
echo "nodes: ${hosts[*]}"

# The demo client: no load balancer, it picks the next node for every request.
next=0
pick() { picked=${hosts[$next]}; next=$(((next + 1) % 3)); }
flag_on() {  # the value node $1 serves for the demo flag: true, false or missing
    curl -sf -X POST "$1/flags?v=2" -H 'Content-Type: application/json' \
        -d '{"token": "'"$token"'", "distinct_id": "demo-user"}' |
        python3 -c 'import json,sys; f=json.load(sys.stdin)["flags"].get("cluster-demo"); print("missing" if f is None else str(f["enabled"]).lower())'
}
# Reads round-robin until every node has answered `want` once (at most 10 s).
read_round_robin() {
    local want=$1 seen=0 start=$SECONDS h value
    local -A agreed=()
    while [[ ${#agreed[@]} -lt 3 ]]; do
        pick
        h=$picked
        value=$(flag_on "$h")
        seen=$((seen + 1))
        [[ $value == "$want" ]] && agreed[$h]=1
        if (( SECONDS - start > 10 )); then
            echo "cluster.sh: $h still serves cluster-demo=$value, expected $want" >&2
            exit 1
        fi
    done
    echo "  all three nodes serve cluster-demo=$want ($seen round-robin reads)"
}
api() {  # method, node, path, body
    curl -sf -X "$1" "$2/api/projects/@current/feature_flags/$3" \
        -H "Authorization: Bearer $personal" -H 'Content-Type: application/json' -d "$4"
}

pick
writer=$picked
echo "create cluster-demo (on for everyone) through $writer"
created=$(api POST "$writer" "" '{"key": "cluster-demo", "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}')
id=$(field "$created" id)
read_round_robin true
pick
writer=$picked
echo "turn it off (rollout 0 %) through $writer"
api PATCH "$writer" "$id/" '{"filters": {"groups": [{"properties": [], "rollout_percentage": 0}]}}' >/dev/null
read_round_robin false
for host in "${hosts[@]}"; do
    echo "  $host: $(curl -sf "$host/metrics" | grep -E '^vexil_snapshot_revision' | tr '\n' ' ')"
done

if [[ $quick == 1 ]]; then
    echo "cluster.sh: demo passed"
    exit 0
fi
cat <<MSG

The cluster runs until Ctrl-C. Project token: $token
Personal API key (management API on any node): $personal
Logs: $tmp/node{1,2,3}.log
MSG
wait
