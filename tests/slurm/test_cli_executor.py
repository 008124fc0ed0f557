"""The slurm_cli back-end against real local Slurm sites (sbatch, squeue, sinfo, sacct)."""

from __future__ import annotations

import contextlib
import itertools
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aifactories.catalogue.loader import parse_catalogue
from aifactories.domain.errors import SiteUnavailable, SubmissionRejected
from aifactories.domain.ids import JobId
from aifactories.domain.jobs import JobSpec, JobState, shape_on
from aifactories.domain.sites import Site
from aifactories.executors.base import Executor, SiteJobStatus, SubmitRequest, job_tag
from aifactories.executors.registry import make_executor
from aifactories.executors.slurm.cli import SlurmCliExecutor
from aifactories.executors.slurm.jobrecord import HOPELESS_PREFIX
from aifactories.executors.slurm.sacct import AccountingRecord, read_accounting
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.sites_file import catalogue_entry
from tests.slurm.conftest import SlurmFactory

# Tags must not collide with other tests that share the session's sites.
_JOB_IDS = itertools.count(random.randint(10**6, 10**8) * 10)


def site_of(layout: SiteLayout) -> Site:
    data = {"version": 1, "sites": [catalogue_entry(layout, "cli")]}
    return parse_catalogue(data, "test").sites[0]


def request(
    site: Site,
    *,
    gpus: int = 1,
    account: str = "proj-cli",
    command: tuple[str, ...] = (),
    runtime_s: int | None = None,
    gpu_model: str = "any",
    time_limit_s: int = 300,
) -> SubmitRequest:
    job_spec = JobSpec(
        gpus=gpus,
        time_limit_s=time_limit_s,
        gpu_model=gpu_model,
        command=command,
        runtime_s=runtime_s,
    )
    partition = site.partitions[0]
    shape = shape_on(job_spec, partition.gpus_per_node, partition.nodes)
    assert shape is not None
    job_id = next(_JOB_IDS)
    return SubmitRequest(
        job_id=JobId(job_id),
        tag=job_tag(job_id),
        partition=partition,
        shape=shape,
        spec=job_spec,
        account=account,
        user="tester",
    )


def wait_for(
    executor: Executor,
    site_job_id: str,
    done: Callable[[SiteJobStatus], bool],
    timeout_s: float = 30.0,
) -> SiteJobStatus:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = executor.poll([site_job_id]).get(site_job_id)
        if last is not None and done(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"job {site_job_id} never got there; last status {last}")


def final(status: SiteJobStatus) -> bool:
    return status.state.final


