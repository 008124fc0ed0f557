"""The twin drives the production run_cycle in virtual time, deterministically."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.twin.events import CapacityChange, SiteOutage, TwinEvent
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob
from aifactories.twin.traces.synthetic import generate_gavel_mixture

SITES = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 2}]}
  - {id: b, name: B, country: DE, supercomputer: B, status: operational,
     partitions: [{name: p, gpu_model: H100, gpu_memory_gb: 80, gpus_per_node: 4, nodes: 2,
                   billing_weight: 2}]}
"""),
    "test",
).sites


# An outage of each site, a shrink of a (busy nodes drain) and a growth back and beyond.
EVENTS: tuple[TwinEvent, ...] = (
    SiteOutage("a", 20_000.0, 60_000.0),
    CapacityChange("a", "p", 80_000.0, 1),
    SiteOutage("b", 100_000.0, 101_000.0),
    CapacityChange("a", "p", 150_000.0, 3),
)


def _run(trace: Trace, policy: str, seed: int = 0, events: tuple[TwinEvent, ...] = ()) -> PolicyRun:
    projects = projects_for(trace, ["IT", "DE"], seed)
    return Simulation(trace, projects, TwinSetup(SITES, policy, events=events)).run()


@pytest.mark.parametrize("events", [(), EVENTS], ids=["steady", "disrupted"])
@pytest.mark.parametrize("policy", ["first_fit", "earliest_start", "fair_share"])
def test_same_inputs_same_run(policy: str, events: tuple[TwinEvent, ...]) -> None:
    trace = generate_gavel_mixture(300, 4.0, seed=3)
    first, second = _run(trace, policy, events=events), _run(trace, policy, events=events)
    assert first.results == second.results  # everything but the measured cycle times
    assert first.utilisation_samples == second.utilisation_samples
    assert first.queue_samples == second.queue_samples
    assert (first.restarts, first.lost_gpu_hours) == (second.restarts, second.lost_gpu_hours)
    assert first.horizon_end_s == second.horizon_end_s
    assert len(first.results) == 300
    assert all(r.end_s is not None for r in first.results)
    assert (first.restarts > 0) == bool(events)


def test_gang_jobs_wait_for_the_whole_partition_and_speed_applies() -> None:
    jobs = (
        TraceJob(job_id="big-1", submit_s=0.0, runtime_s=3600.0, gpus=16, group="g"),
        TraceJob(job_id="big-2", submit_s=10.0, runtime_s=3600.0, gpus=16, group="g"),
        TraceJob(job_id="small", submit_s=20.0, runtime_s=600.0, gpus=2, group="g"),
    )
    trace = Trace(name="t", source=None, jobs=jobs)
    run = _run(trace, "first_fit")
    by_id = {r.job_id: r for r in run.results}
    # 16 GPUs fit nowhere (8 per site): never started, reported as such
    assert by_id["big-1"].start_s is None and by_id["big-2"].start_s is None
    assert by_id["small"].start_s == 20.0
    assert by_id["small"].site_id == "a"  # first fit: catalogue order
    assert by_id["small"].runtime_s == 600.0  # A100 is the reference speed


def test_a_full_partition_makes_later_jobs_wait_until_an_end() -> None:
    jobs = tuple(
        TraceJob(job_id=f"j{i}", submit_s=float(i), runtime_s=1000.0, gpus=8, group="g")
        for i in range(3)
    )
    run = _run(Trace(name="t", source=None, jobs=jobs), "first_fit")
    by_id = {r.job_id: r for r in run.results}
    assert by_id["j0"].site_id == "a" and by_id["j0"].start_s == 0.0
    assert by_id["j1"].site_id == "b" and by_id["j1"].start_s == 1.0
    assert by_id["j1"].runtime_s == pytest.approx(500.0)  # H100 runs twice as fast
    # j2 waits for the first partition to free: j1 on the H100s ends at 501
    assert by_id["j2"].start_s == pytest.approx(501.0) and by_id["j2"].site_id == "b"
    assert dataclasses.asdict(by_id["j2"])["gpus"] == 8
    assert run.queue_samples[0] == (0.0, 0)
