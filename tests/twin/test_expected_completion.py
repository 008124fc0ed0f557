"""Expected completion in the twin: the setup's speed matrix reaches the policy through the
snapshot, and placing by it beats Slurm's sibling rule on a small heterogeneous federation."""

from __future__ import annotations

import statistics

import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.scheduling.speeds import SpeedTable
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.simulation import Simulation, TwinSetup, speed_of
from aifactories.twin.traces.model import Trace, TraceJob
from aifactories.twin.traces.synthetic import generate_gavel_mixture

# The slow GPU first in the catalogue, as a sibling rule or first fit meets it.
SITES = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: slow, name: Slow, country: IT, supercomputer: S, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 2}]}
  - {id: fast, name: Fast, country: DE, supercomputer: F, status: operational,
     partitions: [{name: p, gpu_model: H100, gpu_memory_gb: 80, gpus_per_node: 4, nodes: 2}]}
"""),
    "test",
).sites
BY_CLASS = {"vision": {"A100": 1.5, "H100": 1.0}}  # a class the H100 runs no faster


def _run(trace: Trace, policy: str) -> PolicyRun:
    setup = TwinSetup(SITES, policy, speed_by_class=BY_CLASS)
    return Simulation(trace, projects_for(trace, ["IT", "DE"], 0), setup).run()


def test_the_setup_speed_matrix_reaches_the_policy() -> None:
    jobs = (
        TraceJob(job_id="plain", submit_s=0.0, runtime_s=3600.0, gpus=1, group="g"),
        TraceJob(
            job_id="vision", submit_s=0.0, runtime_s=3600.0, gpus=1, group="g",
            workload_class="vision",
        ),
    )  # fmt: skip
    run = _run(Trace(name="t", source=None, jobs=jobs), "expected_completion")
    by_id = {r.job_id: r for r in run.results}
    assert by_id["plain"].site_id == "fast"  # default row: H100 2.0
    assert by_id["vision"].site_id == "slow"  # its own row: the A100 is faster
    assert by_id["vision"].runtime_s == 2400.0
    # the snapshot's table says what the twin's own speed_of says
    setup = TwinSetup(SITES, "expected_completion", speed_by_class=BY_CLASS)
    table = SpeedTable.of(setup.speed, setup.speed_by_class)
    for job in jobs:
        for model in ("A100", "H100", "K80"):
            assert table.speed(job.workload_class, model) == speed_of(job, model, setup)


def test_beats_slurm_siblings_mean_completion_on_heterogeneous_gpus() -> None:
    # 16 GPUs, half of them twice as fast; about 0.8 of what they can take.
    trace = generate_gavel_mixture(150, 0.55, seed=5)
    ours = _run(trace, "expected_completion")
    siblings = _run(trace, "slurm_siblings")

    def mean_completion(run: PolicyRun) -> float:
        assert all(r.end_s is not None for r in run.results)
        return statistics.fmean(r.end_s - r.submit_s for r in run.results if r.end_s)

    assert mean_completion(ours) < 0.9 * mean_completion(siblings)
