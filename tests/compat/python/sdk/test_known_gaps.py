"""Known incompatibilities, kept visible: each test states what PostHog does and is marked
`xfail(strict=True)`, so it shows as "xfailed" in every run and turns into a failure (XPASS) the
day the gap is closed — then drop the marker."""

import pytest

from conftest import make_client


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
