"""What the persistence check records before the restart and compares after it."""

from __future__ import annotations

import json
from pathlib import Path

from catalog import EMAIL_DOMAIN, STATIC_MEMBERS
from vexil_compat import Management, Project, definitions, env, flags_v2

# Persons written before the restart (by this phase and by the SDK suite), static-cohort members,
# and strangers; each evaluated with stored data only (no request properties) except where given.
CONTEXTS = [
    {"distinct_id": "persist-1"},  # $set email before the restart
    {"distinct_id": "persist-alias-new"},  # aliased to persist-alias-old, which had the email
    {"distinct_id": "setter-1"},  # SDK suite: $set email
    {"distinct_id": "setter-2"},  # SDK suite: plan=pro, country=NZ
    {"distinct_id": "user-7f3a"},  # SDK suite: alias
    {"distinct_id": "user-91c2"},  # SDK suite: $identify merge
    {"distinct_id": "stranger"},
    {"distinct_id": "acme-admin", "groups": {"company": "acme"}},
    {"distinct_id": "globex-admin", "groups": {"company": "globex"}},
    {"distinct_id": "req-props", "person_properties": {"email": f"req{EMAIL_DOMAIN}", "country": "NZ"}},
] + [{"distinct_id": m} for m in STATIC_MEMBERS]
PERSONS = ["persist-1", "persist-alias-new", "setter-1", "setter-2", "user-7f3a", "user-91c2"]


def state_path() -> Path:
    return Path(env("VEXIL_COMPAT_STATE")) / "python-persistence.json"


def snapshot(project: Project, api: Management, remote) -> dict:
    """Everything a restart must not change, as plain JSON."""
    defs = definitions(project, project.secret_key)
    assert defs.status_code == 200, defs.text
    flags = sorted(api.list_flags(), key=lambda f: f["id"])
    cohorts = api.call("GET", "cohorts/?limit=100")["results"]
    out = {
        "definitions": defs.json(),
        "etag": defs.headers.get("ETag"),
        "flags": [
            {k: f.get(k) for k in ("id", "key", "name", "filters", "active", "version", "created_at",
                                   "ensure_experience_continuity", "tags", "last_called_at")}
            for f in flags
        ],
        "cohorts": {
            str(c["id"]): {
                "object": {k: c.get(k) for k in ("id", "name", "filters", "is_static", "count")},
                "members": sorted(
                    json.dumps(m, sort_keys=True) for m in api.cohort_members(c["id"])
                ) if c.get("is_static") else None,
            }
            for c in sorted(cohorts, key=lambda c: c["id"])
        },
        "persons": {
            d: {k: p.get(k) for k in ("uuid", "properties", "created_at", "is_identified")}
            | {"distinct_ids": sorted(p.get("distinct_ids", []))}
            for d in PERSONS
            if (p := api.person(d)) is not None
        },
        "evaluations": [],
    }
    for ctx in CONTEXTS:
        wire = flags_v2(project, ctx)
        sdk = remote.get_all_flags_and_payloads(**ctx)
        out["evaluations"].append({
            "context": ctx,
            "wire": {k: {"enabled": r["enabled"], "variant": r["variant"], "reason": r["reason"],
                         "metadata": r["metadata"]} for k, r in wire["flags"].items()},
            "sdk": sdk,
        })
    return out


def save(data: dict) -> None:
    state_path().write_text(json.dumps(data, indent=1, sort_keys=True))


def load() -> dict:
    path = state_path()
    assert path.exists(), f"{path} is missing: the before-restart phase did not run or failed"
    return json.loads(path.read_text())