def slurm(cluster: LocalSlurm, layout: SiteLayout, *args: str) -> str:
    out = subprocess.run(
        list(args), env=cluster.env(layout), capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


class Jobs:
    """Submits through an executor and cancels whatever is left at the end of the test."""

    def __init__(self, executor: SlurmCliExecutor) -> None:
        self.executor = executor
        self.ids: list[str] = []

    def submit(self, req: SubmitRequest) -> str:
        site_job_id = self.executor.submit(req)
        self.ids.append(site_job_id)
        return site_job_id


@pytest.fixture
def out_dir(tmp_path: Path) -> str:
    tmp_path.chmod(0o777)
    return str(tmp_path)


def _executor(layout: SiteLayout, out_dir: str, **options: object) -> SlurmCliExecutor:
    executor = make_executor(
        "slurm_cli",
        site_of(layout),
        slurm_conf=str(layout.slurm_conf),
        output_dir=out_dir,
        **options,
    )
    assert isinstance(executor, SlurmCliExecutor)
    return executor


@pytest.fixture
def jobs_on(out_dir: str) -> Iterator[Callable[[SiteLayout], Jobs]]:
    made: list[Jobs] = []

    def make(layout: SiteLayout) -> Jobs:
        made.append(Jobs(_executor(layout, out_dir)))
        return made[-1]

    yield make
    for jobs in made:
        for site_job_id in jobs.ids:
            with contextlib.suppress(SiteUnavailable):
                jobs.executor.cancel(site_job_id)


# -- life cycle on the shared sites (no slurmdbd) ----------------------------------------------


def test_a_job_runs_and_completes_with_its_gpus_and_elapsed_time(
    slurm_sites: list[SiteLayout], jobs_on: Callable[[SiteLayout], Jobs], out_dir: str
) -> None:
    jobs = jobs_on(slurm_sites[0])
    req = request(
        jobs.executor.site, gpus=2, command=("bash", "-c", "echo $CUDA_VISIBLE_DEVICES; sleep 2")
    )
    site_job_id = jobs.submit(req)
    assert site_job_id.isdigit()
    running = wait_for(jobs.executor, site_job_id, lambda s: s.state is not JobState.SUBMITTED)
    assert running.state in (JobState.RUNNING, JobState.COMPLETED)
    assert running.tag == req.tag and running.allocated_gpus == 2
    assert running.started_at is not None
    done = wait_for(jobs.executor, site_job_id, final)
    assert done.state is JobState.COMPLETED and done.exit_code == 0
    assert done.allocated_gpus == 2
    assert 1.0 <= done.elapsed_s <= 10.0
    assert done.ended_at is not None and done.started_at is not None
    assert done.ended_at - done.started_at == pytest.approx(done.elapsed_s)
    output = Path(out_dir) / f"{req.tag}_job-{site_job_id}.out"
    assert output.read_text().strip() == "0,1"


def test_exit_code_3_is_failed_with_code_3(
    slurm_sites: list[SiteLayout], jobs_on: Callable[[SiteLayout], Jobs]
) -> None:
    jobs = jobs_on(slurm_sites[0])
    site_job_id = jobs.submit(request(jobs.executor.site, command=("bash", "-c", "exit 3")))
    done = wait_for(jobs.executor, site_job_id, final)
    assert done.state is JobState.FAILED
    assert done.exit_code == 3
    assert done.reason == "NonZeroExitCode"


def test_cancel_ends_a_running_job_and_is_idempotent(
    slurm_sites: list[SiteLayout], jobs_on: Callable[[SiteLayout], Jobs]
) -> None:
    jobs = jobs_on(slurm_sites[1])
    site_job_id = jobs.submit(request(jobs.executor.site, runtime_s=300))
    wait_for(jobs.executor, site_job_id, lambda s: s.state is JobState.RUNNING)
    jobs.executor.cancel(site_job_id)
    done = wait_for(jobs.executor, site_job_id, final)
    assert done.state is JobState.CANCELLED
    assert done.elapsed_s < 30
    jobs.executor.cancel(site_job_id)  # finished: not an error
    jobs.executor.cancel("999999")  # unknown: not an error


def test_a_two_node_gang_job_takes_both_whole_nodes(
    slurm_cluster: LocalSlurm,
    slurm_sites: list[SiteLayout],
    jobs_on: Callable[[SiteLayout], Jobs],
) -> None:
    layout = slurm_sites[1]
    jobs = jobs_on(layout)
    req = request(jobs.executor.site, gpus=8, runtime_s=2)
    assert req.shape.nodes == 2 and req.shape.exclusive
    site_job_id = jobs.submit(req)
    running = wait_for(jobs.executor, site_job_id, lambda s: s.state is not JobState.SUBMITTED)
    assert running.allocated_gpus == 8
    nodes = slurm(slurm_cluster, layout, "squeue", "-h", "-t", "all", "-j", site_job_id, "-o", "%N")
    assert nodes.strip() == f"{layout.name}-n[1-2]"
    done = wait_for(jobs.executor, site_job_id, final)
    assert done.state is JobState.COMPLETED and done.allocated_gpus == 8


def test_a_job_that_fits_no_node_is_rejected_with_slurms_reason(
    slurm_sites: list[SiteLayout], jobs_on: Callable[[SiteLayout], Jobs]
) -> None:
    jobs = jobs_on(slurm_sites[0])
    with pytest.raises(SubmissionRejected) as caught:
        jobs.submit(request(jobs.executor.site, gpu_model="H100"))
    assert caught.value.reason == "Requested node configuration is not available"
    assert "gpu:h100:1" in caught.value.message


def test_capacity_counts_free_gpus_per_node(
    slurm_cluster: LocalSlurm,
    slurm_sites: list[SiteLayout],
    jobs_on: Callable[[SiteLayout], Jobs],
) -> None:
    layout = slurm_sites[2]
    jobs = jobs_on(layout)
    idle = jobs.executor.capacity()
    assert [(c.partition_name, c.free_nodes_by_free_gpus) for c in idle] == [
        ("gpu", (0, 0, 0, 0, 2))
    ]
    site_job_id = jobs.submit(request(jobs.executor.site, gpus=2, runtime_s=300))
    wait_for(jobs.executor, site_job_id, lambda s: s.state is JobState.RUNNING)
    assert jobs.executor.capacity()[0].free_nodes_by_free_gpus == (0, 0, 1, 0, 1)
    node = f"{layout.name}-n2"
    slurm(
        slurm_cluster,
        layout,
        "scontrol",
        "update",
        f"nodename={node}",
        "state=drain",
        "reason=test",
    )
    try:
        assert jobs.executor.capacity()[0].free_nodes_by_free_gpus == (1, 0, 1, 0, 0)
    finally:
        slurm(slurm_cluster, layout, "scontrol", "update", f"nodename={node}", "state=resume")
    jobs.executor.cancel(site_job_id)
    wait_for(jobs.executor, site_job_id, final)


def test_find_by_tag_finds_a_finished_job_from_a_new_executor(
    slurm_sites: list[SiteLayout], jobs_on: Callable[[SiteLayout], Jobs], out_dir: str
) -> None:
    layout = slurm_sites[2]
    jobs = jobs_on(layout)
    req = request(jobs.executor.site)
    site_job_id = jobs.submit(req)
    wait_for(jobs.executor, site_job_id, final)
    restarted = _executor(layout, out_dir)
    found = restarted.find_by_tag(req.tag)
    assert found is not None
    assert found.site_job_id == site_job_id and found.state is JobState.COMPLETED
    assert restarted.find_by_tag(job_tag(next(_JOB_IDS))) is None


def test_the_site_rejects_an_unknown_partition_clearly(
    slurm_sites: list[SiteLayout], out_dir: str
) -> None:
    from dataclasses import replace

    from aifactories.domain.errors import ConfigurationError

    site = site_of(slurm_sites[0])
    wrong = replace(site, partitions=(replace(site.partitions[0], name="booster"),))
    executor = SlurmCliExecutor(wrong, str(slurm_sites[0].slurm_conf), output_dir=out_dir)
    with pytest.raises(ConfigurationError, match="booster"):
        executor.capacity()


_FAKE_SSH = """#!/bin/sh
# stands for 'ssh -o OPTION HOST COMMAND': runs COMMAND here, through a shell as sshd does
while [ "$1" = "-o" ]; do shift 2; done
shift
exec env -i PATH=/usr/bin:/bin sh -c "$1"
"""


def test_through_ssh_every_command_carries_the_sites_config(
    slurm_sites: list[SiteLayout], out_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(_FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    layout = slurm_sites[2]
    executor = SlurmCliExecutor(
        site_of(layout), str(layout.slurm_conf), output_dir=out_dir, ssh_host="login.site"
    )
    req = request(executor.site, command=("bash", "-c", 'echo "it\'s $AIF_TAG"'))
    site_job_id = executor.submit(req)
    done = wait_for(executor, site_job_id, final)
    assert done.state is JobState.COMPLETED and done.tag == req.tag
    output = Path(out_dir) / f"{req.tag}_job-{site_job_id}.out"
    assert output.read_text().strip() == f"it's {req.tag}"
    assert executor.capacity()[0].free_nodes_by_free_gpus[-1] == 2


# -- private sites: lost state, dead controller ------------------------------------------------


def test_a_job_squeue_forgot_is_found_through_sacct_c(
    slurm_factory: SlurmFactory, out_dir: str
) -> None:
    cluster, (layout,) = slurm_factory(1, nodes=1, gpus=4)
    executor = _executor(layout, out_dir)
    assert executor.accounting == "jobcomp"
    req = request(executor.site, command=("bash", "-c", "exit 5"))
    site_job_id = executor.submit(req)
    wait_for(executor, site_job_id, final)
    # The controller loses its state (MinJobAge passed, or a new StateSaveLocation).
    cluster.stop_controller(layout)
    shutil.rmtree(layout.root / "state")
    (layout.root / "state").mkdir(mode=0o700)
    cluster.start_controller(layout)
    status = executor.poll([site_job_id, "424242"])
    assert list(status) == [site_job_id]
    found = status[site_job_id]
    assert found.state is JobState.FAILED and found.exit_code == 5 and found.tag == req.tag
    assert executor.find_by_tag(req.tag) == found


def test_a_dead_controller_makes_the_site_unavailable(
    slurm_factory: SlurmFactory, out_dir: str
) -> None:
    cluster, (layout,) = slurm_factory(1, nodes=1, gpus=4)
    executor = _executor(layout, out_dir, command_timeout_s=20)
    req = request(executor.site)
    executor.capacity()  # partitions checked while the site is up
    cluster.stop_controller(layout)
    started = time.monotonic()
    with pytest.raises(SiteUnavailable, match="unreachable"):
        executor.poll(["100001"])
    assert time.monotonic() - started < 20
    impatient = _executor(layout, out_dir, command_timeout_s=2)
    impatient._partitions_checked = True
    with pytest.raises(SiteUnavailable, match="did not answer"):
        impatient.submit(req)


# -- sites with slurmdbd -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dbd_account(slurm_dbd_cluster: LocalSlurm, slurm_dbd_sites: list[SiteLayout]) -> str:
    """An account (with root's association) on the first DBD site."""
    layout = slurm_dbd_sites[0]
    account = "clitest"
    slurm(
        slurm_dbd_cluster,
        layout,
        "sacctmgr",
        "-i",
        "add",
        "account",
        account,
        f"cluster={layout.name}",
    )
    slurm(
        slurm_dbd_cluster,
        layout,
        "sacctmgr",
        "-i",
        "add",
        "user",
        "root",
        f"account={account}",
        f"cluster={layout.name}",
    )
    return account


def test_dbd_an_unknown_account_is_rejected(
    slurm_dbd_sites: list[SiteLayout], jobs_on: Callable[[SiteLayout], Jobs]
) -> None:
    jobs = jobs_on(slurm_dbd_sites[0])
    with pytest.raises(SubmissionRejected) as caught:
        jobs.submit(request(jobs.executor.site, account="no-such-project"))
    assert "account" in caught.value.reason.lower()
    assert "no-such-project" in caught.value.message


def test_dbd_usage_comes_from_sacct_with_gpus(
    slurm_dbd_sites: list[SiteLayout], jobs_on: Callable[[SiteLayout], Jobs], dbd_account: str
) -> None:
    jobs = jobs_on(slurm_dbd_sites[0])
    assert jobs.executor.accounting == "slurmdbd"
    req = request(
        jobs.executor.site, gpus=2, account=dbd_account, command=("bash", "-c", "sleep 1; exit 4")
    )
    site_job_id = jobs.submit(req)
    done = wait_for(jobs.executor, site_job_id, final)
    assert done.state is JobState.FAILED and done.exit_code == 4 and done.allocated_gpus == 2
    deadline = time.monotonic() + 10
    records: list[AccountingRecord] = []
    while not records and time.monotonic() < deadline:  # slurmdbd stores it a moment later
        records = read_accounting(jobs.executor.run, [site_job_id], None, False)
        time.sleep(0.2)
    (record,) = records
    assert record.tag == req.tag and record.account == dbd_account
    assert record.state is JobState.FAILED and record.exit_code == 4
    assert record.allocated_gpus == 2 and record.elapsed_s >= 1
    assert record.gpu_seconds == 2 * record.elapsed_s


def test_dbd_a_job_over_its_usage_limit_is_cancelled_and_failed(
    slurm_dbd_cluster: LocalSlurm,
    slurm_dbd_sites: list[SiteLayout],
    jobs_on: Callable[[SiteLayout], Jobs],
) -> None:
    layout = slurm_dbd_sites[0]
    account = "clitest-spent"
    slurm(
        slurm_dbd_cluster,
        layout,
        "sacctmgr",
        "-i",
        "add",
        "account",
        account,
        f"cluster={layout.name}",
        "GrpTRESMins=gres/gpu=1",
    )
    slurm(
        slurm_dbd_cluster,
        layout,
        "sacctmgr",
        "-i",
        "add",
        "user",
        "root",
        f"account={account}",
        f"cluster={layout.name}",
    )
    jobs = jobs_on(layout)
    site_job_id = jobs.submit(
        request(jobs.executor.site, account=account, runtime_s=60, time_limit_s=600)
    )
    status = wait_for(jobs.executor, site_job_id, final)
    assert status.state is JobState.FAILED
    assert status.reason == f"{HOPELESS_PREFIX}AssocGrpGRESMinutes"
    again = jobs.executor.poll([site_job_id])[site_job_id]  # cancelled at the site: still failed
    assert again.state is JobState.FAILED and again.reason == status.reason
    state = slurm(
        slurm_dbd_cluster, layout, "squeue", "-h", "-t", "all", "-j", site_job_id, "-o", "%T"
    )
    assert state.strip() == "CANCELLED"
