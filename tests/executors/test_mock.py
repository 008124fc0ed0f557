"""The mock executor: scriptable, in memory, with the same capacity rules."""

from __future__ import annotations

import pytest

from aifactories.domain.clock import ManualClock
from aifactories.domain.errors import SiteUnavailable, SubmissionRejected
from aifactories.domain.jobs import JobState, Shape
from aifactories.executors.base import Executor
from aifactories.executors.mock import MockExecutor

from .conftest import SITE, one, request


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def site(clock: ManualClock) -> MockExecutor:
    return MockExecutor(SITE, clock)


def test_submit_runs_at_once_and_finish_charges_clock_time(
    site: MockExecutor, clock: ManualClock
) -> None:
    assert isinstance(site, Executor)
    job = site.submit(request(1, one(2)))
    status = site.poll([job])[job]
    assert status.state is JobState.RUNNING and status.allocated_gpus == 2
    clock.advance(90)
    assert site.poll([job])[job].elapsed_s == 90
    done = site.finish(job)
    assert (done.state, done.elapsed_s, done.exit_code) == (JobState.COMPLETED, 90, 0)
    other = site.submit(request(2, one(1)))
    assert site.finish(other, elapsed_s=5).elapsed_s == 5


def test_finish_with_failure_and_explicit_elapsed(site: MockExecutor) -> None:
    job = site.submit(request(1, one(1)))
    status = site.finish(job, JobState.FAILED, elapsed_s=12.5, exit_code=2)
    assert (status.state, status.elapsed_s, status.reason) == (JobState.FAILED, 12.5, "exit code 2")
    with pytest.raises(ValueError):
        site.finish(job)


def test_queue_fifo_and_capacity(site: MockExecutor) -> None:
    a = site.submit(request(1, one(4)))
    b = site.submit(request(2, one(3)))
    c = site.submit(request(3, one(2)))
    d = site.submit(request(4, one(1)))
    assert site.status(c).state is JobState.SUBMITTED
    assert site.poll([c])[c].reason == "queued at site: waiting for 2 free GPUs"
    assert site.status(d).state is JobState.SUBMITTED  # behind c, though it would fit
    assert site.capacity()[0].free_nodes_by_free_gpus == (1, 1, 0, 0, 0)
    site.finish(a)
    assert site.status(c).state is JobState.RUNNING
    assert site.status(d).state is JobState.RUNNING
    site.finish(b)
    site.finish(c)
    site.finish(d)
    assert site.capacity()[0].free_nodes_by_free_gpus == (0, 0, 0, 0, 2)


def test_multi_node_and_impossible_shapes(site: MockExecutor) -> None:
    site.submit(request(1, one(1)))
    big = site.submit(request(2, Shape(2, 4, True)))
    assert site.status(big).state is JobState.SUBMITTED
    site.finish("1")
    assert site.status(big).allocated_gpus == 8
    with pytest.raises(SubmissionRejected) as caught:
        site.submit(request(3, Shape(3, 4, True)))
    assert "3 nodes" in caught.value.reason


def test_scripted_failures(site: MockExecutor) -> None:
    site.unavailable_next_submit()
    with pytest.raises(SiteUnavailable):
        site.submit(request(1, one(1)))
    site.reject_next_submit("account p-test is blocked")
    with pytest.raises(SubmissionRejected) as caught:
        site.submit(request(1, one(1)))
    assert caught.value.reason == "account p-test is blocked"
    assert site.jobs == {}
    job = site.submit(request(1, one(1)))
    assert site.status(job).state is JobState.RUNNING


def test_lost_reply_then_adopt_by_tag(site: MockExecutor) -> None:
    site.lose_next_submit_reply()
    with pytest.raises(SiteUnavailable):
        site.submit(request(9, one(1)))
    found = site.find_by_tag("aif-9")
    assert found is not None and found.state is JobState.RUNNING
    assert site.find_by_tag("aif-10") is None


def test_whole_site_unavailable(site: MockExecutor) -> None:
    job = site.submit(request(1, one(1)))
    site.available = False
    for call in (
        lambda: site.poll([job]),
        site.capacity,
        lambda: site.cancel(job),
        lambda: site.find_by_tag("aif-1"),
        lambda: site.submit(request(2, one(1))),
    ):
        with pytest.raises(SiteUnavailable):
            call()
    site.available = True
    assert site.poll([job])[job].state is JobState.RUNNING


def test_cancel_forget_and_recorded_calls(site: MockExecutor) -> None:
    job = site.submit(request(1, one(1)))
    site.cancel(job)
    site.cancel(job)
    site.cancel("404")
    assert site.status(job).state is JobState.CANCELLED
    other = site.submit(request(2, one(1)))
    site.forget(other)
    assert site.poll([job, other]) == {job: site.status(job)}
    site.close()
    assert [name for name, _ in site.calls] == [
        "submit",
        "cancel",
        "cancel",
        "cancel",
        "submit",
        "poll",
        "close",
    ]
    assert site.calls[0] == ("submit", "aif-1")


def test_manual_start(clock: ManualClock) -> None:
    site = MockExecutor(SITE, clock, auto_start=False)
    job = site.submit(request(1, one(4)))
    assert site.status(job).state is JobState.SUBMITTED
    assert site.start(job).state is JobState.RUNNING
    site.submit(request(2, one(4)))
    third = site.submit(request(3, one(4)))
    site.start("2")
    with pytest.raises(ValueError):
        site.start(third)


def test_fail_all_ends_every_job_and_frees_the_site(site: MockExecutor, clock: ManualClock) -> None:
    running = site.submit(request(1, one(4)))
    other = site.submit(request(2, one(4)))
    queued = site.submit(request(3, one(4)))
    clock.advance(50)
    site.available = False  # scripting works while the site is down
    assert site.fail_all() == [running, other, queued]
    status = site.status(running)
    assert (status.state, status.elapsed_s, status.reason) == (JobState.FAILED, 50, "node failure")
    assert site.status(queued).state is JobState.FAILED  # lost, never started in between
    assert site.status(queued).elapsed_s == 0
    assert site.fail_all() == []
    site.available = True
    assert site.capacity()[0].free_nodes_by_free_gpus == (0, 0, 0, 0, 2)
    with pytest.raises(ValueError):
        site.fail_all(JobState.RUNNING)


def test_resize_grows_at_once_and_drains_on_shrink(site: MockExecutor) -> None:
    a = site.submit(request(1, one(4)))
    b = site.submit(request(2, one(2)))
    waiting = site.submit(request(3, one(4)))
    assert site.status(waiting).state is JobState.SUBMITTED
    site.resize("gpu", 3)  # growth starts the queued job at once
    assert site.status(waiting).state is JobState.RUNNING
    assert site.gpu_counts() == (10, 12 + 6000 * 4)
    site.resize("gpu", 1)  # no idle node: two busy ones drain, nothing is killed
    assert site.site.partitions[0].nodes == 1
    assert all(site.status(j).state is JobState.RUNNING for j in (a, b, waiting))
    # node 1 (b, 2 free GPUs) stays; the full nodes 0 and 2 drain
    assert site.capacity()[0].free_nodes_by_free_gpus == (0, 0, 1, 0, 0)
    assert site.gpu_counts() == (10, 12 + 6000 * 4)
    with pytest.raises(SubmissionRejected):
        site.submit(request(4, Shape(2, 4, True)))  # the partition has 1 node now
    site.finish(a)
    site.finish(waiting)
    assert site.gpu_counts() == (2, 4 + 6000 * 4)  # the drained nodes have left
    with pytest.raises(KeyError):
        site.resize("nope", 1)
