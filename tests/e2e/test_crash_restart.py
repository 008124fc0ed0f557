"""SIGKILL the running platform while jobs are placed and running on emulated sites, restart
it, and require that every job ends with exactly one run and that the books balance."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.books import assert_books_balance
from tests.e2e.server import Server

pytestmark = pytest.mark.slow

# Small sites, so that jobs queue, wait and get placed while the platform dies.
CATALOGUE = """
sites:
  - {id: it4lia, name: Leonardo, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 2}]}
  - {id: jaif, name: JUPITER, country: DE, supercomputer: JUPITER, status: operational,
     partitions: [{name: booster, gpu_model: GH200, gpu_memory_gb: 96, gpus_per_node: 4,
                   nodes: 2, billing_weight: 2.2}]}
"""
JOBS = 24
FINAL = {"completed", "failed", "cancelled", "timeout"}


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE)
    srv = Server(
        tmp_path,
        database_url,
        extra_env={
            "AIFACTORIES_CATALOGUE": str(tmp_path / "catalogue.yaml"),
            "AIFACTORIES_EMULATED_TIME_FACTOR": "600",
        },
    )
    srv.start("--demo")
    yield srv
    srv.stop()


def _runs_per_job(home: Path) -> dict[str, int]:
    """Starts recorded by the emulated sites themselves, by job tag."""
    counts: dict[str, int] = {}
    for log in (home / "data" / "sites").glob("*/runs.log"):
        for line in log.read_text().splitlines():
            fields = line.split("\t")
            tag = next(f for f in fields if f.startswith("aif-"))
            job = f"aif-{tag.rsplit('-', 1)[1]}"  # tags carry the platform's instance id
            counts[job] = counts.get(job, 0) + 1
    return counts


def test_sigkill_while_placing_and_running(server: Server) -> None:
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    ids = []
    for _ in range(JOBS):
        body = {
            "project": "aurora-vision",
            "gpus": rng.choice([1, 2, 4, 8]),
            "time_limit": 3600,
            "runtime": rng.randint(600, 2400),
        }  # 1-4 s real
        response = httpx.post(f"{server.url}/jobs", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    for _crash in range(3):
        time.sleep(rng.uniform(0.5, 1.5))
        server.kill()
        server.start()  # no --demo: the same database, catalogue and sites

    deadline = time.monotonic() + 120
    while True:
        jobs = httpx.get(
            f"{server.url}/jobs", params={"limit": 100}, headers=headers, timeout=10
        ).json()
        if all(j["state"] in FINAL for j in jobs) and len(jobs) == JOBS:
            break
        assert time.monotonic() < deadline, [(j["id"], j["state"]) for j in jobs]
        time.sleep(0.5)

    assert {j["state"] for j in jobs} == {"completed"}, [
        (j["id"], j["state"], j["reason"]) for j in jobs
    ]
    runs = _runs_per_job(server.home)
    assert {f"aif-{i}": 1 for i in ids} == runs  # exactly one run each, nothing else ran

    assert_books_balance(server.database_url)
