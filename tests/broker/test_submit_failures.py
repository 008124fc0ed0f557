"""A submission that fails for one job fails that job only; only a site's own failure makes
the site unavailable; sites are submitted to in parallel (issue 11).

The jobs are written to the database directly where their data would not pass the API's
checks: the broker and the executors must cope with whatever the database holds.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from aifactories.broker import apply
from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow, PartitionStatusRow
from aifactories.domain.clock import ManualClock
from aifactories.domain.errors import SiteUnavailable
from aifactories.domain.logthrottle import LogThrottle
from aifactories.domain.sites import Site
from aifactories.executors import _launch
from aifactories.executors.base import Executor, SubmitRequest, job_tag
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.mock import MockExecutor
from tests.api.harness import Harness, make_harness

TWO_SITES = """
sites:
  - {id: it4lia, name: Leonardo, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 2}]}
  - {id: jaif, name: JUPITER, country: DE, supercomputer: JUPITER, status: operational,
     partitions: [{name: booster, gpu_model: GH200, gpu_memory_gb: 96, gpus_per_node: 4,
                   nodes: 2}]}
"""
THREE_SITES = (
    TWO_SITES
    + """
  - {id: lumi-aif, name: LUMI, country: FI, supercomputer: LUMI, status: operational,
     partitions: [{name: gpu, gpu_model: MI250X, gpu_memory_gb: 128, gpus_per_node: 4,
                   nodes: 2}]}
"""
)
LONG_WORKDIR = "/tmp/" + "w" * 296  # 301 characters, one name longer than NAME_MAX (255)
# Members of three different projects (demo data), each with a pool allocation.
OTHERS = ("bob", "elena", "fabien")
PROJECT_OF = {"alice": "aurora-vision", "bob": "aurora-vision", "elena": "ejemplo-llm"}
PROJECT_OF["fabien"] = "climat-downscale"
FAST = 1000.0  # emulated sites: one site hour in 3.6 real seconds


def _harness(
    tmp_path: Path,
    database_url: str,
    catalogue: str,
    make_executor: Callable[[Site, ManualClock], Executor] | None = None,
) -> Harness:
    path = tmp_path / "catalogue.yaml"
    path.write_text(catalogue)
    return make_harness(
        tmp_path,
        database_url,
        make_executor,
        catalogue=path,
        policy="first_fit",
        site_retry_interval_s=0,
    )


@pytest.fixture
def emulated(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    """Two emulated sites running real runner processes; every job still alive at the end
    is cancelled, so no process outlives the test."""

    def make(site: Site, clock: ManualClock) -> Executor:
        return EmulatedExecutor(site, tmp_path / "sites" / site.id, clock, FAST, kill_grace_s=0.5)

    h = _harness(tmp_path, database_url, TWO_SITES, make)
    yield h
    for executor in h.executors.values():
        assert isinstance(executor, EmulatedExecutor)
        jobs = executor.state_dir / "jobs"
        for entry in jobs.iterdir() if jobs.exists() else ():
            executor.cancel(entry.name)
    h.platform.stop()


@pytest.fixture(autouse=True)
def fresh_log_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the broker's log as a fresh process would (no window left open)."""
    monkeypatch.setattr(apply, "_throttle", LogThrottle(apply.log))


