"""The machinery of the seeded history (history_seed.py): the virtual clock's event queue, what
was seeded, and an awarded project's life: its jobs (submitted through ``submit_job``,
started with the broker's reservation, ended with its settlement) and its extension."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from aifactories.broker.reconcile import finish_job
from aifactories.db.jobs import try_reserve
from aifactories.db.models import AllocationRow, JobRow, ProjectRow, UserRow
from aifactories.db.programme_models import ProposalRow
from aifactories.domain.clock import ManualClock
from aifactories.domain.errors import Conflict
from aifactories.domain.jobs import JobState
from aifactories.domain.organisations import OrganisationKind
from aifactories.domain.sites import Partition
from aifactories.domain.units import charge_gpu_seconds
from aifactories.services.core.auth import principal_of_user
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.jobs.job_spec import JobRequest
from aifactories.services.jobs.jobs import submit_job
from aifactories.services.programme.allocation_decisions import DecisionIn, decide_request
from aifactories.services.programme.allocation_requests import (
    AllocationRequestIn,
    request_change,
)

DAY_S = 86400.0
HOUR_S = 3600.0
# the demo's principal investigators, one per organisation kind
APPLICANTS: dict[OrganisationKind, str] = {
    OrganisationKind.STARTUP: "alice",
    OrganisationKind.SME: "carol",
    OrganisationKind.INDUSTRY: "dario",
    OrganisationKind.ACADEMIA: "elena",
    OrganisationKind.PUBLIC: "fabien",
}
OPERATOR = "oscar"
# sites with their own budget line; a proposal naming none is funded from the pool
SITES = ("lumi-aif", "bsc-aif", "it4lia", "meluxina-ai", "jaif", "slaif", "czai")
REJECT_EVERY = 7  # one Fast Lane proposal in seven fails its technical check
EXTEND_EVERY = 5  # one awarded project in five gets an extension of a quarter of its grant


@dataclass(frozen=True, slots=True)
class SeededProposal:
    """What the seed decided for one proposal: the figures must find these delays again."""

    proposal_id: int
    mode: str
    kind: str
    domain: str
    submitted_at: float
    decided_at: float | None  # None: not decided within the history
    awarded: bool
    first_job_at: float | None  # the first job's start


@dataclass
class SeededHistory:
    start: float
    end: float
    proposals: list[SeededProposal] = field(default_factory=list)
    jobs: int = 0
    waits_s: dict[str, list[float]] = field(default_factory=dict)  # mode -> each started job's
    extensions: list[tuple[float, int]] = field(default_factory=list)  # approved at, GPU-s


@dataclass(frozen=True, slots=True)
class _SeededJob:
    pi: str
    project: str
    mode: str
    allocation_id: int
    target_gpu_hours: float  # billed GPU-hours it should use
    index: int  # its proposal in SeededHistory.proposals
    first: bool  # the project's first job: its start is the proposal's access


@dataclass
class SeedRun:
    ctx: ServiceContext
    clock: ManualClock
    rng: random.Random
    history: SeededHistory
    queue: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    seq: int = 0
    calls: dict[str, str] = field(default_factory=dict)  # access mode -> its call's code
    peer: dict[int, tuple[int, str]] = field(default_factory=dict)  # proposal -> index, PI

    def at(self, when: float, step: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, step))

    def run(self, until: float) -> None:
        """Every step in time order, up to ``until`` (the history's end: nothing after it is
        written, so a history ending now leaves nothing in the future)."""
        while self.queue and self.queue[0][0] < until:
            when, _, step = heapq.heappop(self.queue)
            self.clock.set(max(when, self.clock.now()))
            step()
        self.queue.clear()

    def principal(self, username: str) -> Principal:
        with self.ctx.reads() as session:
            user = session.scalars(select(UserRow).where(UserRow.username == username)).first()
            if user is None:
                raise Conflict(f"user {username!r} is missing: load the demo first (aif demo load)")
            return principal_of_user(session, user)


def _shape(
    run: SeedRun, job: _SeededJob, part: Partition, left_s: int
) -> tuple[int, int, float, int]:
    """GPUs, nodes, runtime (s) and time limit (s) of a job that uses about its share of the
    project's target, on whole nodes past one node, within what the allocation has left."""
    runtime_h = run.rng.uniform(4.0, 11.0)
    limit_s = (math.ceil(runtime_h) + 1) * 3600  # what a user asks: the runtime and a margin
    per_node = part.gpus_per_node
    largest = max(per_node, part.total_gpus // 4 // per_node * per_node)
    gpus = max(1, round(job.target_gpu_hours / runtime_h / part.billing_weight))
    if gpus > per_node:
        gpus = min(largest, math.ceil(gpus / per_node) * per_node)
    room = int(left_s // (limit_s * part.billing_weight))  # the reservation must fit
    if gpus > room:
        gpus = room if room <= per_node else room // per_node * per_node
    return gpus, max(1, math.ceil(gpus / per_node)), runtime_h * 3600, limit_s


def _job(run: SeedRun, job: _SeededJob) -> None:
    """Submit one job now; it starts after a seeded wait and ends after a seeded runtime."""
    ctx = run.ctx
    with ctx.reads() as session:
        alloc = session.get(AllocationRow, job.allocation_id)
        assert alloc is not None
        sites = [alloc.site_id] if alloc.site_id else list(alloc.pool_sites or SITES)
        left = alloc.granted_gpu_seconds - alloc.reserved_gpu_seconds - alloc.used_gpu_seconds
        # a project's jobs spread over weeks may outlive a short allocation: none after it
        valid = alloc.status == "open" and alloc.starts_at <= run.clock.now() < alloc.ends_at
    if not valid:
        return
    site = ctx.catalogue.site(run.rng.choice(sorted(sites)))
    assert site is not None
    part = site.partitions[0]
    gpus, nodes, runtime, limit_s = _shape(run, job, part, left)
    wait = run.rng.uniform(0.0, 6.0) * HOUR_S
    if gpus < 1:
        return  # the allocation is spent
    row = submit_job(
        ctx,
        run.principal(job.pi),
        JobRequest(
            project=job.project,
            gpus=gpus,
            nodes=nodes,
            options=[f"--partition={part.id}"],
            time_limit=limit_s,
            command=["python", "train.py"],
            name="seeded",
        ),
    )
    job_id = row.id
    now = run.clock.now()

    def start() -> None:
        with ctx.sessions() as session, session.begin():
            row = session.get(JobRow, job_id, with_for_update=True)
            assert row is not None
            reserve = charge_gpu_seconds(gpus, limit_s, part.billing_weight)
            if not try_reserve(session, job.allocation_id, reserve, job_id, run.clock.now()):
                raise Conflict(f"seeded job {job_id}: allocation {job.allocation_id} has no room")
            # as the broker's apply and reconcile leave a job that started (broker/apply.py)
            row.state = JobState.RUNNING.value
            row.placed_at = row.started_at = row.start_recorded_at = run.clock.now()
            row.site_id, row.partition_id = site.id, part.id
            row.shape_nodes, row.shape_gpus_per_node = nodes, gpus // nodes
            row.shape_exclusive = nodes > 1
            row.allocation_id, row.billing_weight = job.allocation_id, part.billing_weight
            row.reserved_gpu_seconds = reserve
            row.site_job_id = f"seeded-{job_id}"
        run.history.waits_s.setdefault(job.mode, []).append(wait)
        run.history.jobs += 1
        if job.first:
            seeded = run.history.proposals[job.index]
            run.history.proposals[job.index] = replace(seeded, first_job_at=run.clock.now())

    def end() -> None:
        with ctx.sessions() as session, session.begin():
            row = session.get(JobRow, job_id, with_for_update=True)
            assert row is not None
            finish_job(
                session,
                row,
                JobState.COMPLETED,
                run.clock.now(),
                elapsed_s=runtime,
                exit_code=0,
                allocated_gpus=gpus,
            )

    run.at(now + wait, start)
    run.at(now + wait + runtime, end)


def _extension(run: SeedRun, pi: str, allocation_id: int, gpu_hours: int) -> None:
    """Ten days after the award the PI asks for ``gpu_hours`` more; a day later the
    programme operator approves (the grant the figures count at the approval)."""

    def ask() -> None:
        view = request_change(
            run.ctx,
            run.principal(pi),
            allocation_id,
            AllocationRequestIn(
                kind="extension",
                gpu_hours=float(gpu_hours),
                justification="the seeded project needs a quarter more",
            ),
        )

        def approve() -> None:
            decide_request(
                run.ctx,
                run.principal(OPERATOR),
                view.id,
                DecisionIn(decision="approve", reason="the seeded project uses its hours well"),
            )
            run.history.extensions.append((run.clock.now(), gpu_hours * 3600))

        run.at(run.clock.now() + DAY_S, approve)

    run.at(run.clock.now() + 10 * DAY_S, ask)


def after_award(run: SeedRun, index: int, pi: str) -> None:
    """Once awarded: the project's jobs, the first submitted a seeded delay after the award
    (or after its allocation starts, if later), together using a seeded share (30 to 70%) of
    the grant."""
    seeded = run.history.proposals[index]
    with run.ctx.reads() as session:
        proposal = session.get(ProposalRow, seeded.proposal_id)
        assert proposal is not None and proposal.project_id is not None
        project = session.get(ProjectRow, proposal.project_id)
        assert project is not None
        # an award over several sites has an allocation at each: the jobs use the largest
        allocation = session.scalars(
            select(AllocationRow)
            .where(AllocationRow.project_id == project.id)
            .order_by(AllocationRow.granted_gpu_seconds.desc(), AllocationRow.id)
            .limit(1)
        ).one()
        allocation_id, granted_h = allocation.id, allocation.granted_gpu_seconds / HOUR_S
        opens = allocation.starts_at  # a Large Scale award may start with the next month
        code = project.code
    if index % EXTEND_EVERY == EXTEND_EVERY - 1:
        _extension(run, pi, allocation_id, round(granted_h * 0.25))
    jobs = run.rng.randint(4, 8)
    target = granted_h * run.rng.uniform(0.3, 0.7) / jobs
    when = max(run.clock.now(), opens) + run.rng.uniform(0.5, 5.0) * DAY_S
    for n in range(jobs):
        job = _SeededJob(pi, code, seeded.mode, allocation_id, target, index, n == 0)
        run.at(when, lambda job=job: _job(run, job))  # type: ignore[misc]
        when += run.rng.uniform(1.0, 3.0) * DAY_S
