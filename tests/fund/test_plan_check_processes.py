"""The plan check's two federations in two processes (services/fund/plan_processes.py): the
same figures as one after the other, the same errors, and Ctrl-C stops every process."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from aifactories.catalogue.loader import load_default_catalogue
from aifactories.domain.errors import AifError, InvalidInput
from aifactories.services.fund.invest import plan_from_file
from aifactories.services.fund.plan_check import check_plan_in_twin
from aifactories.services.fund.plan_processes import _ended_without_answer
from aifactories.twin.plan_check import plan_tasks

CATALOGUE = load_default_catalogue()
TODAY = tuple(CATALOGUE.operational_sites)


@pytest.mark.slow
def test_two_processes_give_the_figures_of_one(tmp_path: Path) -> None:
    run = plan_from_file(None, CATALOGUE)
    seen: dict[str, list[tuple[int, int]]] = {}

    def progress(label: str, done: int, total: int) -> None:
        seen.setdefault(label, []).append((done, total))

    one = check_plan_in_twin(run, CATALOGUE, tmp_path / "one", days=0.5, workers=1)
    two = check_plan_in_twin(
        run, CATALOGUE, tmp_path / "two", days=0.5, workers=2, progress=progress
    )
    assert two.check == one.check
    assert one.check.before.jobs > 100 and one.check.before != one.check.after
    # a bar per federation, reported from its process, ending with every job accounted for
    assert set(seen) == {"today", "with the plan"}
    for reports in seen.values():
        assert reports[-1] == (one.check.jobs, one.check.jobs)


@pytest.mark.slow
def test_an_error_in_a_run_reaches_the_caller_as_it_is(tmp_path: Path) -> None:
    run = plan_from_file(None, CATALOGUE)
    errors = []
    for workers in (1, 2):
        with pytest.raises(InvalidInput) as caught:
            check_plan_in_twin(
                run, CATALOGUE, tmp_path, days=0.5, policy="no such", workers=workers
            )
        errors.append(caught.value)
    here, there = errors
    assert type(there) is type(here) and str(there) == str(here)
    assert (there.field, there.detail, there.limit) == (here.field, here.detail, here.limit)
    assert there.field == "policy" and "easy_backfill" in there.message


class _Ended:
    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode


def test_a_run_killed_without_an_answer_is_named_with_what_to_do() -> None:
    tasks = plan_tasks(TODAY, (), demand_a100_hours_per_year=1e6, days=1)
    processes = [_Ended(-9), _Ended(None)]
    # the first look may precede an answer still on its way: no error yet
    silent = _ended_without_answer(processes, {}, tasks, set())  # type: ignore[arg-type]
    assert silent == {0}
    with pytest.raises(AifError) as caught:
        _ended_without_answer(processes, {}, tasks, silent)  # type: ignore[arg-type]
    assert "'today'" in caught.value.message and "signal 9" in caught.value.message
    assert "--sequential" in caught.value.message


_LONG_CHECK = """
from pathlib import Path
from aifactories.catalogue.loader import load_default_catalogue
from aifactories.services.fund.invest import plan_from_file
from aifactories.services.fund.plan_check import check_plan_in_twin
catalogue = load_default_catalogue()
check_plan_in_twin(plan_from_file(None, catalogue), catalogue, Path(__import__("sys").argv[1]),
                   days=30, workers=2)
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigint-to-the-check", "check-killed"])
def test_ctrl_c_stops_both_federations(tmp_path: Path, how: str) -> None:
    """Ctrl-C signals the terminal's whole process group; a signal to the check alone must
    stop its processes too, and a check killed outright must leave no run behind."""
    check = subprocess.Popen(
        [sys.executable, "-c", _LONG_CHECK, str(tmp_path)],
        start_new_session=True,  # a group of its own, as a terminal gives a command
        stderr=subprocess.PIPE,
    )
    parent = psutil.Process(check.pid)
    runs: list[psutil.Process] = []
    for _ in range(600):  # both runs started (a forkserver, then its two children)
        runs = _forked_runs(parent)
        if len(runs) == 2 or check.poll() is not None:
            break
        time.sleep(0.1)
    assert len(runs) == 2, check.stderr.read() if check.stderr else ""
    descendants = parent.children(recursive=True)
    if how == "ctrl-c":
        os.killpg(check.pid, signal.SIGINT)
    else:
        check.send_signal(signal.SIGINT if how == "sigint-to-the-check" else signal.SIGKILL)
    try:
        code = check.wait(timeout=60)
    finally:
        _, alive = psutil.wait_procs(descendants, timeout=60)
        for process in [*alive, parent]:  # do not leave a year's run behind if the test fails
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    assert alive == []
    assert code != 0
    if how != "check-killed":
        assert check.stderr is not None and b"KeyboardInterrupt" in check.stderr.read()


def _forked_runs(parent: psutil.Process) -> list[psutil.Process]:
    """The check's runs: the children of its forkserver."""
    try:
        servers = [p for p in parent.children() if "forkserver" in " ".join(p.cmdline())]
        return [run for server in servers for run in server.children()]
    except psutil.NoSuchProcess:  # one ended while we looked
        return []


def test_a_task_carries_the_sites_and_figures_never_the_jobs() -> None:
    tasks = plan_tasks(TODAY, (), demand_a100_hours_per_year=1e9, days=365)
    assert all(len(pickle.dumps(t)) < 100_000 for t in tasks)
