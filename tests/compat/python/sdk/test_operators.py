"""Property operators: for every context the SDK can decide on its own, local evaluation (the SDK's
own matcher on our definitions) must agree with the server (/flags). Cases where PostHog's SDK
and PostHog's server are documented to differ (spec §5.5, §5.7) are left out on purpose."""

from datetime import datetime, timedelta, timezone

import pytest

from conftest import make_client


def prop(key, operator, value):
    return {"key": key, "type": "person", "operator": operator, "value": value}


OPERATOR_FLAGS = {
    "op-regex": [prop("email", "regex", r"^[a-z]+@vexil\.dev$")],
    "op-not-regex": [prop("email", "not_regex", r"@example\.com$")],
    "op-gt": [prop("age", "gt", "30")],
    "op-lte": [prop("age", "lte", "18")],
    "op-is-not": [prop("plan", "is_not", ["free"])],
    "op-exact-list": [prop("plan", "exact", ["pro", "team"])],
    "op-not-icontains": [prop("email", "not_icontains", "spam")],
    "op-date-before": [prop("signup_date", "is_date_before", "2024-01-01")],
    "op-date-after": [prop("signup_date", "is_date_after", "2023-06-15T00:00:00Z")],
    "op-date-relative": [prop("signup_date", "is_date_after", "-30d")],
    "op-semver-gte": [prop("app_version", "semver_gte", "2.1.0")],
    "op-semver-caret": [prop("app_version", "semver_caret", "1.4.0")],
    "op-semver-tilde": [prop("app_version", "semver_tilde", "2.1.0")],
    "op-starts-with": [prop("email", "starts_with", "admin")],
    "op-and": [prop("plan", "exact", ["pro"]), prop("age", "gte", "21")],
    # The server adds the request's distinct id to the person properties, as the SDKs do (§5.3).
    "op-distinct-id": [prop("distinct_id", "exact", ["op-1", "op-3"])],
}

recent = (datetime.now(timezone.utc) - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
CONTEXTS = [
    {"email": "alice@vexil.dev", "age": 35, "signup_date": "2023-01-10", "app_version": "2.3.1", "plan": "pro",
     "country": "NZ"},
    {"email": "bob@example.com", "age": "17", "signup_date": "2024-05-01T10:00:00Z", "app_version": "1.4.7",
     "plan": "free", "country": "AU"},
    {"email": "admin@vexil.dev", "age": 18, "signup_date": "2023-06-16", "app_version": "1.10.0", "plan": "team",
     "country": "AU"},
    {"email": "spam-king@example.org", "age": 30.5, "signup_date": recent, "app_version": "2.1.0", "plan": "Pro",
     "country": "US"},
    {"email": "Carol@Vexil.Dev", "age": 31, "signup_date": "2023-06-14", "app_version": "2.1.9",
     "plan": "enterprise", "country": "nz"},
    {"email": "dave@vexil.dev", "age": "21", "signup_date": "2022-12-31T23:59:59Z", "app_version": "1.3.9",
     "plan": "PRO", "country": "FR"},
]


def cohort_ref(cohort_id, **extra):
    return {"key": "id", "type": "cohort", "value": cohort_id, **extra}


@pytest.fixture(scope="module")
def operator_flags(api, catalog):
    flags = {
        key: api.create_flag(key, {"groups": [{"properties": props, "rollout_percentage": 100}]})
        for key, props in OPERATOR_FLAGS.items()
    }
    # Dynamic cohorts shipped with the definitions: nested groups, a cohort inside a cohort,
    # negation, and `not_in` (spec §6).
    anz = api.create_cohort("ANZ", {"properties": {"type": "OR", "values": [
        {"type": "OR", "values": [prop("country", "exact", ["NZ"]), prop("country", "exact", ["AU"])]}]}})
    paying_anz = api.create_cohort("Paying ANZ", {"properties": {"type": "AND", "values": [
        {"type": "AND", "values": [cohort_ref(anz["id"]), {**prop("plan", "exact", ["free"]), "negation": True}]}]}})
    for key, props in {
        "op-cohort-nested": [cohort_ref(paying_anz["id"])],
        "op-cohort-not-in": [cohort_ref(anz["id"], operator="not_in")],
    }.items():
        flags[key] = api.create_flag(key, {"groups": [{"properties": props, "rollout_percentage": 100}]})
    return flags


@pytest.fixture(scope="module")
def local(project, operator_flags):
    client = make_client(project, secret_key=project.secret_key)
    client.load_feature_flags()
    yield client
    client.shutdown()


@pytest.mark.parametrize("key", sorted(OPERATOR_FLAGS) + ["op-cohort-nested", "op-cohort-not-in"])
def test_operator_local_equals_remote(local, remote, key):
    answers = []
    for i, props in enumerate(CONTEXTS):
        d = f"op-{i}"
        here = local.get_feature_flag(key, d, person_properties=props, only_evaluate_locally=True,
                                      send_feature_flag_events=False)
        there = remote.get_feature_flag(key, d, person_properties=props, send_feature_flag_events=False)
        assert here is not None, f"{key}: the SDK could not decide locally for {props}"
        assert here == there, f"{key} for {props}: SDK (local) {here!r}, server {there!r}"
        answers.append(there)
    # Each operator flag is on for some contexts and off for others, so the comparison means something.
    assert True in answers and False in answers, f"{key}: {answers}"
