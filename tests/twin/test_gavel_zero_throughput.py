"""A job whose throughput on a GPU model is 0 cannot run there: no policy is ever offered it.

Gavel's throughputs give 0.0 where a job does not fit in a GPU's memory (ResNet-50 at batch
size 128 on 2, 4 or 8 K80s). The twin used to start such jobs there and divide by zero: FIFO
on a static trace as soon as the V100s and P100s were full, Gavel's round plan when a gang
job's planned GPUs were not free together and it fell back to the first offered partition.
"""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.twin.federation import projects_for
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.gavel import (
    gavel_speed_matrix,
    generate_gavel_continuous,
    load_gavel_throughputs,
)
from aifactories.twin.traces.model import Trace, TraceJob
from tests.twin.traces.support import SHARED_TRACES

# Gavel's layout, scaled down: one 4-GPU server of each type.
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
SPEEDS = {
    "big": {"V100": 1.0, "P100": 0.7, "K80": 0.0},  # out of memory on a K80
    "small": {"V100": 1.0, "P100": 0.6, "K80": 0.3},
    "nowhere": {"V100": 0.0, "P100": 0.0, "K80": 0.0},
}
MODEL_OF = {p.id: p.gpu_model for s in SITES for p in s.partitions}


def _static(classes: list[str], gpus: int = 2) -> Trace:
    """Every job at time 0 (Gavel's static trace), one per class in the list."""
    jobs = tuple(
        TraceJob(
            job_id=f"j{i:03d}",
            submit_s=0.0,
            runtime_s=1800.0 + 300.0 * (i % 5),
            gpus=gpus,
            group="g",
            workload_class=cls,
        )
        for i, cls in enumerate(classes)
    )
    return Trace(name="static", source=None, jobs=jobs)


def _run(policy: str, trace: Trace) -> Simulation:
    setup = TwinSetup(SITES, policy, speed_by_class=SPEEDS, restart_cost_s=0.0)
    simulation = Simulation(trace, projects_for(trace, ["US"], 0), setup)
    simulation.run()
    return simulation


def _models_used(simulation: Simulation, trace: Trace, cls: str) -> set[str]:
    """Every GPU model a job of ``cls`` was started on, over all its runs."""
    index = {f"{i + 1}": job.workload_class for i, job in enumerate(trace.jobs)}
    return {MODEL_OF[p.partition_id] for p in simulation.placements if index[str(p.job_id)] == cls}


@pytest.mark.parametrize(
    "policy", ["fifo", "first_fit", "easy_backfill", "gavel_las", "gavel_las_agnostic"]
)
def test_no_policy_starts_a_job_where_its_throughput_is_zero(policy: str) -> None:
    # Enough 2-GPU jobs that the V100 and P100 servers are full while the K80s are free.
    trace = _static(["big", "small"] * 6)
    simulation = _run(policy, trace)
    assert _models_used(simulation, trace, "big") <= {"V100", "P100"}
    assert "K80" in _models_used(simulation, trace, "small")  # the K80s were on offer


def test_a_job_with_no_throughput_anywhere_waits_and_the_run_ends() -> None:
    trace = _static(["nowhere", "small"])
    simulation = _run("fifo", trace)
    assert [str(p.job_id) for p in simulation.placements] == ["2"]


def test_a_job_runs_wherever_every_speed_is_positive() -> None:
    trace = _static(["small"] * 6)
    simulation = _run("first_fit", trace)
    assert _models_used(simulation, trace, "small") == {"V100", "P100", "K80"}


GAVEL_FILE = SHARED_TRACES / "gavel-throughputs" / "simulation_throughputs.json"


@pytest.mark.skipif(not GAVEL_FILE.exists(), reason=f"Gavel's throughputs not at {GAVEL_FILE}")
@pytest.mark.parametrize("policy", ["fifo", "gavel_las"])
def test_gavel_multi_gpu_jobs_on_four_gpu_servers_complete(policy: str) -> None:
    """A slice of Gavel's multi-GPU workload, all at time 0, on 3 x 4-GPU servers per type:
    it crashed with a ZeroDivisionError before (the twin started a ResNet-50 on K80s)."""
    throughputs = load_gavel_throughputs(GAVEL_FILE)
    generated = generate_gavel_continuous(150, 3.0, 0, throughputs, scale_factor_one_only=False)
    trace = dataclasses.replace(
        generated, jobs=tuple(dataclasses.replace(j, submit_s=0.0) for j in generated.jobs)
    )
    sites = parse_catalogue(
        yaml.safe_load(
            yaml.safe_dump(
                {
                    "sites": [
                        {
                            "id": "gavel",
                            "name": "Gavel",
                            "country": "US",
                            "supercomputer": "Gavel",
                            "status": "operational",
                            "partitions": [
                                {
                                    "name": m.lower(),
                                    "gpu_model": m,
                                    "gpu_memory_gb": 16,
                                    "gpus_per_node": 4,
                                    "nodes": 3,
                                }
                                for m in ("V100", "P100", "K80")
                            ],
                        }
                    ]
                }
            )
        ),
        "test",
    ).sites
    matrix = gavel_speed_matrix(throughputs, (1, 2, 4, 8))
    setup = TwinSetup(sites, policy, speed_by_class=matrix, restart_cost_s=0.0)
    run = Simulation(trace, projects_for(trace, ["US"], 0), setup).run()
    assert all(r.end_s is not None for r in run.results)
    for job, result in zip(trace.jobs, sorted(run.results, key=lambda r: r.job_id), strict=True):
        assert result.job_id == job.job_id
        assert matrix[job.workload_class or ""][result.gpu_model or ""] > 0
