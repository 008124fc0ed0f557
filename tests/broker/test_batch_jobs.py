"""Batch jobs as Slurm users write them, through the service and the broker on mock sites:
the account and partition a script names, resources the placement honours, arrays with
their throttle, dependencies, and nothing dropped silently."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aifactories.db.models import JobRow
from aifactories.domain.errors import InvalidInput, NotFound
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobState
from aifactories.executors.mock import MockExecutor
from aifactories.services.core.auth import authenticate
from aifactories.services.jobs.job_queries import array_tasks, cancel_job, get_job
from aifactories.services.jobs.jobs import JobRequest, submit_job
from tests.broker.mock_platform import MockPlatform, mock_platform

LUMI_SCRIPT = """#!/bin/bash -l
#SBATCH --job-name=train-lumi
#SBATCH --account=kalevala-mri
#SBATCH --partition=standard-g
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=7
#SBATCH --mem=0
#SBATCH --time=01:00:00
#SBATCH --output=%x-%j.out
#SBATCH --error=%x-%j.err
#SBATCH --qos=normal
srun python3 train.py
"""


@pytest.fixture
def mp(tmp_path: Path, database_url: str) -> Iterator[MockPlatform]:
    platform = mock_platform(tmp_path, database_url)
    yield platform
    platform.platform.stop()


def _submit(mp: MockPlatform, user: str = "carol", **fields: object) -> JobRow:
    principal = authenticate(mp.platform.ctx, mp.tokens[user])
    return submit_job(mp.platform.ctx, principal, JobRequest(**fields))  # type: ignore[arg-type]


def _job(mp: MockPlatform, ref: str, user: str = "carol") -> JobRow:
    return get_job(mp.platform.ctx, authenticate(mp.platform.ctx, mp.tokens[user]), ref)


def test_a_lumi_script_runs_where_it_says_and_is_paid_by_its_account(mp: MockPlatform) -> None:
    # the profile's project (default_project) is only a default: the script's --account wins
    job = _submit(mp, script=LUMI_SCRIPT, default_project="aurora-vision")
    assert job.project.code == "kalevala-mri"
    assert job.name == "train-lumi" and job.gpus == 8 and job.nodes == 2
    assert job.slurm is not None
    assert job.slurm["partitions"] == ["lumi-aif/lumi-g"]
    assert job.slurm["ntasks_per_node"] == 4 and job.slurm["cpus_per_task"] == 7
    assert job.slurm["mem_per_node_mb"] == 0
    assert job.slurm["batch"]["output"] == "%x-%j.out"
    assert job.warnings and "--qos=normal" in job.warnings[0]
    mp.platform.broker.run_once()
    placed = _job(mp, str(job.id))
    assert placed.partition_id == "lumi-aif/lumi-g"
    assert (placed.shape_nodes, placed.shape_exclusive) == (2, True)


def test_options_on_the_command_line_win_over_the_script(mp: MockPlatform) -> None:
    job = _submit(mp, script=LUMI_SCRIPT, options=["--partition=boost_usr_prod", "-N", "1", "-t10"])
    assert job.slurm is not None and job.slurm["partitions"] == ["it4lia/booster"]
    assert (job.nodes, job.time_limit_s) == (1, 600)


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        (["--partition=gpu-nowhere"], "partition", "known partitions: "),
        (["--partition=standard-g", "--cpus-per-task=100"], "cpus_per_task", "56"),
        (["--partition=boost_usr_prod", "--mem=600G"], "mem", "512 GB"),
        (["--frobnicate"], "options", "unsupported option --frobnicate"),
        (["--array=9-1"], "options --array", "empty range"),
        (["--dependency=afterok:999999"], "dependency", "does not exist"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(
    mp: MockPlatform, options: list[str], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        _submit(
            mp, project="kalevala-mri", gpus=1, time_limit="10:00", command=["x"], options=options
        )
    assert refused.value.field == field
    assert words in refused.value.message + (refused.value.limit or "")
    with mp.platform.ctx.reads() as session:
        assert session.query(JobRow).count() == 0  # nothing half-written


def test_an_array_is_throttled_named_like_slurm_and_cancelled_whole_or_by_task(
    mp: MockPlatform,
) -> None:
    first = _submit(
        mp,
        project="kalevala-mri",
        gpus=1,
        time_limit="10:00",
        command=["x"],
        options=["--array=0-9%3", "--job-name=sweep"],
    )
    assert (first.array_job_id, first.array_task_id) == (first.id, 0)
    principal = authenticate(mp.platform.ctx, mp.tokens["carol"])
    tasks = array_tasks(mp.platform.ctx, principal, first.id)
    assert [t.array_task_id for t in tasks] == list(range(10))
    assert tasks[4].slurm is not None
    assert tasks[4].slurm["batch"]["array"][:3] == [first.id, 4, 10]  # SLURM_ARRAY_* values
    assert _job(mp, f"{first.id}_4").id == tasks[4].id
    mp.platform.broker.run_once()
    states = [_job(mp, f"{first.id}_{i}").state for i in range(10)]
    assert states.count("pending") == 7, states  # %3: three at a time
    held = _job(mp, f"{first.id}_9")
    assert held.reason is not None and "JobArrayTaskLimit" in held.reason
    cancel_job(mp.platform.ctx, principal, f"{first.id}_9")
    assert _job(mp, f"{first.id}_9").state == "cancelled"
    assert _job(mp, f"{first.id}_8").state == "pending"
    cancel_job(mp.platform.ctx, principal, str(first.id))  # the whole array, as scancel
    after = array_tasks(mp.platform.ctx, principal, first.id)
    assert all(t.state == "cancelled" or t.cancel_requested for t in after)
    with pytest.raises(NotFound):
        _job(mp, f"{first.id}_4", user="alice")  # another project's array


def _finish(mp: MockPlatform, job_id: int, state: JobState = JobState.COMPLETED) -> None:
    row = _job(mp, str(job_id))
    assert row.site_id is not None and row.site_job_id is not None, row.state
    site = mp.executors[SiteId(row.site_id)]
    assert isinstance(site, MockExecutor)
    site.finish(row.site_job_id, state, exit_code=0 if state is JobState.COMPLETED else 1)


def test_dependencies_hold_a_job_until_met_and_cancel_it_when_they_never_can(
    mp: MockPlatform,
) -> None:
    common = {"project": "kalevala-mri", "gpus": 1, "time_limit": "10:00", "command": ["x"]}
    first = _submit(mp, **common)
    after_ok = _submit(mp, **common, options=[f"--dependency=afterok:{first.id}"])
    after_not_ok = _submit(mp, **common, options=[f"--dependency=afternotok:{first.id}"])
    mp.platform.broker.run_once()
    assert _job(mp, str(after_ok.id)).state == "pending"
    assert "Dependency" in (_job(mp, str(after_ok.id)).reason or "")
    mp.clock.advance(60)
    _finish(mp, first.id)
    mp.platform.broker.run_once()  # sees the first job complete
    mp.platform.broker.run_once()  # releases its dependents
    assert _job(mp, str(after_ok.id)).state in {"placed", "submitted", "running"}
    never = _job(mp, str(after_not_ok.id))
    assert never.state == "cancelled"
    assert never.reason is not None and "DependencyNeverSatisfied" in never.reason


def test_singleton_waits_for_the_earlier_job_of_the_same_name(mp: MockPlatform) -> None:
    common = {"project": "kalevala-mri", "gpus": 1, "time_limit": "10:00", "command": ["x"]}
    first = _submit(mp, **common, name="nightly")
    second = _submit(mp, **common, name="nightly", options=["--dependency=singleton"])
    mp.platform.broker.run_once()
    assert _job(mp, str(second.id)).state == "pending"
    mp.clock.advance(60)
    _finish(mp, first.id)
    mp.platform.broker.run_once()
    mp.platform.broker.run_once()
    assert _job(mp, str(second.id)).state in {"placed", "submitted", "running"}


def test_the_budget_error_names_what_is_left_where_the_job_could_run(mp: MockPlatform) -> None:
    # po-twin has 5,000 GPU-hours at it4lia only: the cheapest partitions elsewhere have none
    with pytest.raises(Exception) as refused:
        _submit(
            mp, user="dario", project="po-twin", gpus=128, time_limit="2-00:00:00", command=["x"]
        )
    assert "5,000.00 GPU-hours left" in str(refused.value)


@pytest.mark.parametrize(
    ("option", "after"), [("--no-requeue", "failed"), ("--requeue", "pending")]
)
def test_a_job_its_site_requeues_is_requeued_unless_it_said_no_requeue(
    mp: MockPlatform, option: str, after: str
) -> None:
    job = _submit(
        mp, project="kalevala-mri", gpus=1, time_limit="10:00", command=["x"], options=[option]
    )
    mp.platform.broker.run_once()
    row = _job(mp, str(job.id))
    assert row.site_id is not None and row.site_job_id is not None
    site = mp.executors[SiteId(row.site_id)]
    assert isinstance(site, MockExecutor)
    mock_job = site.jobs[row.site_job_id]  # the site's node failed: it put the job back
    mock_job.status = replace(mock_job.status, state=JobState.PENDING, reason="node failure")
    mp.platform.broker.run_once()
    again = _job(mp, str(job.id))
    assert again.state in (
        {after} if after == "failed" else {"pending", "placed", "submitted", "running"}
    )
    assert (again.requeues == 0) == (option == "--no-requeue")
    if after == "failed":
        assert again.reason is not None and "--no-requeue" in again.reason
