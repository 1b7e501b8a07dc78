"""An old posthog-python (3.x, still deployed widely) against the same project: it evaluates through
the legacy `/decide/?v=3` endpoint (flags v1 shape) and loads definitions from the legacy
`/api/feature_flag/local_evaluation/` path. Uses only APIs that 3.x has; runs after the SDK suite
created the catalog (it creates no flags itself)."""

import json

import pytest
from posthog import Posthog

from catalog import BETA_PAYLOAD, EMAIL_DOMAIN, LOCALLY_EVALUABLE, STATIC_MEMBERS, VARIANT_PAYLOADS, VARIANTS
from vexil_compat import RecordingProxy, in_rollout, variant_for

# Flag dependencies (`type: "flag"` filters) are newer than 3.x: it cannot evaluate them locally.
OLD_SDK_CANNOT_EVALUATE = {"depends-on-beta"}
CONTEXT = dict(person_properties={"email": f"legacy{EMAIL_DOMAIN}", "plan": "free", "country": "NZ"},
               groups={"company": "acme"}, group_properties={"company": {"plan": "enterprise"}})


@pytest.fixture(scope="module")
def proxy(project):
    p = RecordingProxy(project.host)
    yield p
    p.close()


@pytest.fixture(scope="module")
def remote(project, proxy):
    client = Posthog(project.token, host=proxy.url)
    yield client
    client.shutdown()  # (3.x cannot shut down a sync_mode client: its join() iterates None)


@pytest.fixture(scope="module")
def local(project, proxy):
    client = Posthog(project.token, host=proxy.url, personal_api_key=project.personal_key, poll_interval=300)
    client.load_feature_flags()
    yield client
    client.shutdown()


def test_remote_evaluation_through_decide(remote, proxy):
    assert remote.feature_enabled("beta-email", "old-1", person_properties={"email": f"o{EMAIL_DOMAIN}"}) is True
    assert remote.feature_enabled("beta-email", "old-2", person_properties={"email": "o@example.com"}) is False
    for i in range(20):
        d = f"old-user-{i}"
        assert remote.feature_enabled("half-rollout", d) == in_rollout("half-rollout", d, 50)
        assert remote.get_feature_flag("checkout-layout", d) == variant_for("checkout-layout", d, VARIANTS)
    assert remote.feature_enabled("vip-only", STATIC_MEMBERS[0]) is True
    assert remote.feature_enabled("company-flag", "old-3", groups={"company": "acme"}) is True
    decide = proxy.matching("/decide/")
    assert decide and all(e.status == 200 for e in decide), [(e.path, e.status) for e in proxy.exchanges]


def test_payloads_through_decide(remote):
    payload = remote.get_feature_flag_payload("beta-email", "old-4", person_properties={"email": f"p{EMAIL_DOMAIN}"})
    assert (json.loads(payload) if isinstance(payload, str) else payload) == BETA_PAYLOAD
    d = "old-5"
    both = remote.get_all_flags_and_payloads(d)
    variant = variant_for("checkout-layout", d, VARIANTS)
    assert both["featureFlags"]["checkout-layout"] == variant
    got = both["featureFlagPayloads"]["checkout-layout"]
    assert (json.loads(got) if isinstance(got, str) else got) == VARIANT_PAYLOADS[variant]


def test_local_evaluation_from_the_legacy_path(local, remote, proxy):
    loads = proxy.matching("/api/feature_flag/local_evaluation/")
    assert loads and loads[0].status == 200, [(e.path, e.status) for e in proxy.exchanges]
    assert {f["key"] for f in local.feature_flags} >= set(LOCALLY_EVALUABLE)
    for i in range(10):
        d = f"old-local-{i}"
        for key in LOCALLY_EVALUABLE:
            there = remote.get_feature_flag(key, d, **CONTEXT)
            here = local.get_feature_flag(key, d, **CONTEXT, only_evaluate_locally=True)
            if key in OLD_SDK_CANNOT_EVALUATE:
                assert here is None, key
                # … so it asks the server, and gets the same answer.
                assert local.get_feature_flag(key, d, **CONTEXT) == there, (key, d)
                continue
            assert here is not None, key
            assert here == there, (key, d)


def test_capture_then_evaluate(project, remote):
    client = Posthog(project.token, host=project.host)
    client.capture(distinct_id="old-capture-1", event="signed_up",
                   properties={"$set": {"email": f"cap{EMAIL_DOMAIN}"}})
    client.flush()
    client.shutdown()
    assert remote.feature_enabled("beta-email", "old-capture-1") is True
