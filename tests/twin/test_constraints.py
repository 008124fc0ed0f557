"""Every constraint a trace job carries (GPU models, GPU memory, countries, nodes) reaches its
spec and its placement, and the run's violation count checks the outcome from outside."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.domain.sites import Site
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.constraints import narrowed, violations, with_violations
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.setup import NOWHERE
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.trace_sites import trace_machine
from aifactories.twin.traces import read_trace
from aifactories.twin.traces.model import Trace, TraceJob

from .traces.support import SHARED_TRACES

# The first site is the one first_fit would take for everything: only the constraints keep
# jobs off it. Same speed everywhere, so the speed rules play no part.
SITES = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: small, name: S, country: IT, supercomputer: S, status: operational,
     partitions: [{name: t4, gpu_model: T4, gpu_memory_gb: 16, gpus_per_node: 4, nodes: 4}]}
  - {id: big, name: B, country: DE, supercomputer: B, status: operational,
     partitions: [{name: v100, gpu_model: V100M32, gpu_memory_gb: 32, gpus_per_node: 4,
                   nodes: 4}]}
"""),
    "test",
).sites
SPEED = {"T4": 1.0, "V100M32": 1.0}
ALIBABA = SHARED_TRACES / "alibaba-gpu-2023" / "openb_pod_list_gpuspec33.csv"


def _job(
    index: int,
    gpu_models: frozenset[str] = frozenset(),
    min_gpu_memory_gb: int = 0,
    countries: frozenset[str] = frozenset(),
) -> TraceJob:
    return TraceJob(
        f"j{index}",
        float(index),
        100.0,
        1,
        gpu_models=gpu_models,
        min_gpu_memory_gb=min_gpu_memory_gb,
        countries=countries,
    )


def _run(trace: Trace, sites: tuple[Site, ...] = SITES, policy: str = "first_fit") -> PolicyRun:
    projects = projects_for(trace, ["IT"], 0)
    return Simulation(trace, projects, TwinSetup(sites, policy, speed=SPEED)).run()


@pytest.mark.parametrize(
    "policy", ["first_fit", "easy_backfill", "fair_share", "tiresias_las", "gavel_las"]
)
def test_each_constraint_keeps_a_job_off_the_partitions_it_does_not_accept(policy: str) -> None:
    jobs = (
        _job(0, gpu_models=frozenset({"V100M32"})),
        _job(1, gpu_models=frozenset({"V100M16", "V100M32"})),  # only one of them exists
        _job(2, min_gpu_memory_gb=32),
        _job(3, countries=frozenset({"DE"})),
        _job(4),  # no constraint: first_fit's first partition
    )
    trace = Trace("t", None, jobs)
    run = _run(trace, policy=policy)  # in cycles, and in rounds for the preemptive ones
    where = {r.job_id: r.partition_id for r in run.results}
    assert {where[f"j{i}"] for i in range(4)} == {"big/v100"}
    assert where["j4"] is not None
    counted = violations(trace, run, SITES)
    assert (counted.constrained, counted.started, counted.jobs) == (4, 4, 0)


def test_a_job_no_partition_accepts_waits_and_is_not_counted_as_a_violation() -> None:
    trace = Trace("t", None, (_job(0, gpu_models=frozenset({"A100"})), _job(1)))
    run = _run(trace)
    never = next(r for r in run.results if r.job_id == "j0")
    assert never.start_s is None and never.partition_id is None
    assert violations(trace, run, SITES).jobs == 0


def test_violations_count_jobs_that_ran_where_they_may_not() -> None:
    # The same jobs, run without their constraints: the count reads the trace's, not the spec's.
    jobs = (
        _job(0, gpu_models=frozenset({"V100M32"})),
        _job(1, min_gpu_memory_gb=32, countries=frozenset({"DE"})),
        _job(2, countries=frozenset({"IT"})),
    )
    free = Trace("t", None, tuple(TraceJob(j.job_id, j.submit_s, 100.0, 1) for j in jobs))
    run = _run(free)
    assert {r.partition_id for r in run.results} == {"small/t4"}
    counted = violations(Trace("t", None, jobs), run, SITES)
    assert counted.jobs == 2  # j1 breaks two rules and counts once; j2 ran in IT as asked
    assert dict(counted.by_rule) == {"gpu_model": 1, "gpu_memory": 1, "country": 1}
    assert counted.sentence() == (
        "first_fit: 2 constraint violation(s) among 3 started of 3 constrained jobs "
        "(gpu_model: 1, gpu_memory: 1, country: 1)"
    )
    rows = with_violations([{"policy": "first_fit"}], [run], Trace("t", None, jobs), SITES)
    assert rows == [{"policy": "first_fit", "constraint_violations": 2}]


def test_narrowed_keeps_what_the_trace_accepts_and_the_job_can_run_on() -> None:
    v16, v32, t4 = "V100M16", "V100M32", "T4"
    assert narrowed(frozenset(), frozenset()) == frozenset()
    assert narrowed(frozenset({v16, v32}), frozenset()) == {v16, v32}
    assert narrowed(frozenset(), frozenset({t4})) == {t4}
    assert narrowed(frozenset({v16, v32}), frozenset({v32, t4})) == {v32}
    assert narrowed(frozenset({v16}), frozenset({t4})) == {NOWHERE}
    assert narrowed(frozenset({"v100m32"}), frozenset({v32, t4})) == {"v100m32"}  # any case


@pytest.mark.parametrize("policy", ["first_fit", "easy_backfill"])
def test_alibaba_gpuspec33_runs_every_pod_on_a_model_it_accepts(policy: str) -> None:
    if not ALIBABA.is_file():
        pytest.skip(f"the Alibaba trace is not at {ALIBABA}")
    trace = read_trace(ALIBABA, "alibaba", limit=1500)
    machine = trace_machine(ALIBABA, "alibaba")
    assert machine is not None
    sites = machine.catalogue.sites
    run = _run(trace, sites, policy)
    counted = violations(trace, run, sites)
    assert counted.constrained > 300 and counted.started == counted.constrained
    assert counted.jobs == 0
    # Without the constraints most of those pods land on a model they do not accept (the
    # issue's 1,737 of 2,092 on the whole trace): the check is not vacuous.
    stripped = Trace(
        trace.name,
        None,
        tuple(dataclasses.replace(j, gpu_models=frozenset()) for j in trace.jobs),
    )
    assert violations(trace, _run(stripped, sites, policy), sites).jobs > counted.constrained // 2


def test_alibaba_pods_carry_their_accepted_models_and_one_node() -> None:
    if not ALIBABA.is_file():
        pytest.skip(f"the Alibaba trace is not at {ALIBABA}")
    trace = read_trace(ALIBABA, "alibaba")
    constrained = [j for j in trace.jobs if j.gpu_models]
    assert len(constrained) == 2092  # the count
    assert all(j.nodes == 1 for j in trace.jobs)
    assert all(j.gpu_models == frozenset((j.gpu_model or "").split("|")) for j in constrained)
