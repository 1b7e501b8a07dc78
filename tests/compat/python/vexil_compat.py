"""Shared helpers of the compatibility suites: environment, the management API, PostHog's hash, and
a recording proxy that shows what an SDK really sends and receives."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import requests


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests through scripts/compat.sh")
    return value


@dataclass(frozen=True)
class Project:
    """One project of the live server and its three keys."""

    host: str
    id: int
    token: str  # phc_: public, for /flags and capture
    secret_key: str  # phs_: local evaluation only
    personal_key: str  # phx_: management API and local evaluation

    @staticmethod
    def from_env() -> "Project":
        return Project(
            host=env("VEXIL_HOST").rstrip("/"),
            id=int(env("VEXIL_PROJECT_ID")),
            token=env("VEXIL_TOKEN"),
            secret_key=env("VEXIL_SECRET_KEY"),
            personal_key=env("VEXIL_PERSONAL_KEY"),
        )


class ApiError(AssertionError):
    pass


class Management:
    """The PostHog-compatible management API (`/api/projects/@current/…`), as a script would call it."""

    def __init__(self, project: Project):
        self.project = project
        self.base = f"{project.host}/api/projects/@current"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {project.personal_key}"

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kw) -> Any:
        url = path if path.startswith("http") else f"{self.base}/{path.lstrip('/')}"
        r = self.session.request(method, url, timeout=10, **kw)
        if r.status_code not in expect:
            raise ApiError(f"{method} {url} -> {r.status_code}: {r.text[:2000]}")
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # flags
    def create_flag(self, key: str, filters: dict, name: str = "", **fields) -> dict:
        body = {"key": key, "name": name or key, "filters": filters, **fields}
        return self.call("POST", "feature_flags/", json=body)

    def patch_flag(self, flag_id: int, **fields) -> dict:
        return self.call("PATCH", f"feature_flags/{flag_id}/", json=fields)

    def get_flag(self, flag_id: int) -> dict:
        return self.call("GET", f"feature_flags/{flag_id}/")

    def list_flags(self) -> list[dict]:
        out, url = [], "feature_flags/?limit=100"
        while url:
            page = self.call("GET", url)
            out.extend(page["results"])
            url = page.get("next")
        return out

    # cohorts
    def create_cohort(self, name: str, filters: dict) -> dict:
        return self.call("POST", "cohorts/", json={"name": name, "filters": filters})

    def create_static_cohort(self, name: str, distinct_ids: list[str]) -> dict:
        """A static cohort with members, uploaded as PostHog's UI does: multipart, field `csv`."""
        csv = "distinct_id\n" + "".join(f"{d}\n" for d in distinct_ids)
        return self.call(
            "POST",
            "cohorts/",
            data={"name": name, "is_static": "true"},
            files={"csv": ("members.csv", csv.encode(), "text/csv")},
        )

    def get_cohort(self, cohort_id: int) -> dict:
        return self.call("GET", f"cohorts/{cohort_id}/")

    def cohort_members(self, cohort_id: int) -> list[dict]:
        out, url = [], f"cohorts/{cohort_id}/persons/"
        while url:
            page = self.call("GET", url)
            out.extend(page["results"])
            url = page.get("next")
        return out

    # persons
    def person(self, distinct_id: str) -> dict | None:
        page = self.call("GET", "persons/", params={"distinct_id": distinct_id})
        results = page["results"]
        return results[0] if results else None


def wait_until(check: Callable[[], Any], what: str, timeout: float = 10.0, interval: float = 0.1):
    """Polls `check` until it returns a truthy value; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = check()
            if last:
                return last
        except AssertionError as e:  # keep polling on assertion failures, report the last one
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# PostHog's bucketing (spec §4): an independent implementation to check the server's answers.
LONG_SCALE = float(0xFFFFFFFFFFFFFFF)


def hash01(key: str, distinct_id: str, salt: str = "") -> float:
    digest = hashlib.sha1(f"{key}.{distinct_id}{salt}".encode("utf-8")).hexdigest()
    return int(digest[:15], 16) / LONG_SCALE


def in_rollout(key: str, distinct_id: str, percentage: float) -> bool:
    return hash01(key, distinct_id) <= percentage / 100


def variant_for(key: str, distinct_id: str, variants: list[dict]) -> str | None:
    h = hash01(key, distinct_id, salt="variant")
    low = 0.0
    for v in variants:
        high = low + v["rollout_percentage"] / 100
        if low <= h < high:
            return v["key"]
        low = high
    return None


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    request_headers: dict
    request_body: bytes
    response_headers: dict
    response_body: bytes


class RecordingProxy:
    """A tiny reverse proxy in front of the live server that records every exchange, so a test can
    see what an SDK really sent (path, headers such as If-None-Match) and what it got (e.g. 304)."""

    def __init__(self, upstream: str):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=15)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    resp_headers = dict(resp.getheaders())
                finally:
                    conn.close()
                with proxy._lock:
                    proxy.exchanges.append(
                        Exchange(self.command, self.path, resp.status, dict(self.headers), body, resp_headers, data)
                    )
                self.send_response(resp.status)
                for k, v in resp_headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def matching(self, path_prefix: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.path.startswith(path_prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def definitions(project: Project, credential: str | None = None, etag: str | None = None):
    """GET /flags/definitions directly, as the SDKs do."""
    headers = {}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    if etag:
        headers["If-None-Match"] = etag
    return requests.get(
        f"{project.host}/flags/definitions",
        params={"token": project.token, "send_cohorts": ""},
        headers=headers,
        timeout=10,
    )


def flags_v2(project: Project, body: dict) -> dict:
    """POST /flags?v=2 directly (the wire answer the SDKs read)."""
    r = requests.post(f"{project.host}/flags/?v=2", json={"token": project.token, **body}, timeout=10)
    assert r.status_code == 200, f"/flags -> {r.status_code}: {r.text}"
    return r.json()


def dump(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)
