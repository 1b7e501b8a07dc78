"""Local evaluation: the posthog SDK with a personal (phx_) or secret (phs_) key downloads the
definitions (/flags/definitions) and evaluates flags itself; its answers must equal the server's,
and both must equal the answer worked out here from the catalog's definitions (so a server that
served wrong definitions and answered wrongly the same way would not pass)."""

import pytest
import requests

from catalog import BETA_PAYLOAD, EMAIL_DOMAIN, LOCALLY_EVALUABLE, STATIC_MEMBERS, VARIANT_PAYLOADS, VARIANTS
from conftest import make_client
from vexil_compat import RecordingProxy, definitions, in_rollout, variant_for, wait_until

# Contexts that carry every property the catalog's flags read, so the SDK never has to give up.
CONTEXTS = [
    dict(distinct_id=f"local-{i}",
         person_properties={"email": email, "plan": plan, "country": country},
         groups={"company": company},
         group_properties={"company": {"plan": company_plan}})
    for i, (email, plan, country, company, company_plan) in enumerate([
        (f"a{EMAIL_DOMAIN}", "free", "NZ", "acme", "enterprise"),
        ("b@example.com", "pro", "AU", "globex", "free"),
        (f"c{EMAIL_DOMAIN}", "pro", "NZ", "initech", "enterprise"),
        ("d@example.com", "free", "US", "hooli", "free"),
    ] * 5)
]


def expected(key, ctx):
    """(value, payload) of a LOCALLY_EVALUABLE flag for one of CONTEXTS, from its definition in
    catalog.py and PostHog's hashing (vexil_compat's own implementation)."""
    person, company = ctx["person_properties"], ctx["groups"]["company"]
    beta = EMAIL_DOMAIN in person["email"].lower()
    if key == "beta-email":
        return beta, BETA_PAYLOAD if beta else None
    if key == "half-rollout":
        return in_rollout(key, ctx["distinct_id"], 50), None
    if key == "checkout-layout":
        variant = "compact" if person["plan"] == "pro" else variant_for(key, ctx["distinct_id"], VARIANTS)
        return variant, VARIANT_PAYLOADS[variant]
    if key == "company-flag":
        return ctx["group_properties"]["company"]["plan"] == "enterprise", None
    if key == "company-half":
        return in_rollout(key, company, 50), None
    if key == "depends-on-beta":
        return beta, None
    if key == "nz-cohort-flag":
        return person["country"] == "NZ", None
    raise AssertionError(f"no expectation for {key}")


def test_expectations_cover_both_answers():
    """The contexts tell a wrong answer from a right one: every boolean flag is on for some and
    off for others, and more than one variant is served."""
    for key in LOCALLY_EVALUABLE:
        assert len({expected(key, ctx)[0] for ctx in CONTEXTS}) >= 2, key


@pytest.fixture(scope="module")
def local(project, catalog):
    client = make_client(project, secret_key=project.personal_key)
    client.load_feature_flags()
    yield client
    client.shutdown()


def test_definitions_are_loaded(local, catalog):
    keys = {f["key"] for f in local.feature_flags}
    assert keys >= set(LOCALLY_EVALUABLE) | {"vip-only"}
    assert local.group_type_mapping == {"0": "company"}
    # The dynamic cohort is shipped with the definitions; the static one never is (spec §2.3).
    assert str(catalog["cohorts"]["nz"]["id"]) in local.cohorts
    assert str(catalog["cohorts"]["vip"]["id"]) not in local.cohorts


@pytest.mark.parametrize("key", LOCALLY_EVALUABLE)
def test_local_equals_remote(local, remote, catalog, key):
    for ctx in CONTEXTS:
        here = local.get_feature_flag(key, **ctx, only_evaluate_locally=True, send_feature_flag_events=False)
        there = remote.get_feature_flag(key, **ctx, send_feature_flag_events=False)
        assert here is not None, f"{key} was not evaluable locally for {ctx}"
        assert here == there, f"{key} for {ctx}: local {here!r}, remote {there!r}"
        want, want_payload = expected(key, ctx)
        assert here == want, f"{key} for {ctx}: {here!r}, expected {want!r}"
        local_payload = local.get_feature_flag_payload(key, **ctx, only_evaluate_locally=True)
        remote_payload = remote.get_feature_flag_payload(key, **ctx)
        assert local_payload == remote_payload, key
        assert local_payload == want_payload, key


