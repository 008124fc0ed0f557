"""The emulated site against real processes: commands, limits, cancel, queue, capacity."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from aifactories.domain.clock import SystemClock
from aifactories.domain.errors import (
    InvalidInput,
    ProtocolError,
    SiteUnavailable,
    SubmissionRejected,
)
from aifactories.domain.jobs import JobState, Shape
from aifactories.domain.sites import Partition
from aifactories.executors.base import Executor
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.runner import process_start

from .conftest import BIG, FAST, GPU, SITE, MakeExecutor, one, request, running, wait_for

LONG = ("sleep", "30")  # a command that outlives every test unless stopped


def test_is_an_executor(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    assert isinstance(executor, Executor)
    assert executor.site_id == SITE.id


def test_command_completes_with_output_and_slurm_like_environment(
    make_executor: MakeExecutor,
) -> None:
    executor = make_executor()
    script = 'echo "out $AIF_JOB_ID $AIF_SITE $AIF_PARTITION $AIF_GPUS $CUDA_VISIBLE_DEVICES"; pwd'
    job = executor.submit(request(1, one(2), command=("sh", "-c", script + "; echo err >&2")))

    status = wait_for(executor, [job])[job]

    assert status.state is JobState.COMPLETED
    assert status.exit_code == 0
    assert status.allocated_gpus == 2
    assert status.started_at is not None and status.ended_at is not None
    assert status.ended_at >= status.started_at
    lines = executor.output_path(job).read_text().splitlines()
    assert lines[0] == f"out {job} testsite gpu 2 0,1"
    assert lines[1] == str(executor.job_dir(job) / "work")  # no workdir given: per-job dir
    assert "err" in lines  # stderr goes to the same file


def test_workdir_is_used_when_it_exists(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    # A folder the job's unprivileged user may enter (pytest's tmp_path is 0700).
    with tempfile.TemporaryDirectory() as workdir:
        Path(workdir).chmod(0o755)
        (Path(workdir) / "input.txt").write_text("from the workdir\n")
        (Path(workdir) / "input.txt").chmod(0o644)
        command = ("sh", "-c", "pwd; cat input.txt; echo $SLURM_SUBMIT_DIR")
        job = executor.submit(request(1, one(1), command=command, workdir=workdir))
        wait_for(executor, [job])
        # it starts in its own folder, which links to the workdir's files
        expected = [str(executor.job_dir(job) / "work"), "from the workdir", workdir]
        assert executor.output_path(job).read_text().splitlines() == expected


def test_batch_script_runs_when_there_is_no_command(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    script = "#!/bin/sh\n#SBATCH --gpus=1\necho from the script $AIF_JOB_NAME\n"
    job = executor.submit(request(7, one(1), script=script))
    assert wait_for(executor, [job])[job].state is JobState.COMPLETED
    assert executor.output_path(job).read_text() == "from the script job7\n"


def test_failing_command_is_failed_with_its_exit_code(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), command=("sh", "-c", "exit 3")))
    status = wait_for(executor, [job])[job]
    assert status.state is JobState.FAILED
    assert status.exit_code == 3
    assert status.reason == "exit code 3"


def test_missing_program_fails_with_127(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), command=("/nonexistent/program",)))
    status = wait_for(executor, [job])[job]
    assert status.state is JobState.FAILED
    assert status.exit_code == 127
    assert "cannot start" in (status.reason or "")


def test_sleep_job_runs_its_runtime_in_fast_forward(make_executor: MakeExecutor) -> None:
    executor = make_executor()  # 1000x: 600 site seconds are 0.6 real seconds
    began = time.monotonic()
    job = executor.submit(request(1, one(1), runtime_s=600, time_limit_s=3600))
    status = wait_for(executor, [job])[job]
    assert time.monotonic() - began >= 0.6
    assert status.state is JobState.COMPLETED
    assert status.elapsed_s == 600.0
    assert status.exit_code == 0


def test_running_job_reports_site_time(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), command=LONG, time_limit_s=36_000))
    time.sleep(0.05)
    status = wait_for(executor, [job], running)[job]
    assert status.elapsed_s >= 50.0  # at least 0.05 real seconds x 1000


def test_time_limit_ends_a_command_with_timeout(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), command=LONG, time_limit_s=200))
    status = wait_for(executor, [job])[job]
    assert status.state is JobState.TIMEOUT
    assert status.elapsed_s == 200.0
    child = json.loads((executor.job_dir(job) / "child.json").read_text())
    assert process_start(child["pid"]) is None  # the command was killed


def test_sleep_job_without_runtime_sleeps_to_its_limit(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), time_limit_s=100))
    status = wait_for(executor, [job])[job]
    assert status.state is JobState.TIMEOUT
    assert status.elapsed_s == 100.0


def test_cancel_kills_the_command_and_is_idempotent(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), command=LONG, time_limit_s=36_000))
    wait_for(executor, [job], running)
    child_file = executor.job_dir(job) / "child.json"
    deadline = time.monotonic() + 5
    while not child_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    child = json.loads(child_file.read_text())

    executor.cancel(job)
    executor.cancel(job)
    executor.cancel("424242")  # unknown: no error

    status = executor.poll([job])[job]
    assert status.state is JobState.CANCELLED
    deadline = time.monotonic() + 5
    while process_start(child["pid"]) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process_start(child["pid"]) is None
    assert executor.capacity()[0].free_nodes_by_free_gpus == (0, 0, 0, 0, 2)


def test_full_partition_queues_and_starts_first_come_first_served(
    make_executor: MakeExecutor,
) -> None:
    executor = make_executor()
    a = executor.submit(request(1, one(4), command=LONG, time_limit_s=36_000))
    b = executor.submit(request(2, one(3), command=LONG, time_limit_s=36_000))
    c = executor.submit(request(3, one(2), command=LONG, time_limit_s=36_000))  # 1 GPU free
    d = executor.submit(request(4, one(1), command=LONG, time_limit_s=36_000))  # fits, waits

    statuses = executor.poll([a, b, c, d])
    assert [statuses[x].state for x in (a, b)] == [JobState.RUNNING, JobState.RUNNING]
    assert statuses[c].state is JobState.SUBMITTED
    assert statuses[c].reason == "queued at site: waiting for 2 free GPUs"
    assert statuses[d].state is JobState.SUBMITTED  # no overtaking the head of the queue
    assert statuses[d].reason == "queued at site: waiting for 1 free GPUs (1 earlier jobs first)"

    executor.cancel(a)  # frees a whole node: c then d start, in order

    statuses = wait_for(executor, [c, d], running)
    assert statuses[c].allocated_gpus == 2
    started_c, started_d = statuses[c].started_at, statuses[d].started_at
    assert started_c is not None and started_d is not None and started_c <= started_d
    assert executor.starts() == {a: 1, b: 1, c: 1, d: 1}
    # c took 2 GPUs of the freed node; d, best fit, the last GPU of b's node.
    assert executor.capacity()[0].free_nodes_by_free_gpus == (1, 0, 1, 0, 0)


def test_cancelled_queued_job_never_runs(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    a = executor.submit(request(1, Shape(2, 4, exclusive=True), command=LONG))
    b = executor.submit(request(2, one(1), command=LONG))
    executor.cancel(b)
    executor.cancel(a)
    assert executor.poll([b])[b].state is JobState.CANCELLED
    assert executor.poll([b])[b].started_at is None
    assert b not in executor.starts()


def test_multi_node_job_takes_whole_free_nodes(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    small = executor.submit(request(1, one(1), command=LONG, time_limit_s=36_000))
    big = executor.submit(
        request(2, Shape(2, 4, exclusive=True), command=("sh", "-c", "echo $AIF_NODELIST"))
    )
    status = executor.poll([big])[big]
    assert status.state is JobState.SUBMITTED
    assert status.reason == "queued at site: waiting for 8 free GPUs on 2 whole nodes"

    executor.cancel(small)

    status = wait_for(executor, [big])[big]
    assert status.state is JobState.COMPLETED
    assert status.allocated_gpus == 8
    assert executor.output_path(big).read_text().strip() == "gpu-0000,gpu-0001"


def test_capacity_histogram_follows_best_fit(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    assert {c.partition_name: c.free_nodes_by_free_gpus for c in executor.capacity()} == {
        "gpu": (0, 0, 0, 0, 2),
        "booster": (0, 0, 0, 0, 6000),
    }
    executor.submit(request(1, one(1), command=LONG, time_limit_s=36_000))
    executor.submit(request(2, one(2), command=LONG, time_limit_s=36_000))  # same node
    executor.submit(request(3, one(3), command=LONG, partition=BIG, time_limit_s=36_000))
    capacity = {c.partition_name: c.free_nodes_by_free_gpus for c in executor.capacity()}
    assert capacity == {"gpu": (0, 1, 0, 0, 1), "booster": (0, 1, 0, 0, 5999)}


def test_large_partition_state_stays_small(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, Shape(64, 4, exclusive=True), partition=BIG, command=LONG))
    began = time.monotonic()
    for _ in range(20):
        executor.capacity()
        executor.poll([job])
    assert time.monotonic() - began < 1.0
    # No per-node list: the books hold the one job and its 64 nodes, not 6,000 entries.
    assert (executor.state_dir / "state.json").stat().st_size < 4000
    booster = next(c for c in executor.capacity() if c.partition_name == "booster")
    assert booster.free_nodes_by_free_gpus == (64, 0, 0, 0, 5936)


@pytest.mark.parametrize(
    ("shape", "partition_name", "words"),
    [
        (Shape(3, 4, exclusive=True), "gpu", "3 nodes"),
        (Shape(1, 8, exclusive=False), "gpu", "8 GPUs per node"),
        (Shape(1, 0, exclusive=False), "gpu", "at least one"),
        (Shape(1, 1, exclusive=False), "nope", "no partition 'nope'"),
    ],
)
def test_impossible_shape_is_rejected(
    make_executor: MakeExecutor, shape: Shape, partition_name: str, words: str
) -> None:
    executor = make_executor()
    partition = GPU if partition_name == "gpu" else Partition(SITE.id, "nope", "H100", 80, 1, 1)
    with pytest.raises(SubmissionRejected) as caught:
        executor.submit(request(1, shape, partition=partition))
    assert words in caught.value.reason
    assert executor.starts() == {}


def test_find_by_tag(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(5, one(1), runtime_s=10, tag="aif-5"))
    found = executor.find_by_tag("aif-5")
    assert found is not None and found.site_job_id == job and found.tag == "aif-5"
    assert executor.find_by_tag("aif-6") is None
    odd = executor.submit(request(6, one(1), runtime_s=10, tag="odd tag/../x"))
    found = executor.find_by_tag("odd tag/../x")
    assert found is not None and found.site_job_id == odd
    again = executor.submit(request(5, one(1), runtime_s=10, tag="aif-5"))  # a requeue
    found = executor.find_by_tag("aif-5")
    assert found is not None and found.site_job_id == again


def test_poll_ignores_ids_the_site_does_not_know(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), runtime_s=10))
    assert set(executor.poll([job, "999", "../etc", ""])) == {job}


def test_time_factor_must_be_positive(make_executor: MakeExecutor) -> None:
    with pytest.raises(InvalidInput):
        make_executor(time_factor=0)


def test_errors_are_translated_at_the_boundary(make_executor: MakeExecutor, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(SiteUnavailable):
        make_executor(not_a_dir / "site")
    executor = make_executor()
    (executor.state_dir / "state.json").write_text("{not json")
    with pytest.raises(ProtocolError):
        executor.poll(["1"])


def test_job_on_a_partition_that_left_the_catalogue_fails(
    make_executor: MakeExecutor, tmp_path: Path
) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(1), partition=BIG, command=LONG))
    smaller = replace(SITE, partitions=(GPU,))
    later = EmulatedExecutor(smaller, executor.state_dir, SystemClock(), FAST)
    status = later.poll([job])[job]
    assert status.state is JobState.FAILED
    assert status.reason == "node failure: partition 'booster' is no longer at the site"
    assert [c.partition_name for c in later.capacity()] == ["gpu"]
