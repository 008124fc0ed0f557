"""GET /jobs/{job}/output and /error: who may read, ranges, tail, follow, array task refs,
retention; in-process on SQLite and PostgreSQL with mock sites (the broker stores the path a
site reports), then against a real platform with emulated sites (a real job's output,
followed while it is written)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from aifactories.db.models import JobRow
from aifactories.domain.ids import SiteId
from aifactories.executors.mock import MockExecutor
from tests.api.harness import Harness, make_harness
from tests.e2e.server import Server

DAY = 86400.0


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, database_url)
    yield h
    h.platform.stop()


def _running_job(h: Harness, user: str = "alice") -> tuple[int, MockExecutor, str]:
    body = {"project": "aurora-vision", "gpus": 1, "time_limit": 3600, "command": ["train"]}
    created = h.client(user).post("/jobs", json=body)
    assert created.status_code == 201, created.text
    job_id = int(created.json()["id"])
    h.cycle(rounds=2)
    job = h.client(user).get(f"/jobs/{job_id}").json()
    assert job["state"] == "running", job
    site = h.executors[SiteId(job["site_id"])]
    assert isinstance(site, MockExecutor)
    return job_id, site, job["site_job_id"]


def _row(h: Harness, job_id: int) -> JobRow:
    with h.platform.ctx.reads() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        return row


def test_members_read_the_output_with_ranges_and_tail(harness: Harness) -> None:
    job_id, site, site_job_id = _running_job(harness)
    site.write_output(site_job_id, b"epoch 1\nepoch 2\nepoch 3\n")
    harness.cycle()  # the broker keeps the path the site now reports
    assert _row(harness, job_id).output_path == f"/mock/{site.site_id}/{site_job_id}.out"

    for user in ("alice", "bob"):  # the PI and a member
        whole = harness.client(user).get(f"/jobs/{job_id}/output")
        assert whole.status_code == 200, whole.text
        assert whole.content == b"epoch 1\nepoch 2\nepoch 3\n"
        assert whole.headers["content-type"] == "text/plain; charset=utf-8"
        assert whole.headers["x-job-state"] == "running"

    alice = harness.client("alice")
    part = alice.get(f"/jobs/{job_id}/output", headers={"Range": "bytes=8-14"})
    assert part.status_code == 206 and part.content == b"epoch 2"
    assert part.headers["content-range"] == "bytes 8-14/24"
    rest = alice.get(f"/jobs/{job_id}/output", headers={"Range": "bytes=16-"})
    assert rest.status_code == 206 and rest.content == b"epoch 3\n"
    last = alice.get(f"/jobs/{job_id}/output", headers={"Range": "bytes=-3"})
    assert last.status_code == 206 and last.content == b" 3\n"
    past = alice.get(f"/jobs/{job_id}/output", headers={"Range": "bytes=24-"})
    assert past.status_code == 416 and past.headers["content-range"] == "bytes */24"
    ignored = alice.get(f"/jobs/{job_id}/output", headers={"Range": "lines=1-2"})
    assert ignored.status_code == 200 and len(ignored.content) == 24

    shared = alice.get(f"/jobs/{job_id}/error")  # no --error: it goes with the output
    assert shared.status_code == 404 and "no separate standard error" in shared.json()["message"]
    assert alice.get(f"/jobs/{job_id}/output?tail=2").content == b"epoch 2\nepoch 3\n"
    assert alice.get(f"/jobs/{job_id}/output?tail=0").content == b""
    assert alice.get(f"/jobs/{job_id}/output?tail=99").content.startswith(b"epoch 1")


def test_only_the_jobs_project_reads_its_output(harness: Harness) -> None:
    job_id, site, site_job_id = _running_job(harness)
    site.write_output(site_job_id, b"private results\n")
    other = harness.client("carol").get(f"/jobs/{job_id}/output")  # PI of another project
    assert other.status_code == 404 and b"private" not in other.content
    assert other.json()["message"].startswith(f"job {job_id} does not exist")
    operator = harness.client("oscar").get(f"/jobs/{job_id}/output")  # sees the job, not this
    assert operator.status_code == 403 and "only members" in operator.json()["message"]
    assert harness.client(None).get(f"/jobs/{job_id}/output").status_code == 401
    missing = harness.client("alice").get("/jobs/999999/output")
    assert missing.status_code == 404


def test_no_output_yet_then_the_error_stream_and_a_finished_job(harness: Harness) -> None:
    alice = harness.client("alice")
    body = {"project": "aurora-vision", "gpus": 1, "time_limit": 60, "command": ["x"]}
    pending = alice.post("/jobs", json=body).json()["id"]
    answer = alice.get(f"/jobs/{pending}/output")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["x-job-state"] == "pending"

    job_id, site, site_job_id = _running_job(harness)
    site.write_output(site_job_id, b"oops\n", stream="error")
    site.finish(site_job_id, elapsed_s=60)
    harness.cycle()
    assert _row(harness, job_id).error_path is not None
    error = alice.get(f"/jobs/{job_id}/error")
    assert error.status_code == 200 and error.content == b"oops\n"
    assert error.headers["x-job-state"] == "completed"
    # ended, and wrote no standard output at all
    none = alice.get(f"/jobs/{job_id}/output")
    assert none.status_code == 404 and none.json()["error"] == "no_output"
    assert "without a standard output file" in none.json()["message"]


def test_follow_on_an_ended_job_sends_everything_and_ends(harness: Harness) -> None:
    job_id, site, site_job_id = _running_job(harness)
    site.write_output(site_job_id, b"a\n" * 100_000)
    site.finish(site_job_id, elapsed_s=10)
    harness.cycle()
    followed = harness.client("alice").get(f"/jobs/{job_id}/output?follow=true")
    assert followed.status_code == 200 and followed.content == b"a\n" * 100_000
    tail = harness.client("alice").get(f"/jobs/{job_id}/output?follow=true&tail=1")
    assert tail.content == b"a\n"


def test_array_task_refs(harness: Harness) -> None:
    job_id, site, site_job_id = _running_job(harness)
    site.write_output(site_job_id, b"task 4\n")
    with harness.platform.ctx.sessions() as session, session.begin():
        session.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(array_job_id=job_id + 1000, array_task_id=4)
        )
    alice = harness.client("alice")
    assert alice.get(f"/jobs/{job_id + 1000}_4/output").content == b"task 4\n"
    assert alice.get(f"/jobs/{job_id}/output").content == b"task 4\n"  # its own id too
    assert alice.get(f"/jobs/{job_id + 1000}_5/output").status_code == 404
    assert alice.get("/jobs/12_x/output").status_code == 422
    assert alice.get("/jobs/99999999999/output").status_code == 422  # past 32 bits


def test_output_expires_after_the_retention(tmp_path: Path, database_url: str) -> None:
    h = make_harness(tmp_path, database_url, job_output_retention_s=2 * DAY)
    try:
        job_id, site, site_job_id = _running_job(h)
        site.write_output(site_job_id, b"kept\n")
        site.finish(site_job_id, elapsed_s=10)
        h.cycle()
        h.clock.advance(DAY)
        assert h.client("alice").get(f"/jobs/{job_id}/output").content == b"kept\n"
        h.clock.advance(1.5 * DAY)
        gone = h.client("alice").get(f"/jobs/{job_id}/output")
        assert gone.status_code == 410 and gone.json()["error"] == "output_expired"
        assert "2 days" in gone.json()["message"]
    finally:
        h.platform.stop()


# ------------------------------------------------------------ a real platform, real jobs


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("served")
    srv = Server(home, f"sqlite:///{home / 'aif.db'}")
    srv.start("--demo")
    yield srv
    srv.stop()


def _submit(srv: Server, command: list[str]) -> int:
    headers = {"Authorization": f"Bearer {srv.token('alice')}"}
    body = {"project": "aurora-vision", "gpus": 1, "time_limit": 600, "command": command}
    created = httpx.post(f"{srv.url}/jobs", json=body, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


@pytest.mark.slow
def test_following_a_real_job_streams_its_lines_as_they_come(served: Server) -> None:
    """The job prints its folder, then a line at a time, each after the follower has shown
    it has seen the one before (a file in the job's folder): all lines can only arrive if
    the stream delivers them while the job runs. Then the stream ends by itself."""
    lines = 5
    script = (
        'echo "home $HOME"; '
        f'for i in $(seq 1 {lines}); do echo "line $i"; '
        'while [ ! -e "$HOME/seen-$i" ]; do sleep 0.05; done; done'
    )
    job_id = _submit(served, ["sh", "-c", script])
    headers = {"Authorization": f"Bearer {served.token('alice')}"}
    received = b""
    with httpx.stream(
        "GET", f"{served.url}/jobs/{job_id}/output?follow=true", headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
            first, _, rest = received.partition(b"\n")
            if not first.startswith(b"home "):
                continue
            home = Path(first[5:].decode())
            for i in range(1, lines + 1):
                if f"line {i}\n".encode() in rest:
                    (home / f"seen-{i}").touch()
    expected = b"".join(f"line {i}\n".encode() for i in range(1, lines + 1))
    assert received.endswith(expected) and received.startswith(b"home /")
    # the same output again, once the job has ended: the last two lines
    again = httpx.get(f"{served.url}/jobs/{job_id}/output?tail=2", headers=headers, timeout=30)
    assert again.content == b"line 4\nline 5\n"
