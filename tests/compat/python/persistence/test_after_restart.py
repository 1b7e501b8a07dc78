"""Persistence, part 2 (after SIGTERM and a new `vexil serve` on the same data dir): every flag,
cohort, person and key still works, and answers are identical to those recorded before."""

import pytest
import requests

from catalog import EMAIL_DOMAIN, LOCALLY_EVALUABLE, STATIC_MEMBERS
from conftest import make_client
from state import CONTEXTS, load, snapshot
from vexil_compat import definitions, flags_v2


@pytest.fixture(scope="module")
def before():
    return load()


@pytest.fixture(scope="module")
def now(project, api, remote):
    return snapshot(project, api, remote)


def test_definitions_and_etag_unchanged(before, now):
    assert now["definitions"] == before["definitions"]
    # The same definitions give the same ETag, so polling SDKs keep getting 304 across a restart.
    assert now["etag"] == before["etag"]


def without_usage(flags):
    # `last_called_at` is usage, not definition: evaluations answered since the last usage
    # flush are added at shutdown, so a restart may move it forward.
    return [{k: v for k, v in flag.items() if k != "last_called_at"} for flag in flags]


def test_flags_unchanged(before, now):
    assert without_usage(now["flags"]) == without_usage(before["flags"])
    for old, new in zip(before["flags"], now["flags"]):
        assert (new.get("last_called_at") or "") >= (old.get("last_called_at") or ""), new["key"]


def test_cohorts_and_members_unchanged(before, now):
    assert now["cohorts"] == before["cohorts"]


def test_persons_unchanged(before, now):
    assert now["persons"] == before["persons"]


def test_evaluations_identical(before, now):
    assert len(now["evaluations"]) == len(before["evaluations"]) == len(CONTEXTS)
    for b, n in zip(before["evaluations"], now["evaluations"]):
        assert n["context"] == b["context"]
        assert n["wire"] == b["wire"], b["context"]
        assert n["sdk"] == b["sdk"], b["context"]


def test_stored_data_still_drives_evaluation(remote):
    assert remote.feature_enabled("beta-email", "persist-1") is True
    assert remote.get_feature_flag("checkout-layout", "persist-1") == "compact"
    assert remote.feature_enabled("beta-email", "persist-alias-new") is True
    assert remote.feature_enabled("nz-cohort-flag", "persist-alias-new") is True
    assert remote.feature_enabled("beta-email", "stranger") is False
    for member in STATIC_MEMBERS:
        assert remote.feature_enabled("vip-only", member) is True
    assert remote.feature_enabled("company-flag", "x", groups={"company": "acme"}) is True
    assert remote.feature_enabled("company-flag", "x", groups={"company": "globex"}) is False


def test_keys_still_authenticate(project, api):
    assert flags_v2(project, {"distinct_id": "k"})["flags"]
    assert definitions(project, project.secret_key).status_code == 200
    assert definitions(project, project.personal_key).status_code == 200
    assert api.call("GET", "feature_flags/")["count"] >= len(LOCALLY_EVALUABLE)
    assert definitions(project, "phs_wrong").status_code == 401
    r = requests.get(f"{project.host}/api/projects/@current/feature_flags/",
                     headers={"Authorization": "Bearer phx_wrong"}, timeout=10)
    assert r.status_code == 401


@pytest.mark.parametrize("which", ["secret_key", "personal_key"])
def test_local_evaluation_after_restart(project, remote, which):
    client = make_client(project, secret_key=getattr(project, which))
    try:
        client.load_feature_flags()
        ctx = dict(person_properties={"email": f"r{EMAIL_DOMAIN}", "plan": "free", "country": "NZ"},
                   groups={"company": "acme"}, group_properties={"company": {"plan": "enterprise"}})
        for i in range(10):
            for key in LOCALLY_EVALUABLE:
                d = f"restart-{i}"
                assert client.get_feature_flag(key, d, **ctx, only_evaluate_locally=True) == \
                    remote.get_feature_flag(key, d, **ctx), key
    finally:
        client.shutdown()


def test_writes_after_restart(project, api, remote, before):
    flag = api.create_flag("created-after-restart", {"groups": [{"properties": [
        {"key": "email", "type": "person", "operator": "icontains", "value": EMAIL_DOMAIN}],
        "rollout_percentage": 100}]})
    assert flag["id"] > max(f["id"] for f in before["flags"])
    assert remote.feature_enabled("created-after-restart", "persist-1") is True
    client = make_client(project)
    client.set(distinct_id="after-restart-person", properties={"email": f"new{EMAIL_DOMAIN}"})
    client.flush()
    client.shutdown()
    assert remote.feature_enabled("created-after-restart", "after-restart-person") is True
