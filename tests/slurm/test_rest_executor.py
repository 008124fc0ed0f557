"""The slurm_rest back-end against real slurmrestd (JWT, openapi v0.0.38) at local sites."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifactories.catalogue.loader import parse_catalogue
from aifactories.domain.errors import ProtocolError, SiteUnavailable, SubmissionRejected
from aifactories.domain.jobs import JobState
from aifactories.domain.sites import Site
from aifactories.executors.base import job_tag
from aifactories.executors.registry import make_executor
from aifactories.executors.slurm.rest import SlurmRestExecutor
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.sites_file import catalogue_entry
from tests.slurm.conftest import SlurmFactory
from tests.slurm.test_cli_executor import _JOB_IDS, final, request, wait_for


def rest_site(layout: SiteLayout) -> Site:
    data = {"version": 1, "sites": [catalogue_entry(layout, "rest")]}
    return parse_catalogue(data, "test").sites[0]


def _executor(layout: SiteLayout, **overrides: object) -> SlurmRestExecutor:
    site = rest_site(layout)
    assert site.executor is not None
    options = {**site.executor.as_dict(), **overrides}
    executor = make_executor("slurm_rest", site, **options)
    assert isinstance(executor, SlurmRestExecutor)
    return executor


@pytest.fixture
def rest(slurm_sites: list[SiteLayout]) -> Iterator[SlurmRestExecutor]:
    executor = _executor(slurm_sites[2])
    yield executor
    executor.close()


def test_a_job_runs_completes_and_reports_slurms_figures(rest: SlurmRestExecutor) -> None:
    req = request(rest.site, gpus=3, runtime_s=2)
    site_job_id = rest.submit(req)
    running = wait_for(rest, site_job_id, lambda s: s.state is not JobState.SUBMITTED)
    assert running.state in (JobState.RUNNING, JobState.COMPLETED)
    done = wait_for(rest, site_job_id, final)
    assert done.state is JobState.COMPLETED and done.exit_code == 0
    assert done.allocated_gpus == 3 and done.elapsed_s >= 2
    assert done.tag == req.tag
    found = rest.find_by_tag(req.tag)
    assert found is not None and found.site_job_id == site_job_id
    assert found.state is JobState.COMPLETED and found.allocated_gpus == 3
    assert rest.find_by_tag(job_tag(next(_JOB_IDS))) is None


def test_exit_codes_cancel_and_a_gang_job(rest: SlurmRestExecutor) -> None:
    failing = rest.submit(request(rest.site, command=("bash", "-c", "exit 3")))
    assert wait_for(rest, failing, final).exit_code == 3
    assert rest.poll([failing])[failing].state is JobState.FAILED
    long = rest.submit(request(rest.site, runtime_s=300))
    wait_for(rest, long, lambda s: s.state is JobState.RUNNING)
    rest.cancel(long)
    assert wait_for(rest, long, final).state is JobState.CANCELLED
    rest.cancel(long)  # cancelling a finished job is no error
    gang = rest.submit(request(rest.site, gpus=8, runtime_s=1))
    done = wait_for(rest, gang, final)
    assert done.state is JobState.COMPLETED and done.allocated_gpus == 8


def test_capacity_shows_busy_gpus(rest: SlurmRestExecutor) -> None:
    before = rest.capacity()[0].free_nodes_by_free_gpus
    long = rest.submit(request(rest.site, gpus=2, runtime_s=300))
    try:
        wait_for(rest, long, lambda s: s.state is JobState.RUNNING)
        after = rest.capacity()[0].free_nodes_by_free_gpus
        free = sum(k * n for k, n in enumerate(after))
        assert free == sum(k * n for k, n in enumerate(before)) - 2
    finally:
        rest.cancel(long)


def test_a_job_that_cannot_fit_is_refused_with_slurms_reason(rest: SlurmRestExecutor) -> None:
    with pytest.raises(SubmissionRejected) as refused:
        rest.submit(request(rest.site, gpu_model="h100"))
    assert "node configuration is not available" in refused.value.reason


def test_a_token_from_the_wrong_key_is_refused_clearly(
    slurm_sites: list[SiteLayout], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    executor = _executor(slurm_sites[2], jwt_key_file=str(wrong))
    try:
        # 22.05 answers these GETs as if the controller were down: told apart, not "no
        # partition gpu" nor "site unavailable".
        for call in (executor.capacity, lambda: executor.poll(["1"])):
            with pytest.raises(ProtocolError, match="refused our token") as refused:
                call()
            assert "jwt_key_file" in refused.value.message
        executor._partitions_checked = True
        with pytest.raises(ProtocolError, match="refused our token"):
            executor.submit(request(executor.site))
    finally:
        executor.close()


def test_unknown_account_is_refused_at_a_site_enforcing_accounts(
    slurm_dbd_sites: list[SiteLayout],
) -> None:
    executor = _executor(slurm_dbd_sites[1])
    try:
        with pytest.raises(SubmissionRejected) as refused:
            executor.submit(request(executor.site, account="no-such-project"))
        assert "account" in refused.value.reason.lower()
    finally:
        executor.close()


def test_a_dead_controller_makes_the_site_unavailable(slurm_factory: SlurmFactory) -> None:
    cluster, layouts = slurm_factory(1)
    executor = _executor(layouts[0], timeout_s=20)
    fresh = _executor(layouts[0], timeout_s=20)
    impatient = _executor(layouts[0], timeout_s=1)
    try:
        assert executor.capacity()
        cluster.stop_controller(layouts[0])
        started = time.monotonic()
        with pytest.raises(SiteUnavailable, match="unreachable"):
            executor.poll(["1"])  # slurmrestd answers HTTP 500 after its own retries
        assert time.monotonic() - started < 20
        with pytest.raises(SiteUnavailable, match="unreachable"):
            fresh.capacity()  # not "partition gpu not found" from the empty list beside it
        with pytest.raises(SiteUnavailable):
            impatient.poll(["1"])  # our own timeout
    finally:
        for each in (executor, fresh, impatient):
            each.close()


def test_a_dead_slurmrestd_makes_the_site_unavailable(
    slurm_factory: SlurmFactory,
) -> None:
    cluster, layouts = slurm_factory(1)
    executor = _executor(layouts[0], timeout_s=5)
    try:
        pid = int((layouts[0].run / "slurmrestd.pid").read_text())
        os.kill(pid, 9)
        with pytest.raises(SiteUnavailable):
            executor.capacity()
    finally:
        executor.close()
    assert isinstance(cluster, LocalSlurm)
