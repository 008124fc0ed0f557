"""SIGKILL the whole platform (``aif up --sites``) at random points while it places jobs on
real Slurm sites; after each restart it adopts what Slurm has by tag. Every job runs once."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from aifactories.db.models import PlatformMetaRow
from aifactories.executors.base import job_tag
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.sites_file import write_sites_file
from tests.e2e.books import assert_books_balance
from tests.e2e.server import Server
from tests.slurm.platform_on_slurm import FINAL, runs_by_tag

JOBS = 16


@pytest.fixture
def server(tmp_path: Path, database_url: str, slurm_sites: list[SiteLayout]) -> Iterator[Server]:
    sites_file = write_sites_file(tmp_path / "sites.yaml", slurm_sites, "cli")
    srv = Server(
        tmp_path,
        database_url,
        extra_env={"AIFACTORIES_POLICY": "first_fit", "AIFACTORIES_SITE_RETRY_INTERVAL_S": "1"},
    )
    srv.start("--demo", "--sites", str(sites_file))
    yield srv
    srv.stop()


def test_sigkill_while_placing_on_slurm(
    server: Server, slurm_cluster: LocalSlurm, slurm_sites: list[SiteLayout]
) -> None:
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    ids = []
    for k in range(JOBS):
        body = {
            "project": "aurora-vision",
            "gpus": rng.choice([1, 2, 4, 8]),
            "time_limit": 600,
            "runtime": rng.randint(1, 4),
            "name": f"crash{k}",
        }
        response = httpx.post(f"{server.url}/jobs", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    for _crash in range(3):
        time.sleep(rng.uniform(0.3, 1.5))
        server.kill()
        server.start("--sites", str(server.home / "sites.yaml"))

    deadline = time.monotonic() + 180
    while True:
        jobs = httpx.get(
            f"{server.url}/jobs", params={"limit": 100}, headers=headers, timeout=10
        ).json()
        if len(jobs) == JOBS and all(j["state"] in FINAL for j in jobs):
            break
        assert time.monotonic() < deadline, [(j["id"], j["state"]) for j in jobs]
        time.sleep(0.5)
    assert {j["state"] for j in jobs} == {"completed"}, [(j["id"], j["reason"]) for j in jobs]
    runs = runs_by_tag(slurm_cluster, slurm_sites)
    engine = create_engine(server.database_url)
    with engine.connect() as conn:
        instance = conn.execute(
            select(PlatformMetaRow.value).where(PlatformMetaRow.key == "instance_id")
        ).scalar_one()
    assert all(runs.get(job_tag(i, instance)) == 1 for i in ids), runs  # one run each

    engine.dispose()
    assert_books_balance(server.database_url)
