"""Idempotency keys: a creation retried with its key after a lost reply creates nothing new
and answers with the first object; the key with another request is refused; two concurrent
requests with one key make one object. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from aifactories.api.app import create_app
from aifactories.cli.client import Client
from aifactories.cli.config import Profile
from aifactories.db.models import ApiTokenRow, JobRow
from aifactories.db.programme_models import AllocationRequestRow, CallRow, ProposalRow
from aifactories.db.security_models import IdempotencyKeyRow
from aifactories.services.core import idempotency
from aifactories.services.core.auth import authenticate
from aifactories.services.jobs import job_queries
from aifactories.services.jobs import jobs as job_service
from tests.api.harness import Harness, make_harness
from tests.api.programme_helpers import open_call, proposal_body
from tests.api.served import served

JOB = {"project": "aurora-vision", "gpus": 1, "time_limit": 3600, "command": ["train.py"]}


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, database_url)
    yield h
    h.platform.stop()


def _count(h: Harness, model: Any) -> int:
    with h.platform.ctx.reads() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_retried_submission_gets_the_same_job(harness: Harness) -> None:
    alice = harness.client("alice")
    headers = {"Idempotency-Key": "5b0e7f2c-retry-after-a-lost-reply"}
    first = alice.post("/jobs", json=JOB, headers=headers)
    assert first.status_code == 201, first.text
    before = _count(harness, JobRow)
    harness.clock.advance(30)  # the client waited, then sent it again
    again = alice.post("/jobs", json=JOB, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert _count(harness, JobRow) == before
    # without a key, the same body is a new job, as always
    assert alice.post("/jobs", json=JOB).json()["id"] != first.json()["id"]


def test_a_key_reused_for_another_request_is_refused(harness: Harness) -> None:
    alice = harness.client("alice")
    headers = {"Idempotency-Key": "k-1"}
    assert alice.post("/jobs", json=JOB, headers=headers).status_code == 201
    before = _count(harness, JobRow)
    other = alice.post("/jobs", json={**JOB, "gpus": 2}, headers=headers)
    assert other.status_code == 422
    body = other.json()
    assert body["field"] == "Idempotency-Key" and "another request" in body["message"]
    # the same key for another operation is refused just the same
    token = alice.post("/tokens", json={"label": "x"}, headers=headers)
    assert token.status_code == 422
    assert _count(harness, JobRow) == before


def test_keys_belong_to_their_user(harness: Harness) -> None:
    headers = {"Idempotency-Key": "shared-by-chance"}
    alice = harness.client("alice").post("/jobs", json=JOB, headers=headers).json()
    bob = harness.client("bob").post("/jobs", json=JOB, headers=headers).json()
    assert alice["id"] != bob["id"] and bob["user_id"] != alice["user_id"]


def test_concurrent_requests_with_one_key_make_one_job(harness: Harness) -> None:
    ctx = harness.platform.ctx
    alice = authenticate(ctx, harness.tokens["alice"])
    request = job_service.JobRequest(**JOB)
    before = _count(harness, JobRow)
    barrier = threading.Barrier(6)
    ids: list[int] = []
    failures: list[BaseException] = []

    def submit() -> None:
        barrier.wait()
        try:
            ids.append(job_service.submit_job(ctx, alice, request, "one-key").id)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(set(ids)) == 1 and len(ids) == 6
    assert _count(harness, JobRow) == before + 1


def test_the_loser_of_a_race_rolls_back_its_object(harness: Harness) -> None:
    """The race made deterministic: a second request that passed the look-up before the
    first committed. Its insert of the key fails and takes its job with it."""
    ctx = harness.platform.ctx
    alice = authenticate(ctx, harness.tokens["alice"])
    request = job_service.JobRequest(**JOB)
    first = job_service.submit_job(ctx, alice, request, "raced")
    before = _count(harness, JobRow)
    once = idempotency.once(alice, "raced", "jobs.submit", request)
    with pytest.raises(IntegrityError):
        job_service._submit_job(ctx, alice, request, once)
    assert _count(harness, JobRow) == before
    # and through replaying(), the loser answers with the winner's job
    replayed = idempotency.replaying(
        ctx,
        once,
        lambda: job_service._submit_job(ctx, alice, request, once),
        lambda job_id: job_queries.get_job(ctx, alice, job_id),
    )
    assert replayed.id == first.id


def test_keys_are_kept_for_the_stated_time_then_swept(harness: Harness) -> None:
    alice = harness.client("alice")
    headers = {"Idempotency-Key": "old"}
    first = alice.post("/jobs", json=JOB, headers=headers).json()
    keep_s = harness.platform.settings.idempotency_keep_hours * 3600
    harness.clock.advance(keep_s - 60)
    assert alice.post("/jobs", json=JOB, headers=headers).json()["id"] == first["id"]
    harness.clock.advance(120)
    assert idempotency.sweep(harness.platform.ctx) == 1
    assert _count(harness, IdempotencyKeyRow) == 0
    # past its time the key is free again: the same request is a new job
    assert alice.post("/jobs", json=JOB, headers=headers).json()["id"] != first["id"]


def test_an_unusable_key_is_refused(harness: Harness) -> None:
    alice = harness.client("alice")
    response = alice.post("/jobs", json=JOB, headers={"Idempotency-Key": "x" * 256})
    assert response.status_code == 422
    assert _count(harness, JobRow) == 0


def _twice(h: Harness, user: str, path: str, body: dict[str, Any], key: str) -> Any:
    client = h.client(user)
    first = client.post(path, json=body, headers={"Idempotency-Key": key})
    assert first.status_code in (200, 201), first.text
    again = client.post(path, json=body, headers={"Idempotency-Key": key})
    assert again.status_code == first.status_code, again.text
    return first.json(), again.json()


def test_the_other_creations_are_made_once(harness: Harness) -> None:
    h = harness
    now = h.clock.now()
    call = {
        "code": "fl-once",
        "title": "Fast Lane, once",
        "mode": "fast_lane",
        "closes_at": now + 60 * 86400,
        "budget_gpu_hours": {"pool": 100_000.0},
    }
    first, again = _twice(h, "oscar", "/calls", call, "call-1")
    assert first["id"] == again["id"] and _count(h, CallRow) == 1

    first, again = _twice(h, "alice", "/calls/fl-once/proposals", proposal_body(), "draft-1")
    assert first["id"] == again["id"] and _count(h, ProposalRow) == 1

    first, again = _twice(h, "alice", "/tokens", {"label": "ci"}, "token-1")
    assert first["id"] == again["id"]
    assert first["token"].startswith("aif_") and again["token"] is None  # shown once only
    with h.platform.ctx.reads() as session:
        assert session.scalar(select(func.count()).where(ApiTokenRow.label == "ci")) == 1

    member = {"username": "carol", "role": "member"}
    first, again = _twice(h, "alice", "/projects/aurora-vision/members", member, "member-1")
    assert first == again  # the project as the first request left it, not a 409

    allocations = h.client("alice").get("/projects/aurora-vision/allocations").json()
    ask = {
        "kind": "extension",
        "gpu_hours": 100,
        "until": "2027-06-30",
        "justification": "the customer pilot was extended by six months",
    }
    path = f"/allocations/{allocations[0]['id']}/requests"
    first, again = _twice(h, "alice", path, ask, "ask-1")
    assert first["id"] == again["id"] and _count(h, AllocationRequestRow) == 1


def test_open_call_helper_still_works_without_a_key(harness: Harness) -> None:
    assert open_call(harness, "plain", "fast_lane")["code"] == "plain"


class _LoseFirstReply(httpx.BaseTransport):
    """Between the CLI's client and the real server: the first request reaches the server,
    its reply is lost on the way back (as when a connection drops)."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        response = self.real.handle_request(request)
        if len(self.keys) == 1:
            response.read()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_the_cli_client_retries_a_lost_reply_with_its_key(harness: Harness) -> None:
    app = create_app(harness.platform.settings, platform=harness.platform)
    with served(app) as url:
        lossy = _LoseFirstReply()
        client = Client(Profile(server=url, token=harness.tokens["alice"]), transport=lossy)
        job = client.post("/jobs", json=JOB, idempotent=True)
        assert len(lossy.keys) == 2 and lossy.keys[0] is not None
        assert lossy.keys[0] == lossy.keys[1]  # the retry re-sent the same key
        assert _count(harness, JobRow) == 1
        # another invocation is another submission, with a fresh key
        fresh = _LoseFirstReply()
        client = Client(Profile(server=url, token=harness.tokens["alice"]), transport=fresh)
        second = client.post("/jobs", json=JOB, idempotent=True)
        assert fresh.keys[0] != lossy.keys[0] and second["id"] != job["id"]
        assert _count(harness, JobRow) == 2
