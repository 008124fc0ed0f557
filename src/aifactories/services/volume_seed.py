"""A database at a busy programme's size, on top of the demo: thousands of jobs in every
state with their ledger moves, and thousands of proposals over several calls with the checks,
reviews, audit entries and notifications their states imply. For the portal's benchmark
(bench/bench_portal_pages.py): pages must stay fast when a PI has thousands of jobs and a
reviewer hundreds of assignments.

Seeded and deterministic (the same seed and clock give the same rows). Rows are written
directly, in bulk, in one transaction: going through the services would take minutes for
what is a fixture. The rows keep the invariants the services keep (an allocation's reserved
and used GPU-seconds are the sums of its jobs' ledger moves, a state has the timestamps and
reviews it implies), so every page reads them as it reads real ones. Loading it twice adds
the rows twice (new calls, more jobs)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aifactories.db.models import (
    AllocationRow,
    JobRow,
    LedgerEntryRow,
    MembershipRow,
    ProjectRow,
    UserRow,
    table_of,
)
from aifactories.domain.sites import Partition
from aifactories.services.core.context import ServiceContext
from aifactories.services.volume_seed_programme import seed_proposals

DAY_S = 86400.0
# share of the seeded jobs in each state (the rest complete)
JOB_STATES = [
    ("pending", 0.05),
    ("placed", 0.01),
    ("submitted", 0.02),
    ("running", 0.05),
    ("failed", 0.08),
    ("cancelled", 0.06),
    ("timeout", 0.03),
    ("completed", 0.70),
]
ACTIVE = ("placed", "submitted", "running")
# what a seeding run may spend of what each allocation has left: used by finished jobs,
# reserved by active ones (so a later job of the benchmark still fits)
USE_SHARE = 0.4
RESERVE_SHARE = 0.1


@dataclass(frozen=True)
class VolumeSeeded:
    """How many rows a seeding run wrote."""

    jobs: int
    ledger_entries: int
    calls: int
    proposals: int
    reviews: int
    technical_checks: int
    audit_entries: int
    notifications: int


@dataclass(frozen=True)
class _Budget:
    allocation: AllocationRow
    project_code: str
    site_id: str | None  # the allocation's site, None for the pool
    left: int  # GPU-seconds neither used nor reserved before this run
    per_job_use: float  # GPU-seconds a finished job may be charged, on average
    per_job_reserve: float  # GPU-seconds an active job may hold


def seed_volume(
    ctx: ServiceContext, *, jobs: int = 10_000, proposals: int = 5_000, seed: int = 0
) -> VolumeSeeded:
    """Add ``jobs`` jobs over the demo's projects and ``proposals`` proposals over new calls
    (one of each access mode per started thousand). Needs the demo loaded
    (services.demo.load_demo)."""
    rng = random.Random(seed)
    with ctx.sessions() as session, session.begin():
        job_count, ledger_count = _seed_jobs(session, ctx, rng, jobs)
        programme = seed_proposals(session, ctx, rng, proposals)
    return VolumeSeeded(
        jobs=job_count,
        ledger_entries=ledger_count,
        calls=programme.calls,
        proposals=programme.proposals,
        reviews=programme.reviews,
        technical_checks=programme.technical_checks,
        audit_entries=programme.audit_entries,
        notifications=programme.notifications,
    )


def _budgets(session: Session, count: int, jobs_per_project: float) -> dict[int, list[_Budget]]:
    """Each project's open allocations and what one seeded job may use of each."""
    rows = session.execute(
        select(AllocationRow, ProjectRow.code)
        .join(ProjectRow, ProjectRow.id == AllocationRow.project_id)
        .where(AllocationRow.status == "open")
        .order_by(AllocationRow.id)
    ).all()
    out: dict[int, list[_Budget]] = {}
    for allocation, code in rows:
        left = (
            allocation.granted_gpu_seconds
            - allocation.reserved_gpu_seconds
            - allocation.used_gpu_seconds
        )
        share = jobs_per_project / max(1, len(_same_project(rows, allocation.project_id)))
        finished = max(1.0, share * 0.8)
        active = max(1.0, share * 0.08)
        out.setdefault(allocation.project_id, []).append(
            _Budget(
                allocation=allocation,
                project_code=code,
                site_id=allocation.site_id,
                left=left,
                per_job_use=left * USE_SHARE / finished,
                per_job_reserve=left * RESERVE_SHARE / active,
            )
        )
    return out


