#!/usr/bin/env python3
"""Create N realistic flags in a Vexil project through the management API (stdlib only).

Usage: seed.py HOST PERSONAL_KEY N
The mix mirrors a real project: plain rollouts, property targeting (icontains, exact lists,
numeric, semver, dates), multivariate experiments with payloads, a few regexes, group flags.
"""
import json
import sys
import urllib.request


def flag(i):
    kind = i % 10
    key = f"flag-{i}"
    if kind in (0, 1):
        groups = [{"properties": [], "rollout_percentage": (i * 7) % 100}]
        filters = {"groups": groups}
    elif kind in (2, 3):
        filters = {"groups": [{"properties": [
            {"key": "email", "type": "person", "operator": "icontains", "value": "@example.com"},
            {"key": "plan", "type": "person", "operator": "exact", "value": ["pro", "enterprise"]},
            {"key": "age", "type": "person", "operator": "gt", "value": "18"}],
            "rollout_percentage": 100}]}
    elif kind == 4:
        filters = {"groups": [{"properties": [
            {"key": "email", "type": "person", "operator": "regex", "value": r"^[a-z0-9.]+@(example|acme)\.com$"}],
            "rollout_percentage": 100}]}
    elif kind in (5, 6):
        filters = {"groups": [{"properties": [
            {"key": "country", "type": "person", "operator": "exact", "value": ["US", "CA"]}],
            "rollout_percentage": 60}],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 34},
                {"key": "test-a", "rollout_percentage": 33},
                {"key": "test-b", "rollout_percentage": 33}]},
            "payloads": {"test-a": json.dumps({"color": "blue"}), "test-b": json.dumps({"color": "green"})}}
    elif kind == 7:
        filters = {"groups": [{"properties": [
            {"key": "$app_version", "type": "person", "operator": "semver_gte", "value": "3.2.0"},
            {"key": "signup_date", "type": "person", "operator": "is_date_after", "value": "-365d"}],
            "rollout_percentage": 100}]}
    elif kind == 8:
        filters = {"aggregation_group_type_index": 0, "groups": [{"properties": [
            {"key": "seats", "type": "group", "group_type_index": 0, "operator": "gte", "value": "10"}],
            "rollout_percentage": 100}]}
    else:
        filters = {"groups": [{"properties": [
            {"key": "email", "type": "person", "operator": "icontains", "value": "@nomatch.org"}],
            "rollout_percentage": 100}, {"properties": [], "rollout_percentage": 5}]}
    return {"key": key, "name": f"Benchmark flag {i}", "filters": filters, "active": True}


def main():
    host, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(n):
        req = urllib.request.Request(
            f"{host}/api/projects/@current/feature_flags/",
            data=json.dumps(flag(i)).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req) as resp:
            if resp.status not in (200, 201):
                sys.exit(f"creating flag {i}: HTTP {resp.status}")
    print(f"seeded {n} flags")


if __name__ == "__main__":
    main()
