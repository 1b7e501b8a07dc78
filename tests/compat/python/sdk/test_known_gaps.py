"""Known incompatibilities, kept visible: each test states what PostHog does and is marked
`xfail(strict=True)`, so it shows as "xfailed" in every run and turns into a failure (XPASS) the
day the gap is closed — then drop the marker."""

import json

import pytest

from conftest import make_client

SETTINGS = {"max_items": 5, "theme": "dark"}


@pytest.mark.sdk_errors_expected
@pytest.mark.xfail(strict=True, reason=(
    "GAP: GET /api/projects/@current/feature_flags/{id or key}/remote_config?token=phc_… is not "
    "served (404). PostHog answers it for is_remote_configuration flags with the stored "
    "filters.payloads['true'] (a JSON string), authenticated by a personal key or the project "
    "secret key; posthog-python get_remote_config_payload() and posthog-node "
    "getRemoteConfigPayload() call it."))
def test_remote_config_payload(project, api, catalog):
    api.create_flag("remote-settings",
                    {"groups": [{"properties": [], "rollout_percentage": 100}],
                     "payloads": {"true": json.dumps(SETTINGS)}},
                    is_remote_configuration=True)
    client = make_client(project, secret_key=project.secret_key)
    try:
        payload = client.get_remote_config_payload("remote-settings")
    finally:
        client.shutdown()
    assert payload is not None
    assert (json.loads(payload) if isinstance(payload, str) else payload) == SETTINGS


@pytest.mark.sdk_errors_expected
@pytest.mark.xfail(strict=True, reason=(
    "GAP: POST /i/v1/analytics/events is not served (404). posthog-python sends it with the opt-in "
    "capture_mode='v1': the project token in `Authorization: Bearer phc_…` and a body "
    "{created_at, batch: [{event, uuid, distinct_id, timestamp, options, properties}]} without "
    "api_key, so the /batch/ parser cannot simply be mounted there."))
def test_capture_v1_protocol(project, remote, catalog):
    client = make_client(project, capture_mode="v1", max_retries=0)
    try:
        client.capture("signed_up", distinct_id="v1-user", properties={"$set": {"email": "v1@vexil.dev"}})
        client.flush()
    finally:
        client.shutdown()
    assert remote.feature_enabled("beta-email", "v1-user") is True
