"""The API's limits: request bodies over the limit get 413 without being read; failed
authentications per client address and requests per token get 429 with Retry-After."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aifactories.api.app import create_app
from aifactories.api.limits import RateLimits
from tests.api.harness import Harness, make_harness

LIMIT = 64 * 1024
CHUNK = 16 * 1024
JOB = {"project": "aurora-vision", "gpus": 1, "time_limit": 3600, "command": ["true"]}


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    h = make_harness(
        tmp_path,
        database_url,
        max_body_bytes=LIMIT,
        auth_failures_per_minute=5,
        token_requests_per_minute=30,
    )
    yield h
    h.platform.stop()


def _error_body(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code and body["message"]
    assert {"error", "message"} <= set(body) <= {"error", "message", "field", "limit"}
    return body


class _Client:
    """Drives the real application at the ASGI level, as a server would: the body arrives in
    chunks, and we count how many the application asked for."""

    def __init__(self, app: FastAPI, token: str) -> None:
        self.app = app
        self.token = token
        self.chunks_read = 0
        self.sent: list[dict[str, Any]] = []

    async def post(self, headers: list[tuple[bytes, bytes]], chunks: int) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/jobs",
            "raw_path": b"/jobs",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"authorization", f"Bearer {self.token}".encode()),
                (b"content-type", b"application/json"),
                *headers,
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            if self.chunks_read >= chunks:
                return {"type": "http.disconnect"}
            self.chunks_read += 1
            more = self.chunks_read < chunks
            return {"type": "http.request", "body": b" " * CHUNK, "more_body": more}

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        await self.app(scope, receive, send)

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def body(self) -> dict[str, Any]:
        data = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        result: dict[str, Any] = json.loads(data)
        return result


def test_a_declared_large_body_is_refused_before_reading(harness: Harness) -> None:
    app = create_app(harness.platform.settings, platform=harness.platform)
    client = _Client(app, harness.tokens["alice"])
    size = 200 * 1024 * 1024  # the 200 MB body of the report
    anyio.run(client.post, [(b"content-length", str(size).encode())], size // CHUNK)
    assert client.status == 413
    assert client.chunks_read == 0  # not one byte read
    assert client.body["error"] == "body_too_large"
    assert client.body["limit"] == f"at most {LIMIT} bytes"


def test_a_chunked_body_is_counted_and_refused_at_the_limit(harness: Harness) -> None:
    app = create_app(harness.platform.settings, platform=harness.platform)
    client = _Client(app, harness.tokens["alice"])
    total_chunks = 200 * 1024 * 1024 // CHUNK  # 200 MB offered, with no Content-Length
    anyio.run(client.post, [(b"transfer-encoding", b"chunked")], total_chunks)
    assert client.status == 413
    # read up to the limit and one chunk past it, never the rest
    assert client.chunks_read == LIMIT // CHUNK + 1
    assert client.body["error"] == "body_too_large"
    # the application's own answer to the cut-off body was dropped: one response only
    assert sum(1 for m in client.sent if m["type"] == "http.response.start") == 1


def test_a_body_under_the_limit_goes_through(harness: Harness) -> None:
    alice = harness.client("alice")
    script = "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --time=1:00:00\n" + "# pad\n" * 9000
    assert LIMIT // 2 < len(script) < LIMIT - 1000
    response = alice.post("/jobs", json={"project": "aurora-vision", "script": script})
    assert response.status_code == 201, response.text
    too_big = alice.post(
        "/jobs", json={"project": "aurora-vision", "script": script + "# pad\n" * 6000}
    )
    body = _error_body(too_big, 413, "body_too_large")
    assert body["field"] == "body"


def _frozen(h: Harness, user: str | None) -> TestClient:
    """A client of an app whose rate limiters' clock stands still: no bucket refills while
    the test runs, however slow the machine."""
    app = create_app(h.platform.settings, platform=h.platform)
    app.state.rate_limits = RateLimits.of(h.platform.settings, now=lambda: 1000.0)
    client = TestClient(app)
    if user is not None:
        client.headers["Authorization"] = f"Bearer {h.tokens[user]}"
    return client


def test_failed_authentications_from_one_address_get_429(harness: Harness) -> None:
    stranger = _frozen(harness, None)
    stranger.headers["Authorization"] = "Bearer aif_not-a-token"
    for _ in range(5):
        _error_body(stranger.get("/me"), 401, "authentication_required")
    limited = stranger.get("/me")
    _error_body(limited, 429, "rate_limited")
    # 5 a minute: the next attempt is allowed 12 s later
    assert limited.headers["Retry-After"] == "12"
    # no token at all is a failed authentication too, and is refused the same way
    del stranger.headers["Authorization"]
    _error_body(stranger.get("/me"), 429, "rate_limited")


def test_a_token_in_use_is_not_locked_out_by_failures_from_its_address(
    harness: Harness,
) -> None:
    alice = _frozen(harness, "alice")
    assert alice.get("/me").status_code == 200  # authenticated (and cached) first
    alice.headers["Authorization"] = "Bearer aif_wrong"
    for _ in range(6):
        alice.get("/me")
    alice.headers["Authorization"] = f"Bearer {harness.tokens['alice']}"
    assert alice.get("/me").status_code == 200


def test_requests_per_token_get_429_then_others_are_unaffected(harness: Harness) -> None:
    alice = _frozen(harness, "alice")
    for _ in range(30):
        assert alice.get("/me").status_code == 200
    limited = alice.post("/jobs", json=JOB)
    _error_body(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == "2"  # 30 a minute: one more in 2 s
    # the limit is per token: bob's requests from the same client still go through
    alice.headers["Authorization"] = f"Bearer {harness.tokens['bob']}"
    assert alice.get("/me").status_code == 200


def test_the_limits_are_documented_in_openapi(harness: Harness) -> None:
    spec = harness.client(None).get("/openapi.json").json()
    submit = spec["paths"]["/jobs"]["post"]
    assert {"413", "429"} <= set(submit["responses"])
    headers = [p["name"] for p in submit["parameters"] if p["in"] == "header"]
    assert "Idempotency-Key" in headers