def test_get_all_flags_locally(local, remote, catalog):
    for ctx in CONTEXTS[:8]:
        here = local.get_all_flags(**ctx, only_evaluate_locally=True)
        there = remote.get_all_flags(**ctx)
        # A static cohort cannot be evaluated from definitions: the SDK leaves the flag out.
        assert "vip-only" not in here
        assert {k: here[k] for k in LOCALLY_EVALUABLE} == {k: there[k] for k in LOCALLY_EVALUABLE}
        assert {k: here[k] for k in LOCALLY_EVALUABLE} == {k: expected(k, ctx)[0] for k in LOCALLY_EVALUABLE}
        both = local.get_all_flags_and_payloads(**ctx, only_evaluate_locally=True)
        assert both["featureFlags"] == here


def test_static_cohort_falls_back_to_the_server(local, catalog):
    member = STATIC_MEMBERS[0]
    assert local.get_feature_flag("vip-only", member, only_evaluate_locally=True) is None
    assert local.get_feature_flag("vip-only", member) is True
    assert local.get_feature_flag("vip-only", "stranger") is False
    # get_all_flags without only_evaluate_locally fills the gap from /flags.
    assert local.get_all_flags(member)["vip-only"] is True


def test_experience_continuity_falls_back_to_the_server(local, remote, catalog):
    # With no stored hash-key override the server buckets on the distinct id: sticky-2 is in the
    # 50% rollout, sticky-1 and sticky-3 are not.
    want = {d: in_rollout("sticky-rollout", d, 50) for d in ("sticky-1", "sticky-2", "sticky-3")}
    assert want == {"sticky-1": False, "sticky-2": True, "sticky-3": False}
    for d, answer in want.items():
        assert local.get_feature_flag("sticky-rollout", d, only_evaluate_locally=True) is None
        assert local.get_feature_flag("sticky-rollout", d) == remote.get_feature_flag("sticky-rollout", d)
        assert local.get_feature_flag("sticky-rollout", d) is answer, d


def test_deleted_flag_disappears_everywhere(project, api, remote, catalog):
    client = make_client(project, secret_key=project.secret_key)
    try:
        flag = api.create_flag("soon-deleted", {"groups": [{"properties": [], "rollout_percentage": 100}]})
        client.load_feature_flags()
        assert client.get_feature_flag("soon-deleted", "x", only_evaluate_locally=True) is True
        assert remote.get_feature_flag("soon-deleted", "x") is True
        api.patch_flag(flag["id"], deleted=True)
        assert remote.get_feature_flag("soon-deleted", "x") is None
        assert "soon-deleted" not in remote.get_all_flags("x")
        client.load_feature_flags()
        assert "soon-deleted" not in {f["key"] for f in client.feature_flags}
        assert client.get_feature_flag("soon-deleted", "x", only_evaluate_locally=True) is None
        # The key is free again (PostHog removes the deleted row's claim on it).
        again = api.create_flag("soon-deleted", {"groups": [{"properties": [], "rollout_percentage": 0}]})
        assert again["id"] != flag["id"]
        assert remote.get_feature_flag("soon-deleted", "x") is False
    finally:
        client.shutdown()


