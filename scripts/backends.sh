# Sourced by scripts/test.sh: makes PostgreSQL and Redis available to the tests.
#
# VEXIL_TEST_POSTGRES_URL / VEXIL_TEST_REDIS_URL, when set, are used as they are. Otherwise a
# server on 127.0.0.1's default port is used if it answers (PostgreSQL as the `postgres` user,
# trust authentication); if not, a temporary one is started in a temp dir on a free port and
# `stop_test_backends` (call it from the caller's EXIT trap) stops and deletes it. PostgreSQL's
# binaries are installed with apt-get only when none exist.

_backends_tmp=""
_backends_pg_data=""
_backends_pg_bin=""
_backends_redis_pid=""

_backends_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The first directory holding initdb and pg_ctl, installing PostgreSQL if there is none.
_backends_pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && { echo "$dir"; return; }
    done
    echo "backends: no PostgreSQL binaries; apt-get install -y postgresql" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && { echo "$dir"; return; }
    done
    return 1
}

# Runs a PostgreSQL server program, as the `postgres` user when we are root (it refuses root).
_backends_as_pg() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_backends_start_postgres() {
    local port
    _backends_pg_bin=$(_backends_pg_bindir)
    port=$(_backends_free_port)
    _backends_pg_data="$_backends_tmp/pg"
    mkdir -p "$_backends_pg_data"
    [[ $(id -u) == 0 ]] && chown -R postgres "$_backends_tmp"
    _backends_as_pg "$_backends_pg_bin/initdb" -D "$_backends_pg_data" -U postgres \
        --auth=trust -E UTF8 >/dev/null
    _backends_as_pg "$_backends_pg_bin/pg_ctl" -D "$_backends_pg_data" -w -l "$_backends_pg_data/log" \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $_backends_tmp -c max_connections=300" start >/dev/null
    export VEXIL_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "backends: started a temporary PostgreSQL on port $port"
}

_backends_start_redis() {
    local port
    port=$(_backends_free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$_backends_tmp/redis.pid" --logfile "$_backends_tmp/redis.log"
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    _backends_redis_pid=$(cat "$_backends_tmp/redis.pid")
    export VEXIL_TEST_REDIS_URL="redis://127.0.0.1:$port"
    echo "backends: started a temporary Redis on port $port"
}

start_test_backends() {
    _backends_tmp=$(mktemp -d)
    chmod 755 "$_backends_tmp"
    if [[ -z "${VEXIL_TEST_POSTGRES_URL:-}" ]]; then
        if psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
            export VEXIL_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
        else
            _backends_start_postgres
        fi
    fi
    if [[ -z "${VEXIL_TEST_REDIS_URL:-}" ]]; then
        if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
            export VEXIL_TEST_REDIS_URL="redis://127.0.0.1:6379"
        else
            _backends_start_redis
        fi
    fi
    echo "backends: PostgreSQL $VEXIL_TEST_POSTGRES_URL, Redis $VEXIL_TEST_REDIS_URL"
}

stop_test_backends() {
    if [[ -n "$_backends_pg_data" ]]; then
        _backends_as_pg "$_backends_pg_bin/pg_ctl" -D "$_backends_pg_data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [[ -n "$_backends_redis_pid" ]]; then
        kill "$_backends_redis_pid" 2>/dev/null || true
    fi
    [[ -n "$_backends_tmp" ]] && rm -rf "$_backends_tmp"
    return 0
}
