"""The plan check's two federations in two processes at once, or one after the other here.

Each federation is one pure twin run (twin/plan_check.py ``run_federation``), most of a
year's check is spent in one of them, and they share nothing but the task: with two cores
the check takes about as long as its slower federation. A process is sent its task (the
sites and figures, a few kB) and makes its own copy of the jobs from the seed, so no million
jobs are pickled across; it sends back only the figures. The results are those of the
sequential run: the same task gives the same jobs, and each run is deterministic.

Processes start by ``forkserver``, not ``fork``: the CLI's Rich progress bars run a thread,
and a fork taken while it holds a lock would deadlock the child (services/twin/sweep_engines.py
does the same). The server imports the twin once and forks each run from there.

Progress comes back on one queue with the results; the caller's ``progress(label, done,
total)`` is called in the calling thread, at most about ten times a second per federation.
An error in a run reaches the caller as the same error (an ``AifError`` is rebuilt here: its
classes cannot be unpickled as they are); a run killed without an answer (out of memory, say)
is an ``AifError`` saying so and how to use less memory. Ctrl-C, or any error, stops both;
a check killed outright leaves no run behind (each run stops once its check is gone).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from aifactories.domain.errors import AifError
from aifactories.twin.plan_check import (
    FederationRun,
    FederationTask,
    Progress,
    named_progress,
    run_federation,
)

PROGRESS_EVERY_S = 0.1
"""The twin reports every event (millions in a year): a bar needs far fewer."""

_POLL_S = 0.2

# A run's messages: ("progress", index, (done, total)), ("done", index, FederationRun),
# ("failed", index, (class, message, attributes)) or ("crashed", index, traceback text).
_Message = tuple[str, int, Any]


def default_workers() -> int:
    """Two processes when this process may use two cores or more, else one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 1


def run_federations(
    tasks: Sequence[FederationTask], workers: int, progress: Progress | None = None
) -> list[FederationRun]:
    """Each task's run, in the tasks' order; ``workers`` processes at once (1: one after the
    other in this process)."""
    if workers <= 1 or len(tasks) <= 1:
        return [
            run_federation(
                task, _throttled(named_progress(progress, task.label)) if progress else None
            )
            for task in tasks
        ]
    return _in_processes(tasks, progress)


def _in_processes(
    tasks: Sequence[FederationTask], progress: Progress | None
) -> list[FederationRun]:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["aifactories.twin.plan_check"])
    messages: multiprocessing.Queue[_Message] = context.Queue()
    processes = [
        context.Process(
            target=_run,
            args=(index, task, messages, progress is not None, os.getpid()),
            name=f"aif twin: {task.label}",
            daemon=True,  # never outlives the check, whatever stops it
        )
        for index, task in enumerate(tasks)
    ]
    runs: dict[int, FederationRun] = {}
    silent: set[int] = set()  # ended with no answer seen at the last poll
    try:
        for process in processes:
            process.start()
        while len(runs) < len(tasks):
            try:
                kind, index, payload = messages.get(timeout=_POLL_S)
            except queue.Empty:
                silent = _ended_without_answer(processes, runs, tasks, silent)
                continue
            if kind == "progress" and progress is not None:
                progress(tasks[index].label, *payload)
            elif kind == "done":
                runs[index] = payload
            elif kind == "failed":
                raise _rebuilt(*payload)
            elif kind == "crashed":
                raise AifError(f"the twin's run of {tasks[index].label!r} failed:\n{payload}")
    finally:  # done, an error, or Ctrl-C: nothing runs on
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        messages.close()
    return [runs[i] for i in range(len(tasks))]


def _ended_without_answer(
    processes: Sequence[multiprocessing.process.BaseProcess],
    runs: dict[int, FederationRun],
    tasks: Sequence[FederationTask],
    silent: set[int],
) -> set[int]:
    """Runs whose process has ended with no answer; raises once one stays so for a whole poll
    (an answer sent just before the end may still be on its way at the first look)."""
    ended = {i for i, p in enumerate(processes) if i not in runs and p.exitcode is not None}
    for index in ended & silent:
        code = processes[index].exitcode
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        raise AifError(
            f"the twin's run of {tasks[index].label!r} stopped without an answer ({why}; "
            "signal 9 is usually the system out of memory); run the federations one after the "
            "other to use less memory (aif invest --check --sequential)"
        )
    return ended


def _run(
    index: int,
    task: FederationTask,
    messages: multiprocessing.Queue[_Message],
    report: bool,
    owner: int,
) -> None:
    """One run, in its own process: its progress, then its figures or its error, on
    ``messages``."""

    def send(done: int, total: int) -> None:
        # A check killed outright (SIGKILL) leaves no one to read the figures: the run stops
        # rather than run on for minutes (and, holding the forkserver's pipe, keep it alive).
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            raise _Orphaned from None
        if report:
            messages.put(("progress", index, (done, total)))

    try:
        run = run_federation(task, _throttled(send))
    except (KeyboardInterrupt, _Orphaned):  # Ctrl-C reaches every process: the check says so
        return
    except AifError as exc:
        messages.put(("failed", index, (type(exc), exc.message, dict(vars(exc)))))
        return
    except Exception:  # a bug: its traceback, for the report
        messages.put(("crashed", index, traceback.format_exc()))
        return
    messages.put(("done", index, run))


class _Orphaned(Exception):
    """The check that started this run has ended."""


def _rebuilt(cls: type[AifError], message: str, attributes: dict[str, Any]) -> AifError:
    """The error a run raised, as it was: its class, message and fields (``InvalidInput``'s
    ``field`` and ``limit``...), without calling a constructor whose arguments differ."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    vars(error).update(attributes)
    return error


def _throttled(report: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """``report`` at most every ``PROGRESS_EVERY_S``, and always the end."""
    last = -float("inf")

    def call(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done >= total or now - last >= PROGRESS_EVERY_S:
            last = now
            report(done, total)

    return call
