"""Fixtures of the Python compatibility suites: the live project, its management API, SDK clients
and the flag catalog every test evaluates (created once per session through the management API)."""

from __future__ import annotations

import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from posthog import Posthog  # noqa: E402

from catalog import build_catalog  # noqa: E402
from vexil_compat import Management, Project  # noqa: E402


@pytest.fixture(scope="session")
def project() -> Project:
    return Project.from_env()


@pytest.fixture(scope="session")
def api(project) -> Management:
    return Management(project)


def make_client(project: Project, **kw) -> Posthog:
    kw.setdefault("poll_interval", 300)  # tests trigger reloads themselves
    kw.setdefault("feature_flags_request_timeout_seconds", 10)
    kw.setdefault("host", project.host)
    return Posthog(project_api_key=project.token, **kw)


@pytest.fixture(scope="session")
def remote(project):
    """A client without a key: every flag is evaluated by the server (/flags)."""
    client = make_client(project, sync_mode=True)
    yield client
    client.shutdown()


@pytest.fixture(scope="session")
def catalog(project, api):
    # Group types are created by capture, as in PostHog: identify the companies first.
    client = make_client(project, sync_mode=True)
    client.group_identify("company", "acme", {"plan": "enterprise", "name": "Acme"})
    client.group_identify("company", "globex", {"plan": "free", "name": "Globex"})
    client.shutdown()
    return build_catalog(api)


@pytest.fixture(autouse=True)
def no_sdk_errors(request, caplog):
    """The SDK swallows failed requests and only logs them: fail a test that made it log an error,
    unless the test is marked `sdk_errors_expected` (e.g. on purpose with a wrong key)."""
    caplog.set_level(logging.WARNING, logger="posthog")
    yield
    if request.node.get_closest_marker("sdk_errors_expected"):
        return
    errors = [r.getMessage() for r in caplog.get_records("call") + caplog.get_records("teardown")
              if r.name.startswith("posthog") and r.levelno >= logging.ERROR]
    assert not errors, f"the posthog SDK logged errors: {errors}"
