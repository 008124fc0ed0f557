"""One trace through the live broker (database, mock sites, manual clock) and through the twin:
the placements must be the same, in the same order (DESIGN: share the whole cycle)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactories.db.models import AllocationRow, MembershipRow, OrganisationRow, ProjectRow, UserRow
from aifactories.domain.clock import ManualClock
from aifactories.domain.ids import ProjectId, SiteId, UserId
from aifactories.domain.projects import Role
from aifactories.executors.base import Executor
from aifactories.executors.mock import MockExecutor
from aifactories.scheduling import POLICY_NAMES
from aifactories.scheduling.snapshot import Placement
from aifactories.services.core.context import Principal
from aifactories.services.jobs.jobs import JobRequest, submit_job
from aifactories.services.platform import Platform
from aifactories.settings import Settings
from aifactories.twin.federation import DEFAULT_SPEED, UNLIMITED_GPU_SECONDS, projects_for
from aifactories.twin.simulation import Simulation, TwinSetup, run_on, time_limit_of
from aifactories.twin.traces.model import Trace
from aifactories.twin.traces.synthetic import generate_gavel_mixture

CATALOGUE = """
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 3}]}
  - {id: b, name: B, country: DE, supercomputer: B, status: operational,
     partitions: [{name: p, gpu_model: H100, gpu_memory_gb: 80, gpus_per_node: 8, nodes: 1,
                   billing_weight: 2}]}
  - {id: c, name: C, country: FI, supercomputer: C, status: operational,
     partitions: [{name: p, gpu_model: MI250X, gpu_memory_gb: 128, gpus_per_node: 4,
                   nodes: 2, billing_weight: 0.5}]}
"""
# MI250X slow: some jobs time out. The billing weights are the speeds: the broker's speed
# table (expected_completion) is the catalogue's billing weights, the twin's this.
SPEED = {"A100": 1.0, "H100": 2.0, "MI250X": 0.5}


def _key(p: Placement) -> tuple[int, str, str, int, int]:
    return (p.job_id, p.site_id, p.partition_id, p.shape.nodes, p.reserved_gpu_seconds)


def _twin(trace: Trace, catalogue: Path, policy: str, tmp: Path) -> tuple[list[Placement], int]:
    settings = Settings(data_dir=tmp / "twin", catalogue=catalogue)
    sites = Platform(settings).catalogue.sites
    projects = projects_for(trace, ["IT", "DE", "FI"], seed=1)
    simulation = Simulation(trace, projects, TwinSetup(sites, policy, speed=SPEED))
    run = simulation.run()
    waited = sum(1 for r in run.results if r.start_s is not None and r.start_s > r.submit_s)
    return simulation.placements, waited


def _broker(trace: Trace, catalogue: Path, policy: str, tmp: Path, url: str) -> list[Placement]:
    clock = ManualClock(start=0.0)
    settings = Settings(
        data_dir=tmp / "broker",
        database_url=url,
        catalogue=catalogue,
        run_broker=False,
        policy=policy,
        max_time_limit_s=10**8,
    )
    setup = TwinSetup((), policy, speed=SPEED)
    probe = Platform(settings, clock=clock)
    sites = {s.id: s for s in probe.catalogue.operational_sites}
    probe.stop()
    mocks = {SiteId(sid): MockExecutor(site, clock) for sid, site in sites.items()}
    executors: dict[SiteId, Executor] = dict(mocks)
    platform = Platform(settings, clock=clock, executors=executors)
    platform.migrate()
    projects = projects_for(trace, ["IT", "DE", "FI"], seed=1)
    principals: dict[str, Principal] = {}
    with platform.ctx.sessions() as s, s.begin():
        for name, p in projects.items():
            org = OrganisationRow(name=f"org-{name}", kind=p.organisation_kind, country=p.country)
            user = UserRow(username=f"u-{name}", full_name=name, email="x@example.eu")
            s.add_all([org, user])
            s.flush()
            project = ProjectRow(
                code=f"p-{name}",
                title=name,
                organisation_id=org.id,
                domain=p.domain,
                industrial=False,
                priority_weight=p.priority_weight,
            )
            s.add(project)
            s.flush()
            assert project.id == p.project_id  # same ids in both worlds
            s.add(MembershipRow(project_id=project.id, user_id=user.id, role="pi"))
            s.add(
                AllocationRow(
                    project_id=project.id,
                    site_id=None,
                    granted_gpu_seconds=UNLIMITED_GPU_SECONDS,
                    reserved_gpu_seconds=0,
                    used_gpu_seconds=0,
                    starts_at=-1.0,
                    ends_at=1e18,
                    status="open",
                )
            )
            principals[name] = Principal(
                UserId(user.id), user.username, roles={ProjectId(project.id): Role.PI}
            )
    arrivals = sorted(trace.jobs, key=lambda j: j.submit_s)
    ends: dict[float, list[tuple[SiteId, str, float]]] = {}
    placements: list[Placement] = []
    index = 0
    while index < len(arrivals) or ends:
        now = min([*ends, *([arrivals[index].submit_s] if index < len(arrivals) else [])])
        clock.set(now)
        for site_id, site_job_id, elapsed in ends.pop(now, []):
            mocks[site_id].finish(site_job_id, elapsed_s=elapsed)
        while index < len(arrivals) and arrivals[index].submit_s == now:
            job = arrivals[index]
            submit_job(
                platform.ctx,
                principals[job.group or "default"],
                JobRequest(
                    project=f"p-{job.group}",
                    gpus=job.gpus,
                    time_limit=time_limit_of(job, setup),
                    command=["train"],
                ),
            )
            index += 1
        platform.broker.run_once()
        result = platform.broker.last_result
        assert result is not None
        for placement in result.placements:
            placements.append(placement)
            job = arrivals[placement.job_id - 1]
            model = sites[placement.site_id].partitions[0].gpu_model
            runtime, _state = run_on(job, model, time_limit_of(job, setup), setup)
            site_job = next(
                j
                for j, m in mocks[placement.site_id].jobs.items()
                if m.request.job_id == placement.job_id
            )
            ends.setdefault(now + runtime, []).append((placement.site_id, site_job, runtime))
    platform.stop()
    return placements


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_broker_and_twin_place_identically(policy: str, tmp_path: Path, database_url: str) -> None:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(CATALOGUE)
    trace = generate_gavel_mixture(60, 12.0, seed=11)
    twin, waited = _twin(trace, catalogue, policy, tmp_path)
    assert waited >= 10  # a contended trace: the policies' queue decisions are exercised
    broker = _broker(trace, catalogue, policy, tmp_path, database_url)
    assert len(twin) == 60
    assert [_key(p) for p in broker] == [_key(p) for p in twin]
    assert DEFAULT_SPEED["A100"] == SPEED["A100"]  # the reference speed is the same
