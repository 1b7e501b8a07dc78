"""posthog-python's opt-in capture v1 protocol (`capture_mode="v1"`): `POST /i/v1/analytics/events`
with the project token as a Bearer credential and per-event results."""

from conftest import make_client


def test_capture_v1_protocol(project, remote, catalog):
    client = make_client(project, capture_mode="v1", max_retries=0)
    try:
        client.capture("signed_up", distinct_id="v1-user", properties={"$set": {"email": "v1@vexil.dev"}})
        client.flush()
    finally:
        client.shutdown()
    assert remote.feature_enabled("beta-email", "v1-user") is True
