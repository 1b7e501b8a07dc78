"""The OpenFeature Python SDK with the official OFREP provider (`openfeature-provider-ofrep`) against
a live Vexil: typed evaluations (boolean, string, integer, float, object), targeting by context
attributes, an unknown flag, a change seen on the next evaluation, and auth failures. Flags come
from the management API."""

from __future__ import annotations

import os
import sys

import pytest
from openfeature import api as openfeature
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from vexil_compat import Management, Project  # noqa: E402

ALICE = EvaluationContext("alice", {"plan": "pro", "country": "FR"})
BOB = EvaluationContext("bob", {"plan": "free", "country": "DE"})
EVERYONE = [{"rollout_percentage": 100}]


def plan_is(plan: str) -> list[dict]:
    return [{"properties": [{"key": "plan", "type": "person", "operator": "exact", "value": plan}],
             "rollout_percentage": 100}]


@pytest.fixture(scope="module")
def project() -> Project:
    return Project.from_env()


@pytest.fixture(scope="module")
def flags(project):
    api = Management(project)
    created = {
        "bool": api.create_flag("ofrep-py-pro", {"groups": plan_is("pro"),
                                                 "payloads": {"true": '{"seats": 10}'}}),
        "variant": api.create_flag("ofrep-py-colour", {
            "groups": [{**plan_is("pro")[0], "variant": "gold"}, *EVERYONE],
            "multivariate": {"variants": [{"key": "grey", "rollout_percentage": 100},
                                          {"key": "gold", "rollout_percentage": 0}]}}),
        "int": api.create_flag("ofrep-py-limit", {"groups": EVERYONE, "payloads": {"true": "42"}},
                               is_remote_configuration=True),
        "float": api.create_flag("ofrep-py-ratio", {"groups": EVERYONE, "payloads": {"true": "0.25"}},
                                 is_remote_configuration=True),
        "object": api.create_flag("ofrep-py-theme", {"groups": EVERYONE,
                                                     "payloads": {"true": '{"theme": "dark", "columns": [1, 2]}'}},
                                  is_remote_configuration=True),
    }
    return api, created


def provider(project: Project, headers: dict[str, str]) -> OFREPProvider:
    return OFREPProvider(base_url=project.host, headers_factory=lambda: headers)


@pytest.fixture(scope="module")
def client(project, flags):
    openfeature.set_provider(provider(project, {"Authorization": f"Bearer {project.token}"}))
    openfeature.set_provider(provider(project, {"X-API-Key": project.token}), "x-api-key")
    openfeature.set_provider(provider(project, {"Authorization": "Bearer phc_not_a_project"}), "wrong-token")
    yield openfeature.get_client()
    openfeature.shutdown()


def test_boolean_targets_by_attribute_with_reason_and_metadata(client, flags):
    _, created = flags
    on = client.get_boolean_details("ofrep-py-pro", False, ALICE)
    assert (on.value, on.reason, on.error_code) == (True, Reason.TARGETING_MATCH, None)
    assert on.flag_metadata == {"flagId": created["bool"]["id"], "version": created["bool"]["version"],
                                "payload": '{"seats": 10}'}
    off = client.get_boolean_details("ofrep-py-pro", True, BOB)
    assert (off.value, off.reason) == (False, Reason.DEFAULT)


def test_string_is_the_variant_key(client, flags):
    gold = client.get_string_details("ofrep-py-colour", "none", ALICE)
    assert (gold.value, gold.variant) == ("gold", "gold")
    grey = client.get_string_details("ofrep-py-colour", "none", BOB)
    assert (grey.value, grey.variant, grey.reason) == ("grey", "grey", Reason.SPLIT)


def test_numbers_and_objects_are_remote_configuration_payloads(client, flags):
    limit = client.get_integer_details("ofrep-py-limit", 0, BOB)
    assert (limit.value, limit.reason) == (42, Reason.STATIC)
    assert client.get_float_value("ofrep-py-ratio", 1.0, BOB) == 0.25
    theme = client.get_object_details("ofrep-py-theme", {}, BOB)
    assert (theme.value, theme.reason) == ({"theme": "dark", "columns": [1, 2]}, Reason.STATIC)


def test_unknown_flag_answers_the_default_with_flag_not_found(client, flags):
    missing = client.get_boolean_details("ofrep-py-no-such-flag", True, ALICE)
    assert (missing.value, missing.error_code, missing.reason) == (True, ErrorCode.FLAG_NOT_FOUND, Reason.ERROR)


def test_wrong_type_and_missing_targeting_key_answer_the_default(client, flags):
    wrong = client.get_string_details("ofrep-py-pro", "fallback", ALICE)
    assert (wrong.value, wrong.error_code) == ("fallback", ErrorCode.TYPE_MISMATCH)
    anonymous = client.get_boolean_details("ofrep-py-pro", True, EvaluationContext(None, {"plan": "pro"}))
    assert (anonymous.value, anonymous.error_code) == (True, ErrorCode.TARGETING_KEY_MISSING)


def test_a_change_is_seen_on_the_next_evaluation(client, flags):
    # The provider does not cache: every evaluation asks the server.
    api, created = flags
    assert client.get_boolean_value("ofrep-py-pro", False, BOB) is False
    api.patch_flag(created["bool"]["id"], filters={"groups": plan_is("free")})
    assert client.get_boolean_value("ofrep-py-pro", False, BOB) is True
    api.patch_flag(created["bool"]["id"], active=False)
    disabled = client.get_boolean_details("ofrep-py-pro", True, BOB)
    assert (disabled.value, disabled.reason) == (False, Reason.DISABLED)


def test_token_in_x_api_key_works_and_a_wrong_token_answers_defaults(client):
    assert openfeature.get_client("x-api-key").get_integer_value("ofrep-py-limit", 0, BOB) == 42
    refused = openfeature.get_client("wrong-token").get_boolean_details("ofrep-py-pro", True, ALICE)
    assert (refused.value, refused.reason) == (True, Reason.ERROR)
    assert refused.error_code == ErrorCode.GENERAL
