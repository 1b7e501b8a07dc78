#!/usr/bin/env bash
# Server time of the web UI's pages on a project with N flags and C cohorts (default 5,000 each;
# a tenth of the cohorts static with 20 members, 200 persons captured): the server's own
# per-request `duration_us` from its access log (every request logged), so the client and the
# network are not counted. Flags are created through the management API (a third of them
# multivariate, a tenth disabled, some with a person-property condition).
# Usage: bench/ui.sh [flags] [rounds] [profile] [cohorts]   (profile: debug (default) or release)
set -euo pipefail
cd "$(dirname "$0")/.."
flags=${1:-5000}
rounds=${2:-20}
profile=${3:-debug}
cohorts=${4:-$flags}
if [[ $profile == release ]]; then cargo build --release -q -p vexil; else cargo build -q -p vexil; fi
bin=./target/$profile/vexil
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
VEXIL_LOG_FORMAT=json "$bin" serve --addr "127.0.0.1:$port" --data-dir "$tmp" \
  --access-log-sample-rate 1 --management-rate 0 >"$tmp/serve.out" 2>"$tmp/serve.log" &
pid=$!
host="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$host/_readiness" >/dev/null && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), commit $(git rev-parse --short HEAD), $profile build"
python3 - "$host" "$tmp/serve.out" "$tmp/serve.log" "$flags" "$rounds" "$cohorts" <<'PY'
import http.client, json, re, statistics, sys, time, urllib.parse

host, out, log, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
n_cohorts = int(sys.argv[6])
printed = open(out).read()
personal = re.search(r"phx_\w+", printed).group(0)
password = re.search(r"password:\s*(\S+)", printed).group(1)
conn = http.client.HTTPConnection(urllib.parse.urlparse(host).netloc)

def call(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheaders(), r.read()

api = {"Authorization": f"Bearer {personal}", "Content-Type": "application/json"}
# Cohorts first (each write reloads the project, cheap while it has no flags).
started = time.time()
static_id = None
for i in range(n_cohorts):
    if i % 10 == 0:
        body = {"name": f"Static {i}", "is_static": True, "distinct_ids": [f"user-{j}" for j in range(20)]}
    else:
        body = {"name": f"Cohort {i}", "filters": {"properties": {"type": "OR", "values": [{"type": "AND", "values": [
            {"key": "plan", "type": "person", "operator": "exact", "value": [f"plan-{i % 7}"]}]}]}}}
    status, _, text = call("POST", "/api/projects/@current/cohorts/", json.dumps(body), api)
    assert status == 201, (status, text[:200])
    if i % 10 == 0:
        static_id = json.loads(text)["id"]
print(f"created {n_cohorts} cohorts in {time.time() - started:.1f} s")
token_ = re.search(r"phc_\w+", printed).group(0)
batch = [{"event": "signed_up", "distinct_id": f"user-{j}", "properties": {"$set": {"plan": f"plan-{j % 7}", "email": f"user-{j}@example.com"}}} for j in range(200)]
status, _, text = call("POST", "/batch/", json.dumps({"api_key": token_, "batch": batch}), {"Content-Type": "application/json"})
assert status == 200, (status, text[:200])
time.sleep(1)
started = time.time()
for i in range(n):
    groups = [{"properties": [{"key": "email", "type": "person", "operator": "icontains", "value": "@example.com"}] if i % 4 == 0 else [],
               "rollout_percentage": 50 + i % 50}]
    filters = {"groups": groups}
    if i % 3 == 0:
        filters["multivariate"] = {"variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]}
    body = {"key": f"flag-{i:05d}", "name": f"Flag {i}", "active": i % 10 != 0, "filters": filters}
    status, _, text = call("POST", "/api/projects/@current/feature_flags/", json.dumps(body), api)
    assert status == 201, (status, text[:200])
print(f"created {n} flags in {time.time() - started:.1f} s")

# Sign in through the form.
status, headers, body = call("GET", "/ui/signin")
text = body.decode()
m = re.search(r"name=\"csrf\" value=\"(\w+)\"", text)
assert m, (status, text[:300])
token = m.group(1)
form = urllib.parse.urlencode({"csrf": token, "email": "admin@localhost", "password": password})
status, headers, _ = call("POST", "/ui/signin", form, {"Cookie": f"vexil_signin_csrf={token}",
                                                       "Content-Type": "application/x-www-form-urlencoded"})
assert status == 303, status
session = re.search(r"vexil_session=(\w+)", str(headers)).group(1)
cookie = {"Cookie": f"vexil_session={session}"}

mid = max(1, n // 2)
pages = {
    "flag list (first page)": "/ui/projects/1/flags",
    "flag list, search": "/ui/projects/1/flags?search=flag-049",
    "flag list, stale filter (whole list)": "/ui/projects/1/flags?active=STALE",
    "flag list, sort by key, middle page": f"/ui/projects/1/flags?order=-key&offset={mid}",
    "flag page": f"/ui/projects/1/flags/{mid}",
    "flag page + test a user": f"/ui/projects/1/flags/{mid}?distinct_id=alice&properties=%7B%22email%22%3A%22a%40example.com%22%7D",
    "new-flag editor": "/ui/projects/1/flags/new",
    "edit flag (structured form)": f"/ui/projects/1/flags/{mid}/edit",
    "kill switch confirmation": f"/ui/projects/1/flags/{mid}/disable",
    "project activity (first page)": "/ui/projects/1/activity",
    "project activity (a middle page)": f"/ui/projects/1/activity?before={mid}",
    "project activity (oldest page)": "/ui/projects/1/activity?after=0",
    "flag activity": f"/ui/projects/1/flags/{mid}/activity",
    "revert confirmation": f"/ui/projects/1/activity/{mid}/revert",
    "project settings": "/ui/projects/1/settings",
    "personal API keys": "/ui/keys",
}
if n_cohorts:
    pages.update({
        "cohort list (first page)": "/ui/projects/1/cohorts",
        "cohort list, search": "/ui/projects/1/cohorts?search=cohort%2049",
        "cohort list, middle page": f"/ui/projects/1/cohorts?offset={n_cohorts // 2}",
        "static cohort page (members)": f"/ui/projects/1/cohorts/{static_id}",
        "new-cohort editor": "/ui/projects/1/cohorts/new",
        "persons, find by property": "/ui/projects/1/persons?key=plan&value=plan-3",
        "person page (every flag's value)": "/ui/projects/1/persons/view?distinct_id=user-3",
    })
mark = sum(1 for _ in open(log))
for _ in range(rounds):
    for path in pages.values():
        status, _, _ = call("GET", path, headers=cookie)
        assert status == 200, (path, status)
time.sleep(0.5)
order = list(pages)
print(f"{'page':40} {'p50 ms':>8} {'max ms':>8}")
flat = []
for line in list(open(log))[mark:]:
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if "duration_us" in fields:
        flat.append(int(fields["duration_us"]) / 1000)
assert len(flat) == rounds * len(pages), (len(flat), rounds * len(pages))
for i, name in enumerate(order):
    times = flat[i::len(pages)]
    print(f"{name:40} {statistics.median(times):8.2f} {max(times):8.2f}")
PY
