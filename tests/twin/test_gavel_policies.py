"""Gavel's policies in the twin: heterogeneity awareness pays, FTF completes, runs repeat."""

from __future__ import annotations

import random

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob

SITES = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: g, name: G, country: US, supercomputer: G, status: operational,
     partitions: [
       {name: v100, gpu_model: V100, gpu_memory_gb: 16, gpus_per_node: 4, nodes: 1},
       {name: p100, gpu_model: P100, gpu_memory_gb: 16, gpus_per_node: 4, nodes: 1},
       {name: k80, gpu_model: K80, gpu_memory_gb: 12, gpus_per_node: 4, nodes: 1}]}
"""),
    "test",
).sites
# One class gains a lot from a V100 (like ResNet-50, 7x over a K80), one hardly (like A3C).
SPEEDS = {
    "picky": {"V100": 1.0, "P100": 0.6, "K80": 0.14},
    "flat": {"V100": 1.0, "P100": 0.8, "K80": 0.5},
}


def _trace(jobs: int = 60, seed: int = 1) -> Trace:
    rng = random.Random(seed)
    now, out = 0.0, []
    for i in range(jobs):
        now += rng.expovariate(1 / 1500)
        out.append(
            TraceJob(
                job_id=f"j{i:03d}",
                submit_s=round(now, 3),
                runtime_s=rng.uniform(1800, 6 * 3600),
                gpus=1,
                group="g",
                workload_class=rng.choice(("picky", "flat")),
            )
        )
    return Trace(name="mixed", source=None, jobs=tuple(out))


def _run(policy: str, trace: Trace) -> PolicyRun:
    setup = TwinSetup(SITES, policy, speed_by_class=SPEEDS, restart_cost_s=0.0)
    return Simulation(trace, projects_for(trace, ["US"], 0), setup).run()


def _mean_jct(run: PolicyRun) -> float:
    assert all(r.end_s is not None for r in run.results)
    return sum(r.end_s - r.submit_s for r in run.results if r.end_s) / len(run.results)


@pytest.fixture(scope="module")
def trace() -> Trace:
    return _trace()


def test_heterogeneity_aware_las_beats_the_agnostic_one(trace: Trace) -> None:
    aware, agnostic = _run("gavel_las", trace), _run("gavel_las_agnostic", trace)
    assert _mean_jct(aware) < 0.95 * _mean_jct(agnostic)

    # picky jobs get the V100s more often under the aware policy
    def picky_on_v100(run: PolicyRun) -> float:
        classes = {j.job_id: j.workload_class for j in trace.jobs}
        picky = [r for r in run.results if classes[r.job_id] == "picky"]
        return sum(r.gpu_model == "V100" for r in picky) / len(picky)

    assert picky_on_v100(aware) > picky_on_v100(agnostic)


def test_finish_time_fairness_completes_and_repeats(trace: Trace) -> None:
    first, second = _run("gavel_ftf", trace), _run("gavel_ftf", trace)
    assert first.results == second.results
    assert _mean_jct(first) > 0
    assert first.restarts > 0  # jobs move between GPU types across rounds
