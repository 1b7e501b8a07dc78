"""Remote evaluation: the posthog SDK without a key asks the server (/flags) for every answer."""

import json

from catalog import BETA_PAYLOAD, EMAIL_DOMAIN, STATIC_MEMBERS, VARIANT_PAYLOADS, VARIANTS
from vexil_compat import flags_v2, in_rollout, variant_for

IDS = [f"user-{i}" for i in range(60)]


def test_boolean_flag_with_person_property_targeting(remote, catalog):
    assert remote.feature_enabled("beta-email", "u-1", person_properties={"email": f"ann{EMAIL_DOMAIN}"}) is True
    assert remote.feature_enabled("beta-email", "u-2", person_properties={"email": "bob@example.com"}) is False
    # No property at all: the condition cannot match.
    assert remote.feature_enabled("beta-email", "u-3") is False
    assert remote.get_feature_flag("beta-email", "u-1", person_properties={"email": f"A{EMAIL_DOMAIN}"}) is True


def test_unknown_flag_is_none(remote, catalog):
    assert remote.get_feature_flag("no-such-flag", "u-1") is None
    assert remote.feature_enabled("no-such-flag", "u-1") is None


def test_fifty_percent_rollout_matches_posthog_hashing(remote, catalog):
    got = {d: remote.feature_enabled("half-rollout", d) for d in IDS}
    expected = {d: in_rollout("half-rollout", d, 50) for d in IDS}
    assert got == expected
    assert 0 < sum(got.values()) < len(IDS)


def test_multivariate_variants_match_posthog_hashing(remote, catalog):
    for d in IDS:
        want = variant_for("checkout-layout", d, VARIANTS)
        assert remote.get_feature_flag("checkout-layout", d) == want, d
    seen = {remote.get_feature_flag("checkout-layout", d) for d in IDS}
    assert seen == {"control", "test", "compact"}


def test_condition_variant_override(remote, catalog):
    for d in IDS[:10]:
        assert remote.get_feature_flag("checkout-layout", d, person_properties={"plan": "pro"}) == "compact"


def test_payloads(remote, catalog):
    email = {"email": f"pay{EMAIL_DOMAIN}"}
    assert remote.get_feature_flag_payload("beta-email", "p-1", person_properties=email) == BETA_PAYLOAD
    assert remote.get_feature_flag_payload("beta-email", "p-2", person_properties={"email": "x@y.z"}) is None
    for d in IDS[:10]:
        variant = variant_for("checkout-layout", d, VARIANTS)
        assert remote.get_feature_flag_payload("checkout-layout", d) == VARIANT_PAYLOADS[variant]
        # Asking for a specific variant's payload returns that variant's payload when it matches.
        assert remote.get_feature_flag_payload("checkout-layout", d, match_value=variant) == VARIANT_PAYLOADS[variant]


def test_get_all_flags(remote, catalog):
    d = "all-1"
    flags = remote.get_all_flags(d, person_properties={"email": f"all{EMAIL_DOMAIN}", "country": "NZ"})
    assert flags["beta-email"] is True
    assert flags["depends-on-beta"] is True
    assert flags["nz-cohort-flag"] is True
    assert flags["vip-only"] is False
    assert flags["company-flag"] is False  # no group passed
    assert flags["half-rollout"] == in_rollout("half-rollout", d, 50)
    assert flags["checkout-layout"] == variant_for("checkout-layout", d, VARIANTS)
    assert set(flags) >= {"beta-email", "half-rollout", "checkout-layout", "company-flag", "company-half",
                          "sticky-rollout", "depends-on-beta", "vip-only", "nz-cohort-flag"}