def test_etag_and_304(project, catalog):
    first = definitions(project, project.personal_key)
    assert first.status_code == 200, first.text
    etag = first.headers.get("ETag")
    assert etag, "definitions must carry an ETag"
    again = definitions(project, project.personal_key, etag=etag)
    assert again.status_code == 304 and again.content == b""
    assert again.headers.get("ETag") == etag
    assert definitions(project, project.personal_key, etag='"something-else"').status_code == 200
    # The legacy path serves the same payload.
    legacy = requests.get(
        f"{project.host}/api/feature_flag/local_evaluation/",
        params={"token": project.token, "send_cohorts": ""},
        headers={"Authorization": f"Bearer {project.personal_key}"},
        timeout=10,
    )
    assert legacy.status_code == 200 and legacy.json() == first.json()


def test_sdk_polls_with_if_none_match_and_gets_304(project, api, catalog):
    proxy = RecordingProxy(project.host)
    client = None
    try:
        client = make_client(project, host=proxy.url, secret_key=project.personal_key)
        client.load_feature_flags()
        before = [dict(f) for f in client.feature_flags]
        client.load_feature_flags()
        assert [dict(f) for f in client.feature_flags] == before
        polls = proxy.matching("/flags/definitions")
        assert len(polls) >= 2, [e.path for e in proxy.exchanges]
        assert polls[0].status == 200
        etag = polls[0].response_headers.get("ETag") or polls[0].response_headers.get("etag")
        assert polls[-1].request_headers.get("If-None-Match") == etag
        assert polls[-1].status == 304

        # A change on the server: the next poll gets a 200 with the new definitions.
        probe = api.create_flag("etag-probe", {"groups": [{"properties": [], "rollout_percentage": 100}]})
        client.load_feature_flags()
        assert proxy.matching("/flags/definitions")[-1].status == 200
        assert "etag-probe" in {f["key"] for f in client.feature_flags}
        assert client.get_feature_flag("etag-probe", "anyone", only_evaluate_locally=True) is True
        api.patch_flag(probe["id"], active=False)
        client.load_feature_flags()
        assert client.get_feature_flag("etag-probe", "anyone", only_evaluate_locally=True) is False
    finally:
        if client is not None:
            client.shutdown()
        proxy.close()


def test_background_polling_picks_up_changes(project, api, catalog):
    """The SDK's own poller (poll_interval) sees a change made through the management API."""
    client = make_client(project, secret_key=project.secret_key, poll_interval=1)
    try:
        client.load_feature_flags()  # starts the poller
        flag = api.create_flag("poll-probe", {"groups": [{"properties": [], "rollout_percentage": 100}]})
        wait_until(lambda: client.get_feature_flag("poll-probe", "p", only_evaluate_locally=True) is True,
                   "the poller to load the new flag")
        api.patch_flag(flag["id"], filters={"groups": [{"properties": [], "rollout_percentage": 0}]})
        wait_until(lambda: client.get_feature_flag("poll-probe", "p", only_evaluate_locally=True) is False,
                   "the poller to load the changed rollout")
    finally:
        client.shutdown()


@pytest.mark.parametrize("which", ["secret_key", "personal_key"])
def test_both_key_kinds_authorise_local_evaluation(project, catalog, which):
    key = getattr(project, which)
    client = make_client(project, secret_key=key)
    try:
        client.load_feature_flags()
        assert {f["key"] for f in client.feature_flags} >= set(LOCALLY_EVALUABLE)
        assert client.get_feature_flag("beta-email", "k-1", person_properties={"email": f"k{EMAIL_DOMAIN}"},
                                       only_evaluate_locally=True) is True
    finally:
        client.shutdown()


@pytest.mark.sdk_errors_expected
def test_wrong_keys_are_refused(project, catalog):
    assert definitions(project, None).status_code == 401
    assert definitions(project, "phx_not_a_real_key").status_code == 401
    assert definitions(project, "phs_not_a_real_key").status_code == 401
    assert definitions(project, project.token).status_code == 401  # the public token is no secret
    client = make_client(project, secret_key="phx_not_a_real_key")
    try:
        client.load_feature_flags()
        assert not client.feature_flags
        assert client.get_feature_flag("half-rollout", "w-1", only_evaluate_locally=True) is None
    finally:
        client.shutdown()
