"""Gavel's makespan policy in the twin: on a static trace (every job at time 0) it finishes
the lot sooner than FIFO and than its heterogeneity-agnostic baseline, and repeats."""

from __future__ import annotations

import random

import pytest

from aifactories.twin.federation import projects_for
from aifactories.twin.metrics import makespan
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob
from tests.twin.test_gavel_policies import SITES, SPEEDS


def _static(jobs: int = 40, seed: int = 2) -> Trace:
    rng = random.Random(seed)
    return Trace(
        name="static",
        source=None,
        jobs=tuple(
            TraceJob(
                job_id=f"j{i:03d}",
                submit_s=0.0,
                runtime_s=rng.uniform(1800, 8 * 3600),
                gpus=rng.choice((1, 1, 1, 2)),
                group="g",
                workload_class=rng.choice(("picky", "flat")),
            )
            for i in range(jobs)
        ),
    )


def _run(policy: str, trace: Trace) -> PolicyRun:
    setup = TwinSetup(SITES, policy, speed_by_class=SPEEDS, restart_cost_s=0.0)
    return Simulation(trace, projects_for(trace, ["US"], 0), setup).run()


@pytest.fixture(scope="module")
def trace() -> Trace:
    return _static()


def test_makespan_policy_beats_fifo_and_the_agnostic_one(trace: Trace) -> None:
    runs = {p: _run(p, trace) for p in ("fifo", "gavel_makespan", "gavel_makespan_agnostic")}
    for run in runs.values():
        assert all(r.end_s is not None for r in run.results)
    spans = {p: makespan(run.results) for p, run in runs.items()}
    assert spans["gavel_makespan"] < 0.9 * spans["fifo"]
    assert spans["gavel_makespan"] < spans["gavel_makespan_agnostic"]


def test_makespan_policy_repeats(trace: Trace) -> None:
    assert _run("gavel_makespan", trace).results == _run("gavel_makespan", trace).results
