"""posthog-python's newest flag API: evaluate_flags() asks /flags/?v=4 and reads the typed
records Vexil answers (no "server may not support /flags?v=4" fallback), and the
$feature_flag_called events its snapshot sends are stored with every property and queryable
through the management API (feature_flags/{id or key}/calls/)."""

import json
import logging

import posthog.version

from catalog import VARIANTS
from conftest import make_client
from vexil_compat import RecordingProxy, variant_for, wait_until


def calls(api, flag):
    return api.call("GET", f"feature_flags/{flag}/calls/")["results"]


def test_evaluate_flags_reads_typed_v4_records(project, catalog, caplog):
    caplog.set_level(logging.INFO, logger="posthog")
    proxy = RecordingProxy(project.host)
    client = make_client(project, host=proxy.url, sync_mode=True)
    try:
        d = "v4-user-1"
        flags = client.evaluate_flags(d, person_properties={"plan": "free"})
        assert flags.get_flag("checkout-layout") == variant_for("checkout-layout", d, VARIANTS)
        assert flags.is_enabled("half-rollout") in (True, False)
    finally:
        client.shutdown()
        proxy.close()
    [call] = proxy.matching("/flags")
    assert call.path.startswith("/flags/?v=4"), call.path
    records = json.loads(call.response_body)["flags"]
    assert records["checkout-layout"]["value"] == variant_for("checkout-layout", d, VARIANTS)
    assert records["checkout-layout"]["metadata"]["config_version"] == 1
    assert all("enabled" not in r for r in records.values())
    assert not [r for r in caplog.records if "may not support /flags?v=4" in r.getMessage()]


def test_feature_flag_called_from_a_snapshot_is_stored_and_queryable(project, api, catalog):
    client = make_client(project, sync_mode=True)
    d = "called-v4-1"
    try:
        flags = client.evaluate_flags(d, person_properties={"plan": "free"})
        variant = flags.get_flag("checkout-layout")
        assert flags.get_flag("no-such-flag-v4") is None
    finally:
        client.shutdown()
    flag = catalog["checkout-layout"]

    def mine():
        return [c for c in calls(api, flag["id"]) if c["distinct_id"] == d]

    [call] = wait_until(mine, "the $feature_flag_called event of checkout-layout")
    assert call["response"] == variant
    assert call["locally_evaluated"] is False
    assert call["flag_id"] == flag["id"]
    assert call["flag_version"] == flag["version"]
    assert call["reason"] == "Matched condition set 2"  # the split, after the pro override
    assert call["has_experiment"] is False
    assert call["errors"] == []
    assert call["request_id"] and call["evaluated_at"]
    assert (call["lib"], call["lib_version"]) == ("posthog-python", posthog.version.VERSION)
    assert call["properties"]["$feature_flag"] == "checkout-layout"

    # A key the server does not know: the SDK reports flag_missing, queryable by that key.
    missing = wait_until(lambda: [c for c in calls(api, "no-such-flag-v4") if c["distinct_id"] == d],
                         "the flag_missing call")
    assert missing[0]["errors"] == ["flag_missing"]
    assert missing[0]["response"] is None
