"""Preemptive policies run in rounds in the twin: Tiresias' 2D-LAS, restart cost, determinism."""

from __future__ import annotations

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.scheduling import get_policy
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob
from aifactories.twin.traces.synthetic import generate_gavel_mixture

HOUR = 3600.0
ONE_GPU = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 1, nodes: 1}]}
"""),
    "test",
).sites


def _run(trace: Trace, policy: str, sites: tuple = ONE_GPU, **setup: float) -> PolicyRun:
    projects = projects_for(trace, ["IT"], 0)
    return Simulation(trace, projects, TwinSetup(sites, policy, **setup)).run()  # type: ignore[arg-type]


def test_a_short_job_preempts_a_long_one_that_attained_more_service() -> None:
    jobs = (
        TraceJob(job_id="long", submit_s=0.0, runtime_s=5 * HOUR, gpus=1, group="g"),
        TraceJob(job_id="short", submit_s=2 * HOUR, runtime_s=0.5 * HOUR, gpus=1, group="g"),
    )
    run = _run(Trace(name="t", source=None, jobs=jobs), "tiresias_las", restart_cost_s=30.0)
    by_id = {r.job_id: r for r in run.results}
    # long attained 1 GPU-h at 1 h: queue 1. short arrives at 2 h (a round boundary) in
    # queue 0 and takes the GPU; its end at 2.5 h is a boundary too, where long restarts,
    # pays 30 s of warm-up and runs its 3 h left.
    assert by_id["short"].start_s == 2 * HOUR and by_id["short"].end_s == 2.5 * HOUR
    assert by_id["long"].start_s == 0.0
    assert by_id["long"].end_s == pytest.approx(5.5 * HOUR + 30)
    assert by_id["long"].restarts == 1 and by_id["short"].restarts == 0
    assert by_id["long"].runtime_s == pytest.approx(5 * HOUR + 30)  # what it held the GPU
    # FIFO-like first_fit lets the long job finish first
    greedy = {
        r.job_id: r for r in _run(Trace(name="t", source=None, jobs=jobs), "first_fit").results
    }
    assert greedy["short"].start_s == 5 * HOUR


def test_jobs_arriving_mid_round_wait_for_the_next_round() -> None:
    jobs = (
        TraceJob(job_id="x", submit_s=0.0, runtime_s=100.0, gpus=1, group="g"),
        TraceJob(job_id="y", submit_s=10.0, runtime_s=100.0, gpus=1, group="g"),
    )
    run = _run(Trace(name="t", source=None, jobs=jobs), "tiresias_las")
    by_id = {r.job_id: r for r in run.results}
    assert by_id["x"].start_s == 0.0
    assert by_id["y"].start_s == 360.0  # x ended at 100 s; the GPU idles until the round


def test_preemptive_runs_are_deterministic_and_beat_first_fit_on_jct() -> None:
    sites = parse_catalogue(
        yaml.safe_load("""
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 4}]}
"""),
        "test",
    ).sites
    # 0.45 jobs/h offers about 90% of the 16 GPUs: queues form and LAS pays off
    trace = generate_gavel_mixture(150, 0.45, seed=2)
    first, second = _run(trace, "tiresias_las", sites), _run(trace, "tiresias_las", sites)
    assert first.results == second.results
    assert all(r.end_s is not None for r in first.results)
    assert sum(r.restarts for r in first.results) > 0

    def mean_jct(run: PolicyRun) -> float:
        return sum(r.end_s - r.submit_s for r in run.results if r.end_s) / len(run.results)

    assert mean_jct(first) < mean_jct(_run(trace, "first_fit", sites))


def test_the_broker_refuses_a_preemptive_policy() -> None:
    with pytest.raises(InvalidInput, match="the twin runs it: aif simulate --policy tiresias_las"):
        get_policy("tiresias_las")
