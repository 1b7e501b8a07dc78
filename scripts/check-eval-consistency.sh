#!/usr/bin/env bash
# Runs `vexil eval` on the 1000-id consistency vectors and compares every output line with the
# expected value. Usage: scripts/check-eval-consistency.sh path/to/vexil
set -euo pipefail
vexil=${1:?usage: $0 path/to/vexil}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in simple_flag_consistency_45pct multivariate_flag_consistency; do
  python3 - "conformance/$name.json" "$tmp/defs.json" "$tmp/reqs.jsonl" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
json.dump({"flags": [v["flag"]], "group_type_mapping": {}, "cohorts": {}}, open(sys.argv[2], "w"))
with open(sys.argv[3], "w") as out:
    for i in v["inputs"]:
        out.write(json.dumps({"distinct_id": i, "token": "phc_offline"}) + "\n")
PY
  "$vexil" eval --definitions "$tmp/defs.json" --requests "$tmp/reqs.jsonl" > "$tmp/out.jsonl"
  python3 - "conformance/$name.json" "$tmp/out.jsonl" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
key = v["flag"]["key"]
lines = open(sys.argv[2]).read().splitlines()
assert len(lines) == len(v["expected"]), f"{len(lines)} output lines for {len(v['expected'])} requests"
bad = 0
for i, (line, want) in enumerate(zip(lines, v["expected"])):
    rec = json.loads(line)["flags"][key]
    got = rec["variant"] if rec["variant"] is not None else rec["enabled"]
    if got != want:
        bad += 1
        print(f"{v['inputs'][i]}: expected {want!r}, got {got!r}")
print(f"{sys.argv[1]}: {len(lines) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
PY
done
