"""The twin's snapshot, kept from cycle to cycle (only changed sites and partitions read
again), is the one the broker's builder makes from scratch, through outages and resizes."""

from __future__ import annotations

import pytest

from aifactories.scheduling.assemble import assemble_snapshot
from aifactories.scheduling.snapshot import Snapshot
from aifactories.twin.events import CapacityChange, SiteOutage
from aifactories.twin.federation import projects_for
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob
from tests.twin.test_events import SITES


def _afresh(sim: Simulation, now: float) -> Snapshot:
    """What the snapshot must be: every up site's capacity read now, every running job."""
    up = [sid for sid, site in sim.executors.items() if site.available]
    free = {
        f"{sid}/{c.partition_name}": c.free_nodes_by_free_gpus
        for sid in up
        for c in sim.executors[sid].capacity()
    }
    return assemble_snapshot(
        now=now,
        sites=sim._current_sites(),
        free_nodes=free,
        available_sites=frozenset(up),
        allocations=sim._budgets.allocations()[0],  # unchanged since the kept one read them
        priority_weights=sim._priority_weights,
        charges=sim._usage,
        half_life_s=sim.setup.half_life_s,
        active_jobs=list(sim._active.values()),
    )


@pytest.mark.parametrize("policy", ["first_fit", "easy_backfill"])
def test_the_kept_snapshot_is_the_one_built_afresh(policy: str) -> None:
    jobs = tuple(
        TraceJob(
            job_id=f"j{i}",
            submit_s=37.0 * i,
            runtime_s=200.0 + 90.0 * (i % 7),
            gpus=(1, 2, 4, 8)[i % 4],
            group="g",
        )
        for i in range(60)
    )
    events = (
        SiteOutage("a", 300.0, 900.0),
        CapacityChange("b", "p", 1500.0, 1),
        CapacityChange("b", "p", 1900.0, 3),
    )
    trace = Trace(name="t", source=None, jobs=jobs)
    sim = Simulation(
        trace, projects_for(trace, ["IT", "DE"], 0), TwinSetup(SITES, policy, events=events)
    )
    kept = sim.snapshot
    seen: list[float] = []

    def checked(now: float) -> Snapshot:
        snapshot = kept(now)
        expected = _afresh(sim, now)
        assert snapshot.partitions == expected.partitions, now
        assert snapshot.active_jobs == expected.active_jobs, now
        assert snapshot.allocations == expected.allocations, now
        by_partition = {k: v for k, v in (snapshot.active_by_partition or {}).items() if v}
        grouped: dict[str, tuple[object, ...]] = {}
        for job in expected.active_jobs:
            grouped[job.partition_id] = (*grouped.get(job.partition_id, ()), job)
        assert by_partition == grouped, now
        free = sum(p.free_gpus for p in expected.partitions if p.available)
        assert sim._snapshot_free == free, now
        seen.append(now)
        return snapshot

    sim.snapshot = checked  # type: ignore[method-assign]
    run = sim.run()
    assert len(run.results) == 60
    # Cycles before, during and after the outage and the resizes were checked.
    assert min(seen) < 300.0 < 900.0 < 1500.0 < 1900.0 < max(seen)
    assert any(300.0 <= t < 900.0 for t in seen) and any(1500.0 <= t < 1900.0 for t in seen)
