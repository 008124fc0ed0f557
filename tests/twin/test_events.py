"""Outages and capacity changes in the twin: requeues, restarts, lost GPU time, draining."""

from __future__ import annotations

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.domain.sites import Site
from aifactories.twin.events import CapacityChange, SiteOutage, TwinEvent
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics import utilisation_by_site
from aifactories.twin.metrics.results import JobResult, PolicyRun
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob
from aifactories.twin.traces.synthetic import generate_gavel_mixture

# a: 2 nodes of 4 A100s (reference speed); b: 2 nodes of 4 H100s (twice as fast).
SITES = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 2}]}
  - {id: b, name: B, country: DE, supercomputer: B, status: operational,
     partitions: [{name: p, gpu_model: H100, gpu_memory_gb: 80, gpus_per_node: 4, nodes: 2}]}
"""),
    "test",
).sites
ONLY_A = SITES[:1]


def _job(name: str, submit_s: float, runtime_s: float, gpus: int) -> TraceJob:
    return TraceJob(job_id=name, submit_s=submit_s, runtime_s=runtime_s, gpus=gpus, group="g")


def _simulation(
    jobs: tuple[TraceJob, ...],
    events: tuple[TwinEvent, ...],
    sites: tuple[Site, ...] = SITES,
    policy: str = "first_fit",
) -> Simulation:
    trace = Trace(name="t", source=None, jobs=jobs)
    projects = projects_for(trace, ["IT", "DE"], 0)
    return Simulation(trace, projects, TwinSetup(sites, policy, events=events))


def _by_id(run: PolicyRun) -> dict[str, JobResult]:
    return {r.job_id: r for r in run.results}


def test_an_outage_requeues_running_jobs_and_they_restart_elsewhere() -> None:
    jobs = (_job("j0", 0.0, 1000.0, 8), _job("j1", 200.0, 300.0, 4))
    run = _simulation(jobs, (SiteOutage("a", 100.0, 5000.0),)).run()
    j0, j1 = _by_id(run)["j0"], _by_id(run)["j1"]
    # j0 ran 100 s at a, was lost, and started again from the beginning at b (H100: 500 s).
    assert (j0.site_id, j0.start_s, j0.end_s, j0.runtime_s) == ("b", 100.0, 600.0, 500.0)
    assert j0.submit_s == 0.0  # requeued with its original submission time
    assert (j0.restarts, j0.lost_gpu_seconds) == (1, 800.0)
    assert j0.gpu_seconds == 8 * 500 + 800  # every run: what the project was charged for
    assert j0.energy_kwh > 0 and j0.carbon_kg >= 0
    # j1 arrives while a is down and b is full: it waits for b, never goes to a.
    assert (j1.site_id, j1.start_s, j1.restarts) == ("b", 600.0, 0)
    assert run.restarts == 1 and run.lost_gpu_hours == pytest.approx(800 / 3600)
    # Nothing pending or running after 750: the later outage end does not stretch the run.
    assert run.horizon_end_s == 750.0


def test_jobs_wait_for_the_site_to_come_back() -> None:
    jobs = (_job("j0", 0.0, 1000.0, 4), _job("j1", 0.0, 1000.0, 4), _job("late", 500.0, 10.0, 1))
    simulation = _simulation(jobs, (SiteOutage("a", 400.0, 2000.0),), sites=ONLY_A)
    run = simulation.run()
    by_id = _by_id(run)
    for name in ("j0", "j1"):
        assert (by_id[name].start_s, by_id[name].end_s, by_id[name].restarts) == (2000.0, 3000.0, 1)
        assert by_id[name].lost_gpu_seconds == 4 * 400.0
    assert by_id["late"].start_s == 3000.0  # behind both restarted jobs, which fill the site
    assert run.restarts == 2 and run.lost_gpu_hours == pytest.approx(3200 / 3600)
    # The down site counts 0 of 0 GPUs, so the outage is neither idle nor busy capacity.
    down = [s for s in run.utilisation_samples if 400.0 <= s[0] < 2000.0]
    assert down and all(s[2:] == (0, 0) for s in down)
    assert len(simulation.placements) == 5  # two lost runs, then three starts


def test_a_job_ending_as_the_site_fails_completes() -> None:
    jobs = (_job("j0", 0.0, 100.0, 4), _job("j1", 0.0, 300.0, 4))
    run = _simulation(jobs, (SiteOutage("a", 100.0, 200.0),), sites=ONLY_A).run()
    by_id = _by_id(run)
    assert (by_id["j0"].end_s, by_id["j0"].restarts) == (100.0, 0)
    assert (by_id["j1"].start_s, by_id["j1"].end_s, by_id["j1"].restarts) == (200.0, 500.0, 1)


def test_overlapping_outages_keep_the_site_down_until_the_last_ends() -> None:
    events = (SiteOutage("a", 100.0, 300.0), SiteOutage("a", 50.0, 150.0))
    run = _simulation((_job("j0", 0.0, 1000.0, 4),), events, sites=ONLY_A).run()
    j0 = _by_id(run)["j0"]
    assert (j0.start_s, j0.restarts, j0.lost_gpu_seconds) == (300.0, 1, 200.0)


@pytest.mark.parametrize("policy", ["first_fit", "earliest_start", "fair_share", "easy_backfill"])
def test_nothing_starts_on_a_down_site(policy: str) -> None:
    trace = generate_gavel_mixture(60, 2.0, seed=5)
    outages = ((2000.0, 9000.0), (20000.0, 26000.0))
    events = tuple(SiteOutage("a", s, e) for s, e in outages)
    projects = projects_for(trace, ["IT", "DE"], 0)
    setup = TwinSetup(SITES, policy, events=events)
    run = Simulation(trace, projects, setup).run()
    assert all(r.end_s is not None for r in run.results)
    for r in run.results:
        if r.site_id == "a":
            assert r.start_s is not None
            assert not any(s <= r.start_s < e for s, e in outages), r
            # a run at a that overlaps an outage would have been cut short
            assert not any(r.start_s < s < (r.end_s or 0) for s, _ in outages), r
    assert run.restarts == sum(r.restarts for r in run.results)
    assert run.lost_gpu_hours == pytest.approx(sum(r.lost_gpu_seconds for r in run.results) / 3600)
    assert all(r.lost_gpu_seconds <= r.gpu_seconds for r in run.results)


def test_a_shrink_drains_busy_nodes_without_killing_jobs() -> None:
    jobs = (
        _job("j0", 0.0, 1000.0, 4),
        _job("j1", 0.0, 1500.0, 4),
        _job("next", 200.0, 100.0, 4),
        _job("gang", 300.0, 100.0, 8),
    )
    simulation = _simulation(jobs, (CapacityChange("a", "p", 100.0, 1),), sites=ONLY_A)
    run = simulation.run()
    by_id = _by_id(run)
    for name, end in (("j0", 1000.0), ("j1", 1500.0)):
        assert (by_id[name].end_s, by_id[name].restarts) == (end, 0)
    # One node is left and it is busy: "next" waits for j0 (on the node that stays).
    assert by_id["next"].start_s == 1000.0
    # 8 GPUs need two nodes: the snapshot shows one, so no policy places it there.
    assert by_id["gang"].start_s is None
    samples = [s for s in run.utilisation_samples if s[1] == "a"]
    assert all(busy <= total for _, _, busy, total in samples)
    # Once j1's node has drained (1500 s), the partition has 4 GPUs and never uses more.
    assert all(total == 4 and busy <= 4 for t, _, busy, total in samples if t >= 1500.0)
    assert [total for t, _, _, total in samples if t < 100.0] == [8]
    executor = simulation.executors[SITES[0].id]
    assert executor.site.partitions[0].nodes == 1 and executor.gpu_counts() == (0, 4)


def test_growth_lets_queued_jobs_start_at_once() -> None:
    jobs = (
        _job("j0", 0.0, 1000.0, 4),
        _job("j1", 0.0, 1000.0, 4),
        _job("waits", 10.0, 100.0, 4),
        _job("gang", 20.0, 100.0, 12),
    )
    run = _simulation(jobs, (CapacityChange("a", "p", 50.0, 6),), sites=ONLY_A).run()
    by_id = _by_id(run)
    assert by_id["waits"].start_s == 50.0
    # 12 GPUs fit nowhere before the growth; then on three of the four new nodes.
    assert by_id["gang"].start_s == 50.0
    utilisation = utilisation_by_site(run.utilisation_samples, 0.0, run.horizon_end_s)
    assert 0 < utilisation["a"] <= 1


def test_a_partition_shrunk_to_nothing_and_back() -> None:
    jobs = (_job("j0", 0.0, 100.0, 4), _job("j1", 50.0, 100.0, 4))
    events = (CapacityChange("a", "p", 10.0, 0), CapacityChange("a", "p", 400.0, 2))
    run = _simulation(jobs, events, sites=ONLY_A).run()
    by_id = _by_id(run)
    assert (by_id["j0"].end_s, by_id["j1"].start_s) == (100.0, 400.0)


def test_events_naming_unknown_sites_or_partitions_are_refused() -> None:
    jobs = (_job("j0", 0.0, 10.0, 1),)
    with pytest.raises(InvalidInput) as caught:
        _simulation(jobs, (CapacityChange("a", "p", 1.0, 1), SiteOutage("zz", 1.0, 2.0)))
    message = str(caught.value)
    assert caught.value.field == "events[1]"
    assert "SiteOutage(site_id='zz'" in message and "known sites: a, b" in message
    with pytest.raises(InvalidInput) as caught:
        _simulation(jobs, (CapacityChange("b", "gpu", 1.0, 1),))
    assert "partition 'gpu' of site 'b'" in str(caught.value)
    assert "its partitions: p" in str(caught.value)
    with pytest.raises(InvalidInput):
        SiteOutage("a", 5.0, 5.0)
    with pytest.raises(InvalidInput):
        CapacityChange("a", "p", 0.0, -1)
