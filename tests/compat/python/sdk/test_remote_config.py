"""Remote-configuration flags: the payload endpoint the SDKs call directly (plain and encrypted,
with the personal or the secret key), and plain ones served by /flags like any flag."""

import json

import pytest

from conftest import make_client

SETTINGS = {"max_items": 5, "theme": "dark"}
SECRET = {"api_key": "s3cret", "region": "eu"}
EVERYONE = [{"properties": [], "rollout_percentage": 100}]


def loads(payload):
    return json.loads(payload) if isinstance(payload, str) else payload


@pytest.fixture(scope="module")
def remote_configs(api, catalog):
    api.create_flag("remote-settings", {"groups": EVERYONE, "payloads": {"true": json.dumps(SETTINGS)}},
                    is_remote_configuration=True)
    api.create_flag("remote-secret", {"groups": EVERYONE, "payloads": {"true": json.dumps(SECRET)}},
                    is_remote_configuration=True, has_encrypted_payloads=True)


def test_remote_config_payload(project, remote_configs):
    """posthog-python get_remote_config_payload(): GET feature_flags/{key}/remote_config with the
    secret key returns the stored filters.payloads['true'] of a remote-configuration flag."""
    client = make_client(project, secret_key=project.secret_key)
    try:
        payload = client.get_remote_config_payload("remote-settings")
    finally:
        client.shutdown()
    assert loads(payload) == SETTINGS


def test_encrypted_payload_only_for_the_personal_key(project, remote_configs):
    client = make_client(project, personal_api_key=project.personal_key)
    try:
        assert loads(client.get_remote_config_payload("remote-secret")) == SECRET
    finally:
        client.shutdown()
    client = make_client(project, secret_key=project.secret_key)
    try:
        # PostHog's redaction marker, itself a JSON string.
        assert loads(client.get_remote_config_payload("remote-secret")) == "********* (encrypted)"
    finally:
        client.shutdown()


def test_plain_remote_config_payload_through_flags(remote, remote_configs):
    """get_feature_flag_payload on a remote-configuration flag reads /flags (it used to be None)."""
    assert remote.get_feature_flag_payload("remote-settings", "rc-1") == SETTINGS
    flags = remote.evaluate_flags("rc-1")
    assert flags.is_enabled("remote-settings") is True
    assert flags.get_flag_payload("remote-settings") == SETTINGS
    # Encrypted ones never leave remote_config.
    assert remote.get_feature_flag_payload("remote-secret", "rc-1") is None
    assert "remote-secret" not in remote.get_all_flags("rc-1")


def test_plain_remote_config_flags_evaluate_locally(project, remote_configs):
    client = make_client(project, secret_key=project.secret_key)
    try:
        client.load_feature_flags()
        assert client.get_feature_flag_payload("remote-settings", "rc-2", only_evaluate_locally=True) == SETTINGS
        assert client.get_feature_flag("remote-secret", "rc-2", only_evaluate_locally=True) is None
    finally:
        client.shutdown()
