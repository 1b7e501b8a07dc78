"""Behavioural cohorts with the real posthog SDK, part 1 (before a restart): purchases captured by
the SDK decide the next /flags answer for that person.

Runs against a `vexil serve --test-clock` (a `test-clock` build) whose time the test moves with
`POST /_test/clock`, never by sleeping; part 2 runs after scripts/compat.sh restarts it."""

from conftest import make_client

BUYER, NEAR_BUYER = "behavior-buyer", "behavior-near-buyer"


def test_three_purchases_turn_the_flag_on_at_the_next_check(project, api, remote):
    cohort = api.create_cohort("recent buyers", {"properties": {"type": "AND", "values": [
        {"type": "AND", "values": [
            {"key": "purchase", "type": "behavioral", "value": "performed_event_multiple",
             "operator": "gte", "operator_value": 3, "event_type": "events",
             "time_value": 5, "time_interval": "minute"}]}]}})
    api.create_flag("recent-buyer", {"groups": [{"properties": [
        {"key": "id", "type": "cohort", "value": cohort["id"]}], "rollout_percentage": 100}]})
    assert remote.feature_enabled("recent-buyer", BUYER) is False

    client = make_client(project)
    for _ in range(3):
        client.capture("purchase", distinct_id=BUYER, properties={"amount": 10})
    for _ in range(2):
        client.capture("purchase", distinct_id=NEAR_BUYER, properties={"amount": 10})
    client.capture("$pageview", distinct_id=NEAR_BUYER)
    client.flush()
    client.shutdown()

    assert remote.feature_enabled("recent-buyer", BUYER) is True
    assert remote.feature_enabled("recent-buyer", NEAR_BUYER) is False


def test_local_evaluation_falls_back_to_the_server(project):
    local = make_client(project, secret_key=project.personal_key)
    try:
        local.load_feature_flags()
        assert local.feature_enabled("recent-buyer", BUYER, only_evaluate_locally=True) is None
        assert local.feature_enabled("recent-buyer", BUYER) is True
    finally:
        local.shutdown()
