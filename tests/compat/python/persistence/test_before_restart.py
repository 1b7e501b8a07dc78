"""Persistence, part 1 (before the restart): write persons through capture, then record everything
a restart must keep — definitions, flags, cohorts and members, persons, evaluations."""

from catalog import EMAIL_DOMAIN, STATIC_MEMBERS
from conftest import make_client
from state import save, snapshot


def test_write_and_record(project, api, remote):
    client = make_client(project)
    client.set(distinct_id="persist-1", properties={"email": f"persist{EMAIL_DOMAIN}", "plan": "pro"})
    client.set(distinct_id="persist-alias-old", properties={"email": f"old{EMAIL_DOMAIN}", "country": "NZ"})
    client.alias(previous_id="persist-alias-old", distinct_id="persist-alias-new")
    client.flush()
    client.shutdown()

    # Stored data drives these answers (no request properties).
    assert remote.feature_enabled("beta-email", "persist-1") is True
    assert remote.get_feature_flag("checkout-layout", "persist-1") == "compact"
    assert remote.feature_enabled("beta-email", "persist-alias-new") is True
    assert remote.feature_enabled("nz-cohort-flag", "persist-alias-new") is True
    assert remote.feature_enabled("vip-only", STATIC_MEMBERS[0]) is True
    assert remote.feature_enabled("company-flag", "x", groups={"company": "acme"}) is True

    data = snapshot(project, api, remote)
    keys = {f["key"] for f in data["flags"]}
    assert keys >= {"beta-email", "half-rollout", "checkout-layout", "company-flag", "depends-on-beta",
                    "vip-only", "nz-cohort-flag"}, "the SDK suite's catalog is missing"
    assert len(data["persons"]) == 6, data["persons"].keys()
    assert any(c["members"] for c in data["cohorts"].values()), "no static cohort members recorded"
    save(data)
