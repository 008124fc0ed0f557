"""The broker against scripted site faults (mock sites), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aifactories.db.models import AllocationRow, JobRow, PartitionStatusRow
from aifactories.executors.mock import MockExecutor
from aifactories.services.platform import Platform
from tests.api.harness import Harness, make_harness

ONE_SITE = """
sites:
  - {id: it4lia, name: Leonardo, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 2}]}
  - {id: jaif, name: JUPITER, country: DE, supercomputer: JUPITER, status: operational,
     partitions: [{name: booster, gpu_model: GH200, gpu_memory_gb: 96, gpus_per_node: 4,
                   nodes: 2, billing_weight: 2.0}]}
"""


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(ONE_SITE)
    h = make_harness(
        tmp_path, database_url, catalogue=catalogue, policy="first_fit", site_retry_interval_s=0
    )
    yield h
    h.platform.stop()


def _submit(h: Harness, **fields: Any) -> int:
    body = {
        "project": "aurora-vision",
        "gpus": 4,
        "time_limit": 3600,
        "gpu_model": "A100",
        "command": ["train"],
        **fields,
    }
    response = h.client("alice").post("/jobs", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _job(h: Harness, job_id: int) -> JobRow:
    with h.platform.ctx.reads() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        return row


def _pool(h: Harness) -> AllocationRow:
    with h.platform.ctx.reads() as s:
        return s.execute(select(AllocationRow).where(AllocationRow.project_id == 1)).scalar_one()


def _site(h: Harness, site_id: str) -> MockExecutor:
    site = h.executors[site_id]  # type: ignore[index]
    assert isinstance(site, MockExecutor)
    return site


def test_rejected_submission_fails_the_job_and_releases(harness: Harness) -> None:
    _site(harness, "it4lia").reject_next_submit("Invalid account or account/partition combination")
    job_id = _submit(harness)
    harness.cycle()
    row = _job(harness, job_id)
    assert row.state == "failed"
    assert row.reason is not None and "Invalid account" in row.reason
    assert _pool(harness).reserved_gpu_seconds == 0 and _pool(harness).used_gpu_seconds == 0


def test_lost_submit_reply_is_adopted_not_resubmitted(harness: Harness) -> None:
    site = _site(harness, "it4lia")
    site.lose_next_submit_reply()
    job_id = _submit(harness)
    harness.cycle()
    row = _job(harness, job_id)
    assert row.state == "placed" and row.site_job_id is None  # unknown whether the site has it
    harness.cycle()
    row = _job(harness, job_id)
    assert row.state in ("submitted", "running") and row.site_job_id is not None
    assert len(site.jobs) == 1  # adopted by its tag, never submitted twice


def test_unreachable_submit_then_site_never_got_it_requeues(harness: Harness) -> None:
    site = _site(harness, "it4lia")
    site.unavailable_next_submit()  # the site did not get the job
    job_id = _submit(harness)
    harness.cycle()
    assert _job(harness, job_id).state == "placed"
    harness.cycle()  # reconcile: no job with the tag at the site -> back to the queue
    row = _job(harness, job_id)
    assert row.state in ("pending", "submitted", "running")
    assert row.requeues == 0
    harness.cycle(rounds=2)
    assert _job(harness, job_id).state == "running"
    assert len(site.jobs) == 1
    assert _pool(harness).reserved_gpu_seconds == _job(harness, job_id).reserved_gpu_seconds


def test_unreachable_site_gets_no_new_jobs_until_it_returns(harness: Harness) -> None:
    site = _site(harness, "it4lia")
    site.available = False
    job_id = _submit(harness)
    harness.cycle()
    row = _job(harness, job_id)
    assert row.state == "pending" and row.reason
    with harness.platform.ctx.reads() as s:
        status = s.get(PartitionStatusRow, "it4lia/booster")
        assert status is not None and not status.available
    sites = {s["id"]: s for s in harness.client("alice").get("/sites").json()}
    assert sites["it4lia"]["partitions"][0]["available"] is False
    site.available = True
    harness.cycle(rounds=2)
    assert _job(harness, job_id).state == "running"


def test_job_the_site_forgets_before_start_is_requeued(harness: Harness) -> None:
    site = _site(harness, "it4lia")
    site.auto_start = False
    job_id = _submit(harness)
    harness.cycle()
    row = _job(harness, job_id)
    assert row.state == "submitted" and row.site_job_id is not None
    site.forget(row.site_job_id)
    harness.cycle()
    row = _job(harness, job_id)
    assert row.state in ("pending", "submitted") and row.requeues == 1


def test_running_job_charged_once_across_restarts(harness: Harness) -> None:
    job_id = _submit(harness)
    harness.cycle(rounds=2)
    row = _job(harness, job_id)
    assert row.state == "running" and row.site_job_id
    _site(harness, "it4lia").finish(row.site_job_id, elapsed_s=1800)
    for _ in range(3):  # restart the platform between reconciles: still one charge
        old = harness.platform
        harness.platform = Platform(old.settings, clock=harness.clock, executors=harness.executors)
        old.engine.dispose()
        harness.cycle()
    row = _job(harness, job_id)
    assert row.state == "completed" and row.charged_gpu_seconds == 4 * 1800
    assert _pool(harness).used_gpu_seconds == 4 * 1800


def test_gang_job_takes_whole_nodes_and_waits_for_them(harness: Harness) -> None:
    small = _submit(harness, gpus=1)
    big = _submit(harness, gpus=8)  # both nodes of it4lia
    harness.cycle(rounds=2)
    assert _job(harness, small).state == "running"
    big_row = _job(harness, big)
    assert big_row.state == "pending" and big_row.reason
    site = _site(harness, "it4lia")
    small_row = _job(harness, small)
    assert small_row.site_job_id
    site.finish(small_row.site_job_id, elapsed_s=60)
    harness.cycle(rounds=3)
    big_row = _job(harness, big)
    assert big_row.state == "running"
    assert (big_row.shape_nodes, big_row.shape_gpus_per_node, big_row.shape_exclusive) == (
        2,
        4,
        True,
    )


def test_queued_jobs_leave_an_unreachable_site_and_the_stale_copy_is_cancelled(
    harness: Harness,
) -> None:
    it4lia, jaif = _site(harness, "it4lia"), _site(harness, "jaif")
    it4lia.auto_start = False
    job_id = _submit(harness, gpu_model="any")
    harness.cycle()
    row = _job(harness, job_id)
    assert (row.site_id, row.state) == ("it4lia", "submitted")
    stale_id = row.site_job_id
    assert stale_id is not None
    it4lia.available = False
    harness.cycle()  # unreachable -> moved and placed again at the other site, same cycle
    row = _job(harness, job_id)
    assert row.site_id == "jaif" and row.state in ("submitted", "running")
    assert row.requeues == 0 and row.reason is None
    assert len(jaif.jobs) == 1
    it4lia.available = True
    harness.cycle()
    assert it4lia.jobs[stale_id].status.state.value == "cancelled"  # never runs twice
    assert _pool(harness).reserved_gpu_seconds == _job(harness, job_id).reserved_gpu_seconds


def test_a_job_only_the_dead_site_admits_stays_there(harness: Harness) -> None:
    it4lia = _site(harness, "it4lia")
    it4lia.auto_start = False
    job_id = _submit(harness, gpu_model="A100")
    harness.cycle()
    it4lia.available = False
    harness.cycle(rounds=2)
    row = _job(harness, job_id)
    assert (row.site_id, row.state) == ("it4lia", "submitted")
    it4lia.available = True
    it4lia.start(row.site_job_id)  # type: ignore[arg-type]
    harness.cycle()
    assert _job(harness, job_id).state == "running"


def test_an_unreachable_site_is_left_alone_for_the_retry_interval(
    tmp_path: Path, database_url: str
) -> None:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(ONE_SITE)
    h = make_harness(
        tmp_path, database_url, catalogue=catalogue, policy="first_fit", site_retry_interval_s=30
    )
    try:
        site = _site(h, "it4lia")
        site.available = False
        h.cycle()
        asked = len(site.calls)
        assert asked > 0
        h.clock.advance(10)
        site.available = True
        report = h.platform.broker.run_once()
        assert len(site.calls) == asked and "it4lia" in report.unreachable_sites
        h.clock.advance(25)
        report = h.platform.broker.run_once()
        assert len(site.calls) > asked and "it4lia" not in report.unreachable_sites
    finally:
        h.platform.stop()
