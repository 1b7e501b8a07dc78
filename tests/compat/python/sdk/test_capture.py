"""Capture (/batch/) feeding evaluation: person properties set by events, aliases and identify
merging persons, group properties, and the `$feature_flag_called` events the SDK sends."""

import json

import pytest

from catalog import EMAIL_DOMAIN
from conftest import make_client
from vexil_compat import RecordingProxy, flags_v2, in_rollout


@pytest.fixture
def capture(project):
    """An SDK client in its default asynchronous mode: events are queued, then flushed."""
    client = make_client(project)
    yield client
    client.shutdown()


def test_set_via_capture_changes_remote_result(capture, remote, catalog):
    d = "setter-1"
    assert remote.feature_enabled("beta-email", d) is False
    capture.capture("signed_up", distinct_id=d, properties={"$set": {"email": f"setter{EMAIL_DOMAIN}"}})
    capture.flush()
    assert remote.feature_enabled("beta-email", d) is True
    # The stored property feeds dependencies too.
    assert remote.feature_enabled("depends-on-beta", d) is True


def test_set_method_and_overrides(capture, remote, api, catalog):
    d = "setter-2"
    capture.set(distinct_id=d, properties={"plan": "pro", "country": "NZ"})
    capture.flush()
    assert remote.get_feature_flag("checkout-layout", d) == "compact"
    assert remote.feature_enabled("nz-cohort-flag", d) is True
    # Properties sent with the request override stored ones (spec §1.4).
    assert remote.feature_enabled("nz-cohort-flag", d, person_properties={"country": "FR"}) is False
    person = api.person(d)
    assert person is not None and person["properties"]["plan"] == "pro"
    assert d in person["distinct_ids"]


def test_set_once_does_not_overwrite(capture, api, catalog):
    d = "setter-3"
    capture.capture("e", distinct_id=d, properties={"$set_once": {"first_seen_plan": "free"}})
    capture.capture("e", distinct_id=d, properties={"$set_once": {"first_seen_plan": "pro"}})
    capture.flush()
    assert api.person(d)["properties"]["first_seen_plan"] == "free"


def test_alias_merges_persons(capture, remote, api, catalog):
    anon, user = "anon-7f3a", "user-7f3a"
    capture.set(distinct_id=anon, properties={"email": f"alias{EMAIL_DOMAIN}"})
    capture.flush()
    assert remote.feature_enabled("beta-email", anon) is True
    assert remote.feature_enabled("beta-email", user) is False
    capture.alias(previous_id=anon, distinct_id=user)
    capture.flush()
    assert remote.feature_enabled("beta-email", user) is True
    person = api.person(user)
    assert set(person["distinct_ids"]) >= {anon, user}


def test_identify_merges_anonymous_person(capture, remote, api, catalog):
    anon, user = "anon-91c2", "user-91c2"
    capture.capture("$pageview", distinct_id=anon, properties={"$set": {"country": "NZ"}})
    capture.flush()
    assert remote.feature_enabled("nz-cohort-flag", user) is False
    capture.capture("$identify", distinct_id=user, properties={"$anon_distinct_id": anon})
    capture.flush()
    assert remote.feature_enabled("nz-cohort-flag", user) is True
    assert set(api.person(user)["distinct_ids"]) >= {anon, user}


def test_group_identify_updates_group_properties(capture, remote, catalog):
    capture.group_identify("company", "umbrella", {"plan": "free"})
    capture.flush()
    assert remote.feature_enabled("company-flag", "grp-1", groups={"company": "umbrella"}) is False
    capture.group_identify("company", "umbrella", {"plan": "enterprise"})
    capture.flush()
    assert remote.feature_enabled("company-flag", "grp-1", groups={"company": "umbrella"}) is True


def test_feature_flag_called_events(project, api, catalog):
    """get_feature_flag sends `$feature_flag_called` (spec §10) built from our /flags answer; the
    server records the call (the flag's `last_called_at`)."""
    # A flag of its own, so that no other test has called it yet.
    flag = api.create_flag("called-probe", {"groups": [{"properties": [], "rollout_percentage": 50}]})
    assert flag.get("last_called_at") is None
    proxy = RecordingProxy(project.host)
    client = make_client(project, host=proxy.url)
    try:
        d = "caller-1"
        value = client.get_feature_flag("called-probe", d)
        assert value == in_rollout("called-probe", d, 50)
        client.flush()
        flags_call = proxy.matching("/flags")[0]
        assert flags_call.status == 200
        batches = proxy.matching("/batch")
        assert batches and all(b.status == 200 for b in batches), [(b.path, b.status) for b in batches]
        events = [e for b in batches for e in json.loads(b.request_body)["batch"]]
        called = [e for e in events if e["event"] == "$feature_flag_called"]
        assert len(called) == 1, events
        props = called[0]["properties"]
        assert props["$feature_flag"] == "called-probe"
        assert props["$feature_flag_response"] == value
        assert props["$feature_flag_id"] == flag["id"]
        assert props["$feature_flag_version"] == flag["version"]
        assert props["$feature_flag_reason"] in ("Matched condition set 1", "Out of rollout bound")
        assert props["locally_evaluated"] is False
        assert props["$feature_flag_request_id"] == json.loads(flags_call.response_body)["requestId"]
    finally:
        client.shutdown()
        proxy.close()
    called_at = api.get_flag(flag["id"]).get("last_called_at")
    assert called_at, "the flag's last_called_at should be set once $feature_flag_called arrived"


def test_wire_flags_reflect_stored_person(project, capture, catalog):
    d = "wire-person-1"
    capture.set(distinct_id=d, properties={"email": f"wire{EMAIL_DOMAIN}"})
    capture.flush()
    body = flags_v2(project, {"distinct_id": d})
    assert body["flags"]["beta-email"]["enabled"] is True
    assert body["errorsWhileComputingFlags"] is False


def test_gzip_batches(project, remote, catalog):
    """posthog's `gzip=True` sends /batch/ bodies with Content-Encoding: gzip."""
    client = make_client(project, gzip=True)
    client.set(distinct_id="gzip-1", properties={"email": f"gz{EMAIL_DOMAIN}"})
    client.flush()
    client.shutdown()
    assert remote.feature_enabled("beta-email", "gzip-1") is True


def test_capture_ai_uses_the_ai_batch_path(project, remote, catalog):
    """posthog-python's `capture_ai` posts the usual batch body to /i/v0/ai/batch/."""
    proxy = RecordingProxy(project.host)
    client = make_client(project, host=proxy.url)
    try:
        client.capture_ai("$ai_generation", distinct_id="ai-user-1",
                          properties={"$ai_model": "small", "$set": {"email": f"ai{EMAIL_DOMAIN}"}})
        client.flush()
    finally:
        client.shutdown()
        proxy.close()
    posts = proxy.matching("/i/v0/ai/batch")
    assert posts and all(e.status == 200 for e in posts), [(e.path, e.status) for e in proxy.exchanges]
    assert remote.feature_enabled("beta-email", "ai-user-1") is True
