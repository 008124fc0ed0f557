"""The twin skips a cycle only where the broker's cycle would start nothing: FIFO behind a
head that waits for capacity, or no GPU free. A head that can never fit, or whose project
has no budget left, blocks nobody (run_cycle), so jobs arriving behind it start at once."""

from __future__ import annotations

import dataclasses

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


def _starts(
    trace: Trace, policy: str, budgets: dict[str, int] | None = None
) -> dict[str, float | None]:
    projects = projects_for(trace, ["US"], 0)
    for group, seconds in (budgets or {}).items():
        projects[group] = dataclasses.replace(projects[group], granted_gpu_seconds=seconds)
    setup = TwinSetup(SITES, policy, time_limit_factor=1.0)
    run = Simulation(trace, projects, setup).run()
    return {r.job_id: r.start_s for r in run.results}


@pytest.mark.parametrize("policy", ["fifo", "easy_backfill", "first_fit"])
def test_a_job_behind_a_head_that_never_fits_starts_on_arrival(policy: str) -> None:
    trace = Trace("t", None, (TraceJob("big", 0.0, 100.0, 8), TraceJob("small", 10.0, 50.0, 1)))
    assert _starts(trace, policy) == {"big": None, "small": 10.0}


def test_a_job_behind_a_head_without_budget_starts_on_arrival() -> None:
    jobs = (
        TraceJob("poor", 0.0, 100.0, 1, group="poor"),  # its project has 10 GPU-seconds
        TraceJob("rich", 10.0, 50.0, 1, group="rich"),
    )
    starts = _starts(Trace("t", None, jobs), "fifo", budgets={"poor": 10})
    assert starts == {"poor": None, "rich": 10.0}


def test_fifo_behind_a_head_waiting_for_capacity_starts_nothing_until_it_frees() -> None:
    jobs = (
        TraceJob("first", 0.0, 100.0, 3),
        TraceJob("head", 1.0, 10.0, 4),  # waits for "first"
        TraceJob("behind", 2.0, 10.0, 1),  # fits now, but FIFO keeps it behind the head
    )
    assert _starts(Trace("t", None, jobs), "fifo") == {"first": 0.0, "head": 100.0, "behind": 110.0}
