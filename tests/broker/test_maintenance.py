"""A partition a site operator takes down for maintenance gets no new job, says why, and is
used again once it is back up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactories.services.core.auth import authenticate
from aifactories.services.jobs.sites import list_sites
from aifactories.services.sites.partition_state import set_partition_down
from tests.api.harness import Harness, make_harness

PARTITION = "it4lia/booster"


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def _status(h: Harness) -> tuple[bool, str | None]:
    for view in list_sites(h.platform.ctx):
        for partition in view.partitions:
            if partition.id == PARTITION:
                return partition.available, partition.status_reason
    raise AssertionError(f"{PARTITION} is not in the catalogue")


def test_no_job_is_placed_on_a_partition_down_for_maintenance(h: Harness) -> None:
    ctx = h.platform.ctx
    sam = authenticate(ctx, h.tokens["sam"])
    set_partition_down(ctx, sam, PARTITION, True, "firmware upgrade")
    body = {
        "project": "aurora-vision",
        "gpus": 1,
        "time_limit": 600,
        "command": ["true"],
        "options": ["--partition", PARTITION],
    }
    alice = h.client("alice")
    job = alice.post("/jobs", json=body)
    assert job.status_code == 201, job.text
    h.cycle(2)
    waiting = alice.get(f"/jobs/{job.json()['id']}").json()
    assert waiting["state"] == "pending" and waiting["site_id"] is None
    assert _status(h) == (False, "down for maintenance")

    set_partition_down(ctx, sam, PARTITION, False, "upgraded")
    h.cycle(2)
    placed = alice.get(f"/jobs/{job.json()['id']}").json()
    assert placed["partition_id"] == PARTITION, placed
    assert _status(h) == (True, None)
