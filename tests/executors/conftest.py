"""Fixtures for the executor tests: a small site, fast-forwarded emulated executors that
are cleaned up (no runner outlives its test), and bounded waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from aifactories.domain.clock import SystemClock
from aifactories.domain.ids import JobId, SiteId
from aifactories.domain.jobs import JobSpec, Shape
from aifactories.domain.sites import Partition, Site, SiteStatus
from aifactories.executors.base import SiteJobStatus, SubmitRequest, job_tag
from aifactories.executors.emulated import EmulatedExecutor

SITE_ID = SiteId("testsite")
GPU = Partition(SITE_ID, "gpu", "H100", 80, nodes=2, gpus_per_node=4, billing_weight=1.0)
BIG = Partition(SITE_ID, "booster", "GH200", 96, nodes=6000, gpus_per_node=4)
SITE = Site(SITE_ID, "Test site", "DE", "TESTER", SiteStatus.OPERATIONAL, (GPU, BIG))
FAST = 1000.0  # time factor: one site hour passes in 3.6 real seconds

MakeExecutor = Callable[..., EmulatedExecutor]


def request(
    job_id: int,
    shape: Shape,
    *,
    partition: Partition = GPU,
    time_limit_s: int = 3600,
    command: tuple[str, ...] = (),
    runtime_s: int | None = None,
    workdir: str | None = None,
    script: str | None = None,
    tag: str | None = None,
) -> SubmitRequest:
    spec = JobSpec(
        gpus=shape.allocated_gpus,
        time_limit_s=time_limit_s,
        nodes=shape.nodes,
        name=f"job{job_id}",
        command=command,
        runtime_s=runtime_s,
        workdir=workdir,
        script=script,
    )
    return SubmitRequest(
        job_id=JobId(job_id),
        tag=tag if tag is not None else job_tag(job_id),
        partition=partition,
        shape=shape,
        spec=spec,
        account="p-test",
        user="alice",
    )


def one(gpus: int) -> Shape:
    return Shape(1, gpus, exclusive=False)


def wait_for(
    executor: EmulatedExecutor,
    ids: Sequence[str],
    done: Callable[[SiteJobStatus], bool] = lambda s: s.state.final,
    timeout_s: float = 10.0,
) -> dict[str, SiteJobStatus]:
    """Poll until every job satisfies ``done``; fail after ``timeout_s`` real seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = executor.poll(ids)
        if len(statuses) == len(ids) and all(done(statuses[i]) for i in ids):
            return statuses
        if time.monotonic() > deadline:
            pytest.fail(f"jobs did not get there in {timeout_s} s: {statuses}")
        time.sleep(0.02)


def running(status: SiteJobStatus) -> bool:
    return status.state.value == "running"


@pytest.fixture
def make_executor(tmp_path: Path) -> Iterator[MakeExecutor]:
    """Executors on ``tmp_path/site`` (or a given state_dir); every live job is cancelled at
    the end so no runner process outlives the test."""
    made: list[EmulatedExecutor] = []

    def make(state_dir: Path | None = None, time_factor: float = FAST) -> EmulatedExecutor:
        executor = EmulatedExecutor(
            SITE, state_dir or tmp_path / "site", SystemClock(), time_factor, kill_grace_s=0.5
        )
        made.append(executor)
        return executor

    yield make
    for executor in made:
        jobs = executor.state_dir / "jobs"
        for entry in jobs.iterdir() if jobs.exists() else ():
            executor.cancel(entry.name)  # a no-op for jobs that already ended
