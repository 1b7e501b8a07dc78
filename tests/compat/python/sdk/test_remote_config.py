"""Remote-configuration flags: the payload endpoint the SDKs call directly."""

import json

from conftest import make_client

SETTINGS = {"max_items": 5, "theme": "dark"}


def test_remote_config_payload(project, api, catalog):
    """posthog-python get_remote_config_payload(): GET feature_flags/{key}/remote_config with the
    secret key returns the stored filters.payloads['true'] of a remote-configuration flag."""
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