def _same_project(rows: Any, project_id: int) -> list[Any]:
    return [r for r in rows if r[0].project_id == project_id]


def _pick_state(rng: random.Random) -> str:
    roll = rng.random()
    for state, share in JOB_STATES:
        if roll < share:
            return state
        roll -= share
    return "completed"


def _seed_jobs(
    session: Session, ctx: ServiceContext, rng: random.Random, count: int
) -> tuple[int, int]:
    if count <= 0:
        return 0, 0
    members: dict[int, list[int]] = {}
    for project_id, user_id in session.execute(
        select(MembershipRow.project_id, MembershipRow.user_id).order_by(MembershipRow.id)
    ):
        members.setdefault(project_id, []).append(user_id)
    if not members or session.scalar(select(UserRow.id).limit(1)) is None:
        raise RuntimeError("seed_volume needs the demo's projects: load the demo first")
    budgets = _budgets(session, count, count / len(members))
    projects = sorted(p for p in members if p in budgets)
    partitions = [p for site in ctx.catalogue.operational_sites for p in site.partitions]
    now = ctx.clock.now()
    rows: list[dict[str, Any]] = []
    moves: list[list[dict[str, Any]]] = []  # per job: its ledger entries, job_id filled later
    totals: dict[int, list[int]] = {}  # allocation id -> [reserved, used]
    for n in range(count):
        project_id = rng.choice(projects)
        budget = rng.choice(budgets[project_id])
        where = [p for p in partitions if budget.site_id in (None, p.site_id)]
        user_id = rng.choice(members[project_id])
        held = totals.setdefault(budget.allocation.id, [0, 0])
        room = budget.left - held[0] - held[1]
        row, entries = _job(rng, n, project_id, user_id, budget, where, now)
        if row["reserved_gpu_seconds"] > room:  # rare: chance spent the budget; it waits
            row, entries = _job(rng, n, project_id, user_id, budget, where, now, "pending")
        rows.append(row)
        moves.append(entries)
        held[0] += sum(e["gpu_seconds"] for e in entries if e["kind"] == "reserve")
        held[0] -= sum(e["gpu_seconds"] for e in entries if e["kind"] != "reserve")
        held[1] += sum(e["gpu_seconds"] for e in entries if e["kind"] == "charge")
    jobs = table_of(JobRow)
    ids = list(
        session.execute(
            jobs.insert().returning(jobs.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )
    ledger = [
        {**e, "job_id": job_id} for job_id, entries in zip(ids, moves, strict=True) for e in entries
    ]
    if ledger:
        session.execute(table_of(LedgerEntryRow).insert(), ledger)
    for allocation_id, (reserved, used) in totals.items():
        session.execute(
            update(AllocationRow)
            .where(AllocationRow.id == allocation_id)
            .values(
                reserved_gpu_seconds=AllocationRow.reserved_gpu_seconds + reserved,
                used_gpu_seconds=AllocationRow.used_gpu_seconds + used,
            )
        )
    return len(rows), len(ledger)


def _job(
    rng: random.Random,
    n: int,
    project_id: int,
    user_id: int,
    budget: _Budget,
    partitions: list[Partition],
    now: float,
    state: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One job's row and its ledger entries (reserve at placement; charge and release at
    the end for a job that ran)."""
    state = state or _pick_state(rng)
    partition = rng.choice(partitions)
    gpus = min(rng.choice((1, 1, 1, 2, 4, 8)), partition.gpus_per_node * partition.nodes)
    window = max(60.0, now - budget.allocation.starts_at)
    submitted = now - rng.random() * window
    weight = partition.billing_weight
    # a finished job's charge, and an active job's reservation, from the allocation's budget
    elapsed = max(1, int(budget.per_job_use * rng.uniform(0.2, 1.8) / (gpus * weight)))
    time_limit = max(60, int(elapsed * rng.uniform(1.1, 3.0)) // 60 * 60)
    if state in ACTIVE:
        time_limit = max(60, int(budget.per_job_reserve * rng.uniform(0.3, 1.0) / (gpus * weight)))
    ran = state in ("running", "completed", "failed", "timeout") or (
        state == "cancelled" and rng.random() < 0.5
    )
    placed = state != "pending" and (state != "cancelled" or ran)
    reserved = math.ceil(gpus * time_limit * weight) if placed else 0
    if state == "timeout":
        elapsed = time_limit
    started = min(now, submitted + rng.uniform(1, 600)) if ran else None
    ended = None
    if state not in ("pending", "placed", "submitted", "running") and started is not None:
        ended = min(now, started + elapsed)
    ran_s = (ended - started) if ended is not None and started is not None else None
    charged = min(reserved, int(gpus * ran_s * weight)) if ran_s is not None else 0
    nodes = math.ceil(gpus / partition.gpus_per_node)
    row: dict[str, Any] = {
        "project_id": project_id,
        "user_id": user_id,
        "name": rng.choice(("train", "finetune", "eval", "sweep", "preprocess")) + f"-{n}",
        "state": state,
        "gpus": gpus,
        "nodes": None,
        "gpu_model": rng.choice((partition.gpu_model, "any")),
        "min_gpu_memory_gb": 0,
        "time_limit_s": time_limit,
        "command": ["python", "train.py", f"--seed={n}"],
        "script": None,
        "workdir": None,
        "countries": [],
        "runtime_s": None,
        "slurm": None,
        "array_job_id": None,
        "array_task_id": None,
        "dependency": None,
        "warnings": None,
        "output_path": None,
        "error_path": None,
        "submitted_at": submitted,
        "placed_at": submitted + 1 if placed else None,
        "started_at": started,
        "ended_at": ended,
        "site_id": partition.site_id if placed else None,
        "partition_id": partition.id if placed else None,
        "shape_nodes": nodes if placed else None,
        "shape_gpus_per_node": math.ceil(gpus / nodes) if placed else None,
        "shape_exclusive": False if placed else None,
        "allocation_id": budget.allocation.id if placed else None,
        "billing_weight": weight if placed else None,
        "reserved_gpu_seconds": reserved,
        "charged_gpu_seconds": charged,
        "elapsed_s": ran_s,
        "site_job_id": str(100_000 + n) if placed else None,
        "exit_code": {"completed": 0, "failed": 1}.get(state),
        "reason": _reason(state),
        "requeues": 0,
        "cancel_requested": state == "cancelled",
    }
    entries: list[dict[str, Any]] = []
    allocation_id = budget.allocation.id

    def entry(kind: str, amount: int, at: float) -> None:
        entries.append(
            {
                "allocation_id": allocation_id,
                "kind": kind,
                "gpu_seconds": amount,
                "at": at,
                "note": None,
            }
        )

    if placed:
        entry("reserve", reserved, submitted + 1)
    if placed and ended is not None:
        if charged:
            entry("charge", charged, ended)
        if reserved - charged:
            entry("release", reserved - charged, ended)
    return row, entries


def _reason(state: str) -> str | None:
    return {
        "pending": "waiting for free GPUs at the sites the allocation may use",
        "failed": "the job exited with code 1",
        "cancelled": "cancelled by its owner",
        "timeout": "the job reached its time limit",
    }.get(state)
