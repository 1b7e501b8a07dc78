"""`GET /flags/definitions/stream` and the OFREP stream through a real SSE client library
(httpx-sse): the full payload on connect, a change made through the management API, a reconnect
with `Last-Event-ID` that gets exactly the missed events, and a too-old id that gets the full
payload again. The server runs with `--stream-replay 8` (scripts/compat.sh)."""

from __future__ import annotations

import json
import os
import sys
from typing import Iterator

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from vexil_compat import Management, Project  # noqa: E402

REPLAY = 8  # --stream-replay of the compat server


@pytest.fixture(scope="module")
def project() -> Project:
    return Project.from_env()


@pytest.fixture(scope="module")
def api(project) -> Management:
    return Management(project)


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    # A read timeout well under the 15 s heartbeat: a quiet stream is a ReadTimeout.
    with httpx.Client(timeout=httpx.Timeout(5.0, read=2.0)) as c:
        yield c


def stream_url(project: Project) -> str:
    return f"{project.host}/flags/definitions/stream?token={project.token}"


def auth(project: Project, last_event_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {project.secret_key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return headers


def definitions(project: Project) -> tuple[str, dict]:
    r = httpx.get(
        f"{project.host}/flags/definitions?token={project.token}",
        headers=auth(project),
        timeout=10,
    )
    r.raise_for_status()
    return r.headers["etag"], r.json()


def take(events: Iterator[ServerSentEvent], n: int) -> list[ServerSentEvent]:
    return [next(events) for _ in range(n)]


def assert_quiet(events: Iterator[ServerSentEvent]) -> None:
    with pytest.raises(httpx.ReadTimeout):
        extra = next(events)
        pytest.fail(f"unexpected event {extra.event}: {extra.data}")


def assert_full_payload(event: ServerSentEvent, project: Project) -> None:
    etag, body = definitions(project)
    assert event.event == "definitions"
    data = event.json()
    assert data["etag"] == etag
    assert data["definitions"] == body
    assert event.id == str(data["revision"])


def test_a_change_through_the_management_api_reaches_the_stream(project, api, client):
    with connect_sse(client, "GET", stream_url(project), headers=auth(project)) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.iter_sse()
        first = next(events)
        assert_full_payload(first, project)

        flag = api.create_flag("sse-banner", {"groups": [{"rollout_percentage": 100}]})
        change = next(events)
        assert change.event == "change"
        data = change.json()
        assert (data["type"], data["action"], data["key"], data["id"]) == (
            "flag",
            "created",
            "sse-banner",
            flag["id"],
        )
        etag, body = definitions(project)
        assert data["etag"] == etag
        assert "sse-banner" in [f["key"] for f in body["flags"]]
        assert int(change.id) > int(first.id)


def test_reconnecting_with_last_event_id_gets_exactly_the_missed_events(project, api, client):
    flag = api.create_flag("sse-resume", {"groups": [{"rollout_percentage": 50}]})
    with connect_sse(client, "GET", stream_url(project), headers=auth(project)) as source:
        last_seen = next(source.iter_sse()).id
    # Disconnected: three changes.
    api.patch_flag(flag["id"], active=False)
    other = api.create_flag("sse-resume-2", {"groups": [{"rollout_percentage": 10}]})
    api.patch_flag(other["id"], deleted=True)

    with connect_sse(client, "GET", stream_url(project), headers=auth(project, last_seen)) as source:
        events = source.iter_sse()
        missed = take(events, 3)
        assert [(e.event, e.json()["action"], e.json()["key"]) for e in missed] == [
            ("change", "updated", "sse-resume"),
            ("change", "created", "sse-resume-2"),
            ("change", "deleted", "sse-resume-2"),
        ]
        ids = [int(e.id) for e in missed]
        assert ids == sorted(ids) and ids[0] > int(last_seen)
        assert_quiet(events)


def test_a_last_event_id_older_than_the_replay_window_gets_the_full_payload(project, api, client):
    with connect_sse(client, "GET", stream_url(project), headers=auth(project)) as source:
        too_old = next(source.iter_sse()).id
    flag = api.create_flag("sse-many", {"groups": [{"rollout_percentage": 100}]})
    for i in range(REPLAY):
        api.patch_flag(flag["id"], name=f"change {i}")

    with connect_sse(client, "GET", stream_url(project), headers=auth(project, too_old)) as source:
        events = source.iter_sse()
        assert_full_payload(next(events), project)
        assert_quiet(events)


def test_ofrep_bulk_advertises_a_stream_that_sends_refetch_evaluation(project, api, client):
    r = httpx.post(
        f"{project.host}/ofrep/v1/evaluate/flags",
        headers={"Authorization": f"Bearer {project.token}"},
        json={"context": {"targetingKey": "u1"}},
        timeout=10,
    )
    r.raise_for_status()
    (stream,) = r.json()["eventStreams"]
    assert stream["type"] == "sse"
    url = project.host + stream["endpoint"]["requestUri"]
    with connect_sse(client, "GET", url) as source:
        events = source.iter_sse()
        api.create_flag("sse-ofrep", {"groups": [{"rollout_percentage": 100}]})
        event = next(events)
        assert event.event == "message"
        data = json.loads(event.data)
        assert data["type"] == "refetchEvaluation"
        assert data["etag"] == definitions(project)[0]
        assert isinstance(data["lastModified"], int)
