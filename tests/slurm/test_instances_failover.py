"""Two platform instances (``aif up --sites``) on one PostgreSQL, jobs queued and running on
two real Slurm sites: SIGKILL the instance whose broker leads. The standby, which served the
API all along, takes the lease within two lease periods and goes on from where the dead one
stopped: every job reaches Slurm exactly once (each tag once in squeue), none is lost, and
the books balance (docs/operations.md)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from aifactories.db.lease_models import BROKER_LEASE, LeaseRow
from aifactories.db.models import PlatformMetaRow
from aifactories.executors.base import job_tag
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.sites_file import write_sites_file
from tests.e2e.books import assert_books_balance
from tests.e2e.server import Server
from tests.slurm.platform_on_slurm import FINAL, slurm_jobs

pytestmark = pytest.mark.slow

JOBS = 20
PERIOD_S = 4.0  # short, so that the test waits little; the default is 10 s
RENEW_S = 1.0


@pytest.fixture
def instances(
    tmp_path: Path, database_url: str, slurm_sites: list[SiteLayout]
) -> Iterator[tuple[Server, Server]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several instances share a PostgreSQL database (SQLite: one instance)")
    sites_file = write_sites_file(tmp_path / "sites.yaml", slurm_sites[:2], "cli")
    servers = []
    for name in ("one", "two"):
        home = tmp_path / name
        home.mkdir()
        env = {
            "AIFACTORIES_POLICY": "first_fit",
            "AIFACTORIES_SITE_RETRY_INTERVAL_S": "1",
            "AIFACTORIES_INSTANCE_NAME": name,
            "AIFACTORIES_LEASE_PERIOD_S": str(PERIOD_S),
            "AIFACTORIES_LEASE_RENEW_INTERVAL_S": str(RENEW_S),
        }
        servers.append(Server(home, database_url, extra_env=env))
    one, two = servers
    try:
        one.start("--demo", "--sites", str(sites_file))  # migrates, loads the demo, leads
        two.start("--sites", str(sites_file))  # the same database: stands by
        yield one, two
    finally:
        for server in servers:
            server.stop()


def _lease(server: Server) -> dict[str, Any]:
    lease: dict[str, Any] = httpx.get(f"{server.url}/health", timeout=10).json()["lease"]
    return lease


def _lease_row(database_url: str) -> LeaseRow:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(LeaseRow).where(LeaseRow.name == BROKER_LEASE)).one()
            return LeaseRow(**row._mapping)
    finally:
        engine.dispose()


def _jobs(server: Server, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/jobs", params={"limit": 100}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()
    return jobs


def _wait(what: str, done: Any, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_standby_takes_over_when_the_leader_is_killed(
    instances: tuple[Server, Server],
    database_url: str,
    slurm_cluster: LocalSlurm,
    slurm_sites: list[SiteLayout],
) -> None:
    one, two = instances
    assert _lease(one)["holder"] == _lease(two)["holder"] == "one"
    headers = {"Authorization": f"Bearer {one.token('alice')}"}
    rng = random.Random(11)
    ids = []
    for k in range(JOBS):
        body = {
            "project": "aurora-vision",
            "gpus": rng.choice([1, 2, 4]),
            "time_limit": 600,
            "runtime": rng.randint(3, 8),
            "name": f"failover{k}",
        }
        server = (one, two)[k % 2]  # both instances serve the API
        response = httpx.post(f"{server.url}/jobs", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    # Kill the leader while jobs run at the sites and others still wait.
    _wait(
        "jobs running at both sites",
        lambda: len({j["site_id"] for j in _jobs(two, headers) if j["state"] == "running"}) == 2,
    )
    states = {j["state"] for j in _jobs(two, headers)}
    assert "pending" in states or "submitted" in states, states
    one.kill()
    last = _lease_row(database_url)  # the dead leader's last renewal (it renews no more)
    assert last.holder == "one"

    _wait("the standby to lead", lambda: _lease(two)["holder"] == "two", timeout_s=60)
    taken = _lease_row(database_url)
    assert taken.holder == "two" and taken.epoch == last.epoch + 1
    assert last.renewed_at is not None and taken.acquired_at is not None
    # Both times are the database's clock. The kill came after the last renewal, so this
    # bounds the time from the kill to the takeover by two lease periods.
    assert taken.acquired_at - last.renewed_at <= 2 * PERIOD_S, taken.acquired_at - last.renewed_at

    _wait(
        "every job to end",
        lambda: (
            all(j["state"] in FINAL for j in _jobs(two, headers))
            and len(_jobs(two, headers)) == JOBS
        ),
    )
    jobs = _jobs(two, headers)
    assert {j["state"] for j in jobs} == {"completed"}, [(j["id"], j["reason"]) for j in jobs]

    engine = create_engine(database_url)
    with engine.connect() as conn:
        instance = conn.execute(
            select(PlatformMetaRow.value).where(PlatformMetaRow.key == "instance_id")
        ).scalar_one()
    engine.dispose()
    # Every Slurm job of this platform, started or not, at both sites: one per job.
    tags: dict[str, int] = {}
    for layout in slurm_sites[:2]:
        for job in slurm_jobs(slurm_cluster, layout):
            tag = str(job.get("comment") or "")
            if tag.startswith(f"aif-{instance}-"):
                tags[tag] = tags.get(tag, 0) + 1
    assert tags == {job_tag(i, instance): 1 for i in ids}, tags
    assert_books_balance(database_url)
