"""The broker against real local Slurm sites: runs, charges, crashes, rejections, outages."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from aifactories.db.models import AllocationRow, PartitionStatusRow, StaleSiteJobRow
from aifactories.executors.base import Executor, SubmitRequest
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.services.platform import Platform
from tests.slurm.conftest import SlurmFactory
from tests.slurm.platform_on_slurm import (
    assert_books_balance,
    make_platform,
    runs_by_tag,
    start_platform,
)


@pytest.mark.parametrize("backend", ["cli", "rest"])
def test_jobs_run_at_real_sites_and_are_charged_from_slurm(
    tmp_path: Path,
    database_url: str,
    slurm_cluster: LocalSlurm,
    slurm_sites: list[SiteLayout],
    backend: str,
) -> None:
    sp = start_platform(tmp_path, database_url, slurm_cluster, slurm_sites, backend)
    try:
        shapes = [(1, None), (2, None), (4, None), (8, 2), (3, None), (1, None)]
        ids = [
            sp.submit(gpus=gpus, nodes=nodes, runtime=2, name=f"t{k}")
            for k, (gpus, nodes) in enumerate(shapes)
        ]
        sp.cycle_until(lambda: sp.all_final(ids), timeout_s=90)
        rows = [sp.job(i) for i in ids]
        assert [r.state for r in rows] == ["completed"] * len(ids), [r.reason for r in rows]
        runs = runs_by_tag(sp.cluster, sp.layouts)
        assert {sp.tag(i): 1 for i in ids}.items() <= runs.items()
        for row in rows:
            assert row.site_id in {layout.name for layout in slurm_sites}
            assert row.elapsed_s is not None and row.elapsed_s >= 2
            # Slurm's own count: a 2-node gang job of 8 GPUs holds 8, a 3-GPU job 3.
            gpus = row.shape_nodes * row.shape_gpus_per_node  # type: ignore[operator]
            assert row.charged_gpu_seconds == math.ceil(gpus * row.elapsed_s * 1.0)
        assert_books_balance(sp.platform)
    finally:
        sp.platform.stop()


class _CrashAfterSubmit(BaseException):
    """Stands for the process dying right after sbatch returned, before the commit."""


class _CrashingExecutor:
    def __init__(self, inner: Executor) -> None:
        self._inner = inner
        self.site_id = inner.site_id
        self.submitted: list[str] = []

    def submit(self, request: SubmitRequest) -> str:
        site_job_id = self._inner.submit(request)
        self.submitted.append(site_job_id)
        raise _CrashAfterSubmit(site_job_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_a_crash_between_sbatch_and_commit_is_adopted_on_restart(
    tmp_path: Path, database_url: str, slurm_cluster: LocalSlurm, slurm_sites: list[SiteLayout]
) -> None:
    sp = start_platform(tmp_path, database_url, slurm_cluster, slurm_sites[:1])
    site = slurm_sites[0].name
    real = sp.platform.executors()
    crashing = _CrashingExecutor(real[site])  # type: ignore[arg-type]
    real[site] = crashing  # type: ignore[assignment]
    job_id = sp.submit(runtime=1)
    with pytest.raises(_CrashAfterSubmit):
        sp.platform.broker.run_once()
    row = sp.job(job_id)
    assert row.state == "placed" and row.site_job_id is None  # the commit never happened
    sp.platform.stop()

    restarted = make_platform(tmp_path, database_url, tmp_path / "sites.yaml")
    try:
        restarted.broker.run_once()  # reconcile finds the Slurm job by its tag
        sp.platform = restarted
        assert sp.job(job_id).site_job_id == crashing.submitted[0]
        sp.cycle_until(lambda: sp.all_final([job_id]))
        assert sp.job(job_id).state == "completed"
        assert runs_by_tag(sp.cluster, sp.layouts[:1]).get(sp.tag(job_id)) == 1
        assert_books_balance(restarted)
    finally:
        restarted.stop()


def test_a_job_slurm_refuses_fails_with_slurms_reason_and_releases(
    tmp_path: Path,
    database_url: str,
    slurm_dbd_cluster: LocalSlurm,
    slurm_dbd_sites: list[SiteLayout],
) -> None:
    # No accounts were created at this site: Slurm enforces associations and refuses the job.
    sp = start_platform(tmp_path, database_url, slurm_dbd_cluster, slurm_dbd_sites[:1])
    try:
        job_id = sp.submit(project="climat-downscale", user="fabien", runtime=1)
        sp.cycle_until(lambda: sp.all_final([job_id]), timeout_s=30)
        row = sp.job(job_id)
        assert row.state == "failed"
        assert row.reason is not None and "account" in row.reason.lower(), row.reason
        assert row.reason.startswith(f"rejected by {slurm_dbd_sites[0].name}")
        assert_books_balance(sp.platform)
    finally:
        sp.platform.stop()


def _status(platform: Platform, site: str) -> PartitionStatusRow:
    with platform.ctx.reads() as session:
        row = session.get(PartitionStatusRow, f"{site}/gpu")
        assert row is not None
        return row


def _scontrol(cluster: LocalSlurm, layout: SiteLayout, *args: str) -> None:
    subprocess.run(
        ["scontrol", *args], env=cluster.env(layout), check=True, capture_output=True, timeout=30
    )


def _wait_state_saved(layout: SiteLayout, after: float) -> None:
    state = layout.root / "state" / "job_state"
    deadline = time.monotonic() + 30
    while not (state.exists() and state.stat().st_mtime > after):
        assert time.monotonic() < deadline, "slurmctld never saved its job state"
        time.sleep(0.2)


def test_a_site_whose_controller_dies_is_avoided_and_used_again(
    tmp_path: Path, database_url: str, slurm_factory: SlurmFactory
) -> None:
    cluster, layouts = slurm_factory(2, nodes=1, gpus=4)
    site1, site2 = layouts  # site1 is in DE, site2 in FR
    sp = start_platform(
        tmp_path, database_url, cluster, layouts, site_failover_grace_s=0, site_retry_interval_s=3
    )
    try:
        runner = sp.submit(gpus=2, runtime=20, countries=["DE"])
        sp.cycle_until(lambda: sp.job(runner).state == "running")
        assert sp.job(runner).site_id == site1.name
        # Two jobs queued *at* site1 (partition down, then held there, which survives a
        # controller restart): one any site may run, one that must stay in DE.
        _scontrol(cluster, site1, "update", "PartitionName=gpu", "State=DOWN")
        movable = sp.submit(gpus=1, runtime=2)
        german = sp.submit(gpus=1, runtime=2, countries=["DE"])
        sp.cycle_until(lambda: all(sp.job(j).state == "submitted" for j in (movable, german)))
        assert {sp.job(j).site_id for j in (movable, german)} == {site1.name}
        stale = sp.job(movable).site_job_id
        assert stale is not None
        for job_id in (movable, german):
            _scontrol(cluster, site1, "hold", str(sp.job(job_id).site_job_id))
        _scontrol(cluster, site1, "update", "PartitionName=gpu", "State=UP")
        # slurmctld saves its state every few seconds: a SIGKILL before that loses the jobs
        # (the broker copes, see docs/slurm.md), but this test wants them kept.
        _wait_state_saved(site1, after=time.time())

        cluster.stop_controller(site1)  # SIGKILL slurmctld; the running job's step lives on
        report = sp.platform.broker.run_once()
        assert site1.name in report.unreachable_sites  # within one cycle
        assert not _status(sp.platform, site1.name).available
        # The job another site admits moves there and runs; the DE-only one waits for site1.
        sp.cycle_until(lambda: sp.job(movable).state == "completed")
        assert sp.job(movable).site_id == site2.name
        assert (sp.job(german).site_id, sp.job(german).state) == (site1.name, "submitted")

        cluster.start_controller(site1)
        sp.cycle_until(lambda: _status(sp.platform, site1.name).available)
        _scontrol(cluster, site1, "release", str(sp.job(german).site_job_id))
        sp.cycle_until(lambda: sp.all_final([runner, german, movable]), timeout_s=120)
        rows = [sp.job(j) for j in (runner, german, movable)]
        assert [r.state for r in rows] == ["completed"] * 3, [r.reason for r in rows]
        assert [r.site_id for r in rows] == [site1.name, site1.name, site2.name]
        # The copy left at site1 never ran there (a SIGKILLed slurmctld may also have lost
        # it, with its id reused: tags, not ids, tell), and the broker's cleanup is done.
        assert runs_by_tag(cluster, [site1]).get(sp.tag(movable)) is None
        with sp.platform.ctx.reads() as session:
            cleanup = session.execute(select(StaleSiteJobRow)).scalars().all()
            assert [(c.job_id, c.site_job_id, c.done_at is not None) for c in cleanup] == [
                (movable, stale, True)
            ]
        runs = runs_by_tag(cluster, layouts)
        assert all(runs.get(sp.tag(r.id)) == 1 for r in rows), runs  # none ran twice
        assert_books_balance(sp.platform)
        with sp.platform.ctx.reads() as session:
            used = sum(a.used_gpu_seconds for a in session.execute(select(AllocationRow)).scalars())
        assert used == sum(r.charged_gpu_seconds for r in rows) > 0  # charged once
    finally:
        sp.platform.stop()
