"""Restart and crash safety: the site keeps running without its platform process, a new
executor picks up where things were, and no job ever starts twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aifactories.domain.jobs import JobState
from aifactories.executors import _launch
from aifactories.executors.runner import EXIT_ALREADY_CLAIMED, process_start

from .conftest import MakeExecutor, one, request, running, wait_for

REPO = Path(__file__).resolve().parents[2]


class _Crash(BaseException):
    """The platform process dying at one precise point."""


def test_dropping_the_executor_loses_nothing(make_executor: MakeExecutor, tmp_path: Path) -> None:
    first = make_executor()
    ids = [first.submit(request(i, one(4), runtime_s=200)) for i in range(1, 5)]  # 2 queued
    assert [s.state for s in first.poll(ids).values()].count(JobState.SUBMITTED) == 2
    del first

    second = make_executor()
    statuses = wait_for(second, ids)
    assert all(s.state is JobState.COMPLETED for s in statuses.values())
    assert second.starts() == {i: 1 for i in ids}


def test_platform_killed_right_after_submit(make_executor: MakeExecutor, tmp_path: Path) -> None:
    state_dir = tmp_path / "site"
    child = subprocess.run(
        [sys.executable, "-m", "tests.executors._crash_child", str(state_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    ids = json.loads(child.stdout)

    executor = make_executor(state_dir)
    found = executor.find_by_tag("aif-3")
    assert found is not None and found.site_job_id == ids[2]
    statuses = wait_for(executor, ids)
    assert all(s.state is JobState.COMPLETED for s in statuses.values())
    assert executor.starts() == {i: 1 for i in ids}


def test_crash_before_the_runner_was_launched(
    make_executor: MakeExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise _Crash

    monkeypatch.setattr(_launch, "spawn", crash)
    with pytest.raises(_Crash):
        make_executor().submit(request(1, one(2), runtime_s=100))
    monkeypatch.undo()

    executor = make_executor()  # finds the job 'starting' with nobody running it
    statuses = wait_for(executor, ["1"])
    assert statuses["1"].state is JobState.COMPLETED
    assert executor.starts() == {"1": 1}


def test_crash_after_the_runner_was_launched(
    make_executor: MakeExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> bool:
        raise _Crash

    monkeypatch.setattr(_launch, "adopt", crash)
    with pytest.raises(_Crash):
        make_executor().submit(request(1, one(2), runtime_s=300))
    monkeypatch.undo()

    executor = make_executor()  # the books say 'starting'; the runner already runs
    assert wait_for(executor, ["1"], running)["1"].allocated_gpus == 2
    assert wait_for(executor, ["1"])["1"].state is JobState.COMPLETED
    assert executor.starts() == {"1": 1}


def test_only_one_launcher_ever_claims_a_job(
    make_executor: MakeExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise _Crash

    monkeypatch.setattr(_launch, "spawn", crash)
    with pytest.raises(_Crash):
        make_executor().submit(request(1, one(1), runtime_s=300))
    monkeypatch.undo()
    executor = make_executor()
    launch = [sys.executable, str(_launch.RUNNER_SCRIPT), str(executor.job_dir("1"))]
    launchers = [subprocess.Popen([*launch, str(executor.runs_log)]) for _ in range(4)]
    codes = sorted(launcher.wait(timeout=30) for launcher in launchers)
    assert codes == [0, EXIT_ALREADY_CLAIMED, EXIT_ALREADY_CLAIMED, EXIT_ALREADY_CLAIMED]

    assert wait_for(executor, ["1"])["1"].state is JobState.COMPLETED
    assert executor.starts() == {"1": 1}


def test_dead_runner_is_a_node_failure(make_executor: MakeExecutor) -> None:
    executor = make_executor()
    job = executor.submit(request(1, one(4), command=("sleep", "30"), time_limit_s=36_000))
    wait_for(executor, [job], running)
    job_dir = executor.job_dir(job)
    deadline = time.monotonic() + 5
    while not (job_dir / "child.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    runner = json.loads((job_dir / "runner.json").read_text())
    child = json.loads((job_dir / "child.json").read_text())

    os.kill(runner["pid"], signal.SIGKILL)  # the node dies: no end file is ever written
    status = wait_for(executor, [job])[job]

    assert status.state is JobState.FAILED
    assert status.reason == "node failure"
    assert executor.capacity()[0].free_nodes_by_free_gpus == (0, 0, 0, 0, 2)
    deadline = time.monotonic() + 5
    while process_start(child["pid"]) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process_start(child["pid"]) is None  # its processes went with it


def test_concurrent_callers_share_the_site(make_executor: MakeExecutor) -> None:
    executors = [make_executor() for _ in range(4)]  # one per thread, one state_dir
    ids: list[str] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for n in range(3):
            site_job_id = executors[worker].submit(request(worker * 10 + n, one(2), runtime_s=30))
            executors[worker].capacity()
            with lock:
                ids.append(site_job_id)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(set(ids)) == 12
    statuses = wait_for(executors[0], ids, timeout_s=20)
    assert all(s.state is JobState.COMPLETED for s in statuses.values())
    assert executors[0].starts() == {i: 1 for i in ids}
    assert executors[0].capacity()[0].free_nodes_by_free_gpus == (0, 0, 0, 0, 2)
