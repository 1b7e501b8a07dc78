"""The flag catalog of the Python suites: what is created through the management API, and the
constants the tests check answers against."""

from __future__ import annotations

import json

from vexil_compat import Management


EMAIL_DOMAIN = "@vexil.dev"
VARIANTS = [
    {"key": "control", "name": "Control", "rollout_percentage": 50},
    {"key": "test", "name": "Test", "rollout_percentage": 30},
    {"key": "compact", "name": "Compact", "rollout_percentage": 20},
]
VARIANT_PAYLOADS = {
    "control": {"layout": "classic", "columns": 1},
    "test": {"layout": "grid", "columns": 3},
    "compact": {"layout": "compact", "columns": 2},
}
BETA_PAYLOAD = {"banner": "Welcome to the beta", "limits": [1, 2, 3]}
STATIC_MEMBERS = ["vip-alice", "vip-bob", "vip-carol"]
# Flags whose definitions an SDK can evaluate on its own (no static cohort).
LOCALLY_EVALUABLE = [
    "beta-email",
    "half-rollout",
    "checkout-layout",
    "company-flag",
    "company-half",
    "depends-on-beta",
    "nz-cohort-flag",
]


def person_prop(key, value, operator="exact"):
    return {"key": key, "type": "person", "operator": operator, "value": value}


def build_catalog(api: Management) -> dict:
    """Creates every flag and cohort of the suite; returns {key: flag object, "cohorts": {...}}."""
    flags: dict = {}

    def create(key, filters, **fields):
        flags[key] = api.create_flag(key, filters, **fields)
        return flags[key]

    beta = create(
        "beta-email",
        {
            "groups": [
                {"properties": [person_prop("email", EMAIL_DOMAIN, "icontains")], "rollout_percentage": 100}
            ],
            "payloads": {"true": json.dumps(BETA_PAYLOAD)},
        },
        name="Beta for our own e-mail domain",
    )
    create("half-rollout", {"groups": [{"properties": [], "rollout_percentage": 50}]})
    create(
        "checkout-layout",
        {
            "groups": [
                # Pro users always get the compact layout (a condition-level variant override) …
                {"properties": [person_prop("plan", ["pro"])], "rollout_percentage": 100, "variant": "compact"},
                # … everyone else is split 50/30/20.
                {"properties": [], "rollout_percentage": 100},
            ],
            "multivariate": {"variants": VARIANTS},
            "payloads": {k: json.dumps(v) for k, v in VARIANT_PAYLOADS.items()},
        },
    )
    create(
        "company-flag",
        {
            "aggregation_group_type_index": 0,
            "groups": [
                {
                    "properties": [
                        {
                            "key": "plan",
                            "type": "group",
                            "group_type_index": 0,
                            "operator": "exact",
                            "value": ["enterprise"],
                        }
                    ],
                    "rollout_percentage": 100,
                }
            ],
        },
    )
    # Group bucketing: hashed on the group key, not the person.
    create("company-half", {"aggregation_group_type_index": 0, "groups": [{"properties": [], "rollout_percentage": 50}]})
    # Experience continuity: SDKs never evaluate it locally (spec §5.7).
    create("sticky-rollout", {"groups": [{"properties": [], "rollout_percentage": 50}]},
           ensure_experience_continuity=True)
    create(
        "depends-on-beta",
        {
            "groups": [
                {
                    "properties": [
                        {"key": str(beta["id"]), "type": "flag", "operator": "flag_evaluates_to", "value": True}
                    ],
                    "rollout_percentage": 100,
                }
            ]
        },
    )
    vips = api.create_static_cohort("VIP testers", STATIC_MEMBERS)
    create(
        "vip-only",
        {"groups": [{"properties": [{"key": "id", "type": "cohort", "value": vips["id"]}], "rollout_percentage": 100}]},
    )
    nz = api.create_cohort(
        "New Zealanders",
        {"properties": {"type": "OR", "values": [{"type": "AND", "values": [person_prop("country", ["NZ"])]}]}},
    )
    create(
        "nz-cohort-flag",
        {"groups": [{"properties": [{"key": "id", "type": "cohort", "value": nz["id"]}], "rollout_percentage": 100}]},
    )
    flags["cohorts"] = {"vip": vips, "nz": nz}
    return flags