def _submit(h: Harness, user: str = "alice", gpu_model: str = "A100", **fields: Any) -> int:
    body = {
        "project": PROJECT_OF[user],
        "gpus": 1,
        "time_limit": 3600,
        "gpu_model": gpu_model,
        "runtime": 60,
        **fields,
    }
    response = h.client(user).post("/jobs", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _set_workdir(h: Harness, job_id: int, workdir: str) -> None:
    """Below the API and its checks: the database holds what it holds."""
    with h.platform.ctx.sessions() as session, session.begin():
        session.execute(update(JobRow).where(JobRow.id == job_id).values(workdir=workdir))


def _job(h: Harness, job_id: int) -> JobRow:
    with h.platform.ctx.reads() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        return row


def _site_available(h: Harness, partition_id: str) -> bool:
    with h.platform.ctx.reads() as session:
        status = session.get(PartitionStatusRow, partition_id)
        assert status is not None
        return status.available


def _cycle_until(h: Harness, done: Callable[[], bool], cycles: int = 200) -> None:
    """Run broker cycles (real runner processes need real time) until ``done``."""
    for _ in range(cycles):
        h.cycle(advance_s=1.0)
        if done():
            return
        threading.Event().wait(0.05)
    pytest.fail("the jobs did not get there")


def _final(h: Harness, *job_ids: int) -> Callable[[], bool]:
    final = {"completed", "failed", "cancelled", "timeout"}
    return lambda: all(_job(h, j).state in final for j in job_ids)


def _assert_books_balance(h: Harness) -> None:
    """Each allocation holds exactly its active jobs' reservations and has used exactly its
    charges; every finished job's reservation went back or was charged, to the second."""
    with h.platform.ctx.reads() as session:
        for allocation in session.execute(select(AllocationRow)).scalars():
            held = session.execute(
                select(func.coalesce(func.sum(JobRow.reserved_gpu_seconds), 0)).where(
                    JobRow.allocation_id == allocation.id,
                    JobRow.state.in_(("placed", "submitted", "running")),
                )
            ).scalar_one()
            assert allocation.reserved_gpu_seconds == held, allocation.id
            charged = session.execute(
                select(func.coalesce(func.sum(LedgerEntryRow.gpu_seconds), 0)).where(
                    LedgerEntryRow.allocation_id == allocation.id,
                    LedgerEntryRow.kind == "charge",
                )
            ).scalar_one()
            assert allocation.used_gpu_seconds == charged, allocation.id
        moves = session.execute(
            select(LedgerEntryRow.job_id, LedgerEntryRow.kind, LedgerEntryRow.gpu_seconds)
        ).all()
        for job in session.execute(select(JobRow)).scalars():
            if job.state not in ("completed", "failed", "cancelled", "timeout"):
                continue
            mine = [(kind, gs) for j, kind, gs in moves if j == job.id]
            reserved = sum(gs for kind, gs in mine if kind == "reserve")
            returned = sum(gs for kind, gs in mine if kind in ("release", "charge"))
            assert reserved == returned, (job.id, mine)
            assert job.reserved_gpu_seconds == 0


def _fail_launch_of(monkeypatch: pytest.MonkeyPatch, error: int, when: Callable[..., bool]) -> None:
    """The emulated site's preparation of a job's launch fails with ``error`` for the jobs
    ``when`` selects: what a 301-character working folder did (ENAMETOOLONG from the OS)."""
    real = _launch.write_request

    def write_request(files: Any, job: Any, *args: Any, **kwargs: Any) -> None:
        if when(files, job):
            raise OSError(error, os.strerror(error), job.workdir or str(files.root))
        real(files, job, *args, **kwargs)

    monkeypatch.setattr(_launch, "write_request", write_request)


@pytest.mark.slow
def test_a_301_character_workdir_blocks_no_other_job(emulated: Harness) -> None:
    h = emulated
    bad = _submit(h, command=["/bin/true"])
    _set_workdir(h, bad, LONG_WORKDIR)
    others = [_submit(h, user) for user in OTHERS]  # three projects, the same site
    h.cycle()
    assert _site_available(h, "it4lia/booster")
    for job_id in others:  # all at the site at once, none left placed behind the bad job
        assert _job(h, job_id).site_job_id is not None
    _cycle_until(h, _final(h, bad, *others))
    assert _site_available(h, "it4lia/booster")
    assert [_job(h, j).state for j in others] == ["completed"] * 3
    row = _job(h, bad)
    if row.state == "failed":  # the site could not use the folder: the owner is told why
        assert row.reason is not None and "too long" in row.reason
    else:  # the site started it in its own folder instead
        assert row.state == "completed"
    _assert_books_balance(h)


@pytest.mark.slow
def test_a_job_the_site_cannot_start_fails_alone_with_its_reason(
    emulated: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = emulated
    _fail_launch_of(monkeypatch, errno.ENAMETOOLONG, lambda _f, job: job.workdir == LONG_WORKDIR)
    bad = _submit(h)
    _set_workdir(h, bad, LONG_WORKDIR)
    others = [_submit(h, user) for user in OTHERS]
    with caplog.at_level(logging.INFO):
        h.cycle()
        _cycle_until(h, _final(h, bad, *others))
    assert [_job(h, j).state for j in others] == ["completed"] * 3
    assert _site_available(h, "it4lia/booster")
    shown = h.client("alice").get(f"/jobs/{bad}").json()  # what `aif job N` prints
    assert shown["state"] == "failed"
    assert "File name too long" in shown["reason"] and "workdir" in shown["reason"]
    assert len(shown["reason"]) < 400  # the 301-character path is clipped
    row = _job(h, bad)
    assert row.reserved_gpu_seconds == 0 and row.charged_gpu_seconds == 0
    _assert_books_balance(h)
    site_trouble = ("unavailable", "did not answer", "failed on submit", "capacity")
    assert not [r for r in caplog.records if any(t in r.getMessage() for t in site_trouble)]


@pytest.mark.slow
def test_a_site_level_failure_marks_only_that_site_unavailable(
    emulated: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = emulated
    it4lia = h.executors["it4lia"]  # type: ignore[index]
    assert isinstance(it4lia, EmulatedExecutor)
    broken = {"disk full": True}
    _fail_launch_of(
        monkeypatch,
        errno.ENOSPC,
        lambda files, _job: broken["disk full"] and files.root == it4lia.state_dir,
    )
    at_it4lia = [_submit(h, user) for user in ("alice", *OTHERS)]
    at_jaif = [_submit(h, user, gpu_model="GH200") for user in ("alice", "elena")]
    h.cycle()
    h.cycle()
    assert not _site_available(h, "it4lia/booster")
    assert _site_available(h, "jaif/booster")
    for job_id in at_it4lia:  # the site's failure is no job's: none failed, none charged
        row = _job(h, job_id)
        assert row.state in ("pending", "placed"), (job_id, row.state, row.reason)
    _cycle_until(h, _final(h, *at_jaif))
    assert [_job(h, j).state for j in at_jaif] == ["completed"] * 2
    broken["disk full"] = False  # the operator freed the disk: the site's jobs run now
    _cycle_until(h, _final(h, *at_it4lia))
    assert [_job(h, j).state for j in at_it4lia] == ["completed"] * 4
    assert _site_available(h, "it4lia/booster")
    _assert_books_balance(h)


# -- the broker's side, with scripted sites ---------------------------------------------------


class _BarrierSite(MockExecutor):
    """Each submit waits until every site is inside a submit at the same time: it can only
    pass if the broker submits to the sites in parallel (else the barrier breaks)."""

    barrier: threading.Barrier

    def submit(self, request: SubmitRequest) -> str:
        self.barrier.wait()
        return super().submit(request)


def test_sites_are_submitted_to_in_parallel(tmp_path: Path, database_url: str) -> None:
    barrier = threading.Barrier(3, timeout=30)  # a guard against a hang, not a measurement

    def make(site: Site, clock: ManualClock) -> Executor:
        executor = _BarrierSite(site, clock)
        executor.barrier = barrier
        return executor

    h = _harness(tmp_path, database_url, THREE_SITES, make)
    try:
        jobs = [
            _submit(h, user, gpu_model=model)
            for model in ("A100", "GH200", "MI250X")
            for user in ("alice", "elena")
        ]
        h.cycle()
        assert [_job(h, j).state for j in jobs] == ["submitted"] * 6  # all got through
    finally:
        h.platform.stop()


def test_each_site_gets_its_jobs_in_placement_order(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply, "CHUNK", 3)  # several chunks per site, interleaved
    h = _harness(tmp_path, database_url, TWO_SITES)
    try:
        by_site = {
            "it4lia": [_submit(h, ("alice", "elena")[k % 2]) for k in range(8)],
            "jaif": [_submit(h, "fabien", gpu_model="GH200") for _ in range(8)],
        }
        h.cycle()
        instance = h.platform.broker.instance
        for site_id, jobs in by_site.items():
            site = h.executors[site_id]  # type: ignore[index]
            assert isinstance(site, MockExecutor)
            submitted = [tag for call, tag in site.calls if call == "submit"]
            assert submitted == [job_tag(j, instance) for j in jobs]
            assert [_job(h, j).state for j in jobs] == ["submitted"] * 8
    finally:
        h.platform.stop()


def test_a_site_down_on_submit_is_logged_once_with_a_count(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = _harness(tmp_path, database_url, TWO_SITES)
    try:
        site = h.executors["it4lia"]  # type: ignore[index]
        assert isinstance(site, MockExecutor)
        job_id = _submit(h)
        other = _submit(h, "elena")
        with caplog.at_level(logging.WARNING, logger="aifactories.broker.apply"):
            for _ in range(10):
                site.fail_next_submit(SiteUnavailable(f"it4lia: cannot open {LONG_WORKDIR * 10}"))
                h.cycle()
        lines = [r.getMessage() for r in caplog.records if "failed on submit" in r.getMessage()]
        assert len(lines) == 1  # not one per cycle
        assert len(lines[0]) < 400  # the 3,010-character message is clipped
        # The job the site failed on may be there (placed, for reconcile); the other never
        # left the queue. Neither is the jobs' fault: neither failed.
        assert _job(h, job_id).state == "placed" and _job(h, other).state == "pending"
        h.cycle(rounds=3)
        assert _job(h, job_id).state == "running" and _job(h, other).state == "running"
        _assert_books_balance(h)
    finally:
        h.platform.stop()


def test_an_untranslated_error_fails_only_its_job(tmp_path: Path, database_url: str) -> None:
    class Buggy(MockExecutor):
        def submit(self, request: SubmitRequest) -> str:
            if request.spec.name == "bad":
                raise OSError(errno.E2BIG, "Argument list too long")  # not an ExecutorError
            return super().submit(request)

    h = _harness(tmp_path, database_url, TWO_SITES, lambda site, clock: Buggy(site, clock))
    try:
        bad = _submit(h, name="bad")
        others = [_submit(h, user) for user in OTHERS]
        h.cycle()
        row = _job(h, bad)
        assert row.state == "failed" and row.reason is not None
        assert "Argument list too long" in row.reason
        assert [_job(h, j).state for j in others] == ["submitted"] * 3
        _assert_books_balance(h)
    finally:
        h.platform.stop()
