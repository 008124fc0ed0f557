"""A job that ran 0 s (NASA's log has 173) is kept: it takes its turn in the queue, starts
when it would, ends at once and lets the next job start at that same instant."""

from __future__ import annotations

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.twin.federation import projects_for
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob

SITES = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: m, name: M, country: US, supercomputer: M, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 8, gpus_per_node: 1, nodes: 4}]}
"""),
    "test",
).sites


@pytest.mark.parametrize(
    "policy", ["fifo", "easy_backfill", "first_fit", "fair_share", "tiresias_las"]
)
def test_a_zero_length_job_waits_its_turn_and_ends_at_once(policy: str) -> None:
    jobs = (
        TraceJob("long", 0.0, 100.0, 4),
        TraceJob("zero", 1.0, 0.0, 4),  # needs the whole machine: waits for "long"
        TraceJob("next", 2.0, 50.0, 4),
    )
    trace = Trace("t", None, jobs)
    setup = TwinSetup(SITES, policy, time_limit_factor=1.0)
    run = Simulation(trace, projects_for(trace, ["US"], 0), setup).run()
    by_id = {r.job_id: r for r in run.results}
    zero, after = by_id["zero"], by_id["next"]
    assert zero.start_s is not None and zero.start_s >= 100.0  # it waited behind "long"
    assert (zero.end_s, zero.runtime_s, zero.gpu_seconds) == (zero.start_s, 0.0, 0.0)
    assert zero.completed and after.completed
    if policy in ("fifo", "easy_backfill"):
        assert (zero.start_s, after.start_s) == (100.0, 100.0)  # the same instant
