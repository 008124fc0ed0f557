"""Fidelity gate: FIFO and EASY on the NASA Ames iPSC/860 log (128 nodes), job by job.

The reference below is written from the textbook definitions, independently of the
platform's scheduling code (no import from aifactories.scheduling): a 128-processor machine,
a queue in arrival order, and at every instant where a job arrives or ends

* FIFO starts queue heads while they fit;
* EASY does the same, then computes the head's shadow time (when enough processors are
  back, by the running jobs' estimated ends) and the extra processors at that time, and
  starts any later job that fits now and either ends by the shadow time or uses only extra
  processors (Lifka 1995; Mu'alem and Feitelson 2001).


Estimates are exact (the log has no requested times; the twin runs with time_limit_factor 1,
so each job's time limit is its runtime). The log's 173 jobs that ran 0 s are kept: a
zero-length job takes its turn in the queue, starts when it would and ends at once; its
estimate is 1 s, as a time limit is whole seconds and at least 1. The twin must give the
same start time to every job, and EASY must lower mean wait and bounded slowdown against
FIFO, as the literature reports. The full log runs as a benchmark: bench/bench_fidelity.py.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces import read_trace
from aifactories.twin.traces.model import Trace
from aifactories.twin.traces.transform import scale_load

from .traces.support import SHARED_TRACES

NASA = SHARED_TRACES / "pwa-nasa-ipsc-1993" / "NASA-iPSC-1993-3.1-cln.swf.gz"
PROCESSORS = 128
JOBS = 2500  # the first 2,500 jobs; the whole log runs in bench/bench_fidelity.py
# The log records start times as submit times, so replayed as is nobody waits (checked
# below). Arrivals 1.5 times as fast make about half the jobs queue under FIFO.
LOAD = 1.5

IPSC = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: ipsc, name: NASA Ames iPSC/860, country: US, supercomputer: iPSC/860,
     status: operational,
     partitions: [{name: cube, gpu_model: A100, gpu_memory_gb: 8, gpus_per_node: 1,
                   nodes: 128}]}
"""),
    "ipsc",
).sites


@dataclass
class _Job:
    index: int
    submit: float
    runtime: float
    procs: int
    start: float | None = None

    @property
    def estimate(self) -> float:
        return max(1.0, self.runtime)


def reference_starts(trace: Trace, easy: bool) -> list[float]:
    jobs = [_Job(i, j.submit_s, j.runtime_s, j.gpus) for i, j in enumerate(trace.jobs)]
    arrivals = sorted(jobs, key=lambda j: (j.submit, j.index))
    free = PROCESSORS
    queue: list[_Job] = []
    running: list[tuple[float, int, float]] = []  # (end, index, estimated end), a heap
    by_index = {j.index: j for j in jobs}
    a = 0
    while a < len(arrivals) or running or queue:
        now = min(
            arrivals[a].submit if a < len(arrivals) else float("inf"),
            running[0][0] if running else float("inf"),
        )
        while running and running[0][0] <= now:
            _, index, _ = heapq.heappop(running)
            free += by_index[index].procs
        while a < len(arrivals) and arrivals[a].submit <= now:
            queue.append(arrivals[a])
            a += 1

        def start(job: _Job, at: float) -> None:
            nonlocal free
            job.start = at
            free -= job.procs
            heapq.heappush(running, (at + job.runtime, job.index, at + job.estimate))
            queue.remove(job)

        while queue and queue[0].procs <= free:
            start(queue[0], now)
        if easy and queue:
            head = queue[0]
            available, shadow = free, None
            # by estimated ends: a zero-length job that started now is expected to hold its
            # processors for its estimate (1 s), though it ends at once
            estimated = sorted((expected, i) for _, i, expected in running)
            for end, index in estimated:
                available += by_index[index].procs
                if available >= head.procs:
                    shadow = end
                    break
            assert shadow is not None
            # every processor back by the shadow time counts, also of jobs ending with it
            available = free + sum(by_index[i].procs for end, i in estimated if end <= shadow)
            extra = available - head.procs
            for job in list(queue[1:]):
                if job.procs > free:
                    continue
                if now + job.estimate <= shadow:
                    start(job, now)
                elif job.procs <= extra:
                    start(job, now)
                    extra -= job.procs
        if not running and queue and a >= len(arrivals):
            raise AssertionError("reference stalled")
    return [j.start for j in jobs if j.start is not None]


def _twin(trace: Trace, policy: str) -> PolicyRun:
    setup = TwinSetup(IPSC, policy, time_limit_factor=1.0)
    return Simulation(trace, projects_for(trace, ["US"], 0), setup).run()


_RUNS: dict[str, PolicyRun] = {}


def _cached(trace: Trace, policy: str) -> PolicyRun:
    """Each policy's run on the gate's trace, once for the module (the runs are pure)."""
    if policy not in _RUNS:
        _RUNS[policy] = _twin(trace, policy)
    return _RUNS[policy]


@pytest.fixture(scope="module")
def nasa() -> Trace:
    if not NASA.exists():
        pytest.skip(f"NASA iPSC log not found at {NASA} (the shared folder beside the repo)")
    return scale_load(read_trace(Path(NASA), "swf", limit=JOBS), LOAD)


@pytest.mark.parametrize(("policy", "easy"), [("fifo", False), ("easy_backfill", True)])
def test_start_times_equal_the_reference_job_by_job(nasa: Trace, policy: str, easy: bool) -> None:
    expected = reference_starts(nasa, easy)
    run = _cached(nasa, policy)
    starts = {r.job_id: r.start_s for r in run.results}
    got = [starts[j.job_id] for j in nasa.jobs]
    assert len(expected) == len(got) == JOBS
    assert sum(1 for j in nasa.jobs if j.runtime_s == 0) == 23  # kept, and in the gate
    mismatches = [
        (j.job_id, e, g) for j, e, g in zip(nasa.jobs, expected, got, strict=True) if e != g
    ]
    assert mismatches == [], f"{len(mismatches)} start times differ, first: {mismatches[:5]}"
    assert sum(1 for j, e in zip(nasa.jobs, expected, strict=True) if e > j.submit_s) > 500


def test_the_log_as_recorded_has_no_waits(nasa: Trace) -> None:
    recorded = scale_load(nasa, 1 / LOAD)
    assert all(r.start_s == r.submit_s for r in _twin(recorded, "fifo").results)


def test_easy_lowers_wait_and_bounded_slowdown(nasa: Trace) -> None:
    def figures(run: PolicyRun) -> tuple[float, float]:
        waits, slowdowns = [], []
        for r in run.results:
            assert r.start_s is not None and r.end_s is not None
            wait = r.start_s - r.submit_s
            waits.append(wait)
            slowdowns.append(max(1.0, (wait + r.runtime_s) / max(r.runtime_s, 10.0)))
        return sum(waits) / len(waits), sum(slowdowns) / len(slowdowns)

    fifo_wait, fifo_slowdown = figures(_cached(nasa, "fifo"))
    easy_wait, easy_slowdown = figures(_cached(nasa, "easy_backfill"))
    assert easy_wait < fifo_wait
    assert easy_slowdown < fifo_slowdown