def test_get_all_flags_and_payloads(remote, catalog):
    d = "all-2"
    result = remote.get_all_flags_and_payloads(d, person_properties={"email": f"b{EMAIL_DOMAIN}"})
    variant = variant_for("checkout-layout", d, VARIANTS)
    assert result["featureFlags"]["beta-email"] is True
    assert result["featureFlags"]["checkout-layout"] == variant
    # Here the SDK hands payloads over as the server sent them: JSON-encoded strings (as PostHog's).
    assert json.loads(result["featureFlagPayloads"]["beta-email"]) == BETA_PAYLOAD
    assert json.loads(result["featureFlagPayloads"]["checkout-layout"]) == VARIANT_PAYLOADS[variant]
    # Disabled flags carry no payload.
    assert "half-rollout" not in result["featureFlagPayloads"]


def test_group_flag_with_group_properties(remote, catalog):
    enterprise = {"company": {"plan": "enterprise"}}
    assert remote.feature_enabled("company-flag", "g-1", groups={"company": "initech"},
                                  group_properties=enterprise) is True
    assert remote.feature_enabled("company-flag", "g-1", groups={"company": "initech"},
                                  group_properties={"company": {"plan": "free"}}) is False
    # Without the group the flag is off, whatever the person.
    assert remote.feature_enabled("company-flag", "g-1") is False


def test_group_flag_uses_stored_group_properties(remote, catalog):
    # acme/globex were identified through capture (group_identify) before the flag was created.
    assert remote.feature_enabled("company-flag", "g-2", groups={"company": "acme"}) is True
    assert remote.feature_enabled("company-flag", "g-2", groups={"company": "globex"}) is False


def test_group_rollout_hashes_the_group_key(remote, catalog):
    for i in range(40):
        company = f"co-{i}"
        # The person does not matter, only the group key.
        for d in ("p-1", "p-2"):
            got = remote.feature_enabled("company-half", d, groups={"company": company})
            assert got == in_rollout("company-half", company, 50), (company, d)


def test_experience_continuity_flag(remote, catalog):
    for d in IDS[:20]:
        assert remote.feature_enabled("sticky-rollout", d) == in_rollout("sticky-rollout", d, 50), d


def test_flag_dependency(remote, catalog):
    assert remote.feature_enabled("depends-on-beta", "d-1", person_properties={"email": f"d{EMAIL_DOMAIN}"}) is True
    assert remote.feature_enabled("depends-on-beta", "d-2", person_properties={"email": "d@other.org"}) is False


def test_static_cohort_membership(remote, catalog):
    for member in STATIC_MEMBERS:
        assert remote.feature_enabled("vip-only", member) is True, member
    assert remote.feature_enabled("vip-only", "not-a-vip") is False


def test_dynamic_cohort(remote, catalog):
    assert remote.feature_enabled("nz-cohort-flag", "c-1", person_properties={"country": "NZ"}) is True
    assert remote.feature_enabled("nz-cohort-flag", "c-2", person_properties={"country": "AU"}) is False


def test_evaluate_flags_snapshot(remote, catalog):
    """posthog 7.x's recommended API: one /flags request, then reads from the snapshot."""
    d = "snap-1"
    flags = remote.evaluate_flags(d, person_properties={"email": f"s{EMAIL_DOMAIN}"})
    assert flags.is_enabled("beta-email") is True
    assert flags.get_flag("checkout-layout") == variant_for("checkout-layout", d, VARIANTS)
    assert flags.get_flag_payload("beta-email") == BETA_PAYLOAD


def test_wire_response_is_flags_v2(project, catalog):
    """The records the SDKs parse: /flags?v=2 with reasons and metadata."""
    body = flags_v2(project, {"distinct_id": "wire-1", "person_properties": {"email": f"w{EMAIL_DOMAIN}"}})
    assert body["errorsWhileComputingFlags"] is False
    rec = body["flags"]["beta-email"]
    assert rec["enabled"] is True and rec["variant"] is None
    assert rec["reason"]["code"] == "condition_match"
    assert rec["metadata"]["id"] == catalog["beta-email"]["id"]
    assert rec["metadata"]["version"] == catalog["beta-email"]["version"]
    assert rec["metadata"]["payload"] == catalog["beta-email"]["filters"]["payloads"]["true"]
    assert isinstance(body["requestId"], str) and isinstance(body["evaluatedAt"], int)
