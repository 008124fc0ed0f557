"""Preemptive, round-based policies (Tiresias, Gavel): a plan per round, then the shared cycle.

A preemptive policy is asked once per round (``round_s``, 6 minutes by default as in Gavel)
for a :class:`RoundPlan`: which running jobs to stop, and an ordinary :class:`Policy` that
places the jobs the plan wants running. The caller acts on the preemptions, takes a fresh
snapshot (the stopped jobs' GPUs are free again, the stopped jobs pending again) and runs
the very same :func:`~aifactories.scheduling.run_cycle` with that policy, so every rule of
the cycle (hardware, gang shape, residency, budget, capacity) still holds: decide, then act.

What a plan needs beyond the snapshot is each job's progress (:class:`JobService`), which the
caller knows: the twin from its own clock, a broker from the sites' accounting. Stopping and
restarting a job costs it its restart time, charged by the caller; the plan only decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from aifactories.domain.ids import JobId, PartitionId
from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.backfill import GREEDY, BackfillRule
from aifactories.scheduling.policies.first_fit import submission_order
from aifactories.scheduling.policy import Candidate, CycleContext, Policy
from aifactories.scheduling.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class JobService:
    """What a job has received so far, and how fast it runs where.

    ``speeds`` maps a GPU model to the job's speed there relative to its reference (1.0 for
    the trace's own hardware); ``received_s`` is the wall time it ran on each partition;
    ``remaining_s`` its work left, in seconds at reference speed.
    """

    gpus: int
    submitted_at: float
    attained_gpu_seconds: float = 0.0
    received_s: Mapping[PartitionId, float] = field(default_factory=dict)
    speeds: Mapping[str, float] = field(default_factory=dict)
    remaining_s: float = 0.0
    running_on: PartitionId | None = None

    def speed_on(self, gpu_model: str) -> float:
        return self.speeds.get(gpu_model, 1.0)


@dataclass(frozen=True)
class RoundPlan:
    """``state`` is what the policy carries to its next round (Gavel's time shares); the
    caller hands it back unchanged, so the policy itself keeps nothing between calls."""

    preempt: frozenset[JobId]
    policy: Policy
    state: object = None


@runtime_checkable
class PreemptivePolicy(Protocol):
    name: str
    round_s: float

    def plan_round(
        self,
        snapshot: Snapshot,
        pending: Sequence[PendingJob],
        service: Mapping[JobId, JobService],
        now: float,
        state: object = None,
    ) -> RoundPlan:
        """Which running jobs to stop this round, and the policy that places the rest;
        ``state`` is the previous round's :attr:`RoundPlan.state` (None at the first)."""
        ...


class Planned:
    """The ordinary policy of one round: the plan's jobs first, in its order, each on its
    planned partition if that is offered, else where it fits (a gang job may not find its
    planned GPUs together); then, if ``work_conserving``, every other job, first fit, on
    what is left, so no GPU idles while a job could use it (the next round may preempt
    them); Gavel is not: GPUs it does not plan stay idle for the round. Immutable: one
    instance per round."""

    backfill: BackfillRule = GREEDY

    def __init__(
        self,
        name: str,
        ranked: Sequence[tuple[JobId, PartitionId | None]],
        *,
        work_conserving: bool = True,
    ) -> None:
        self.name = name
        self.work_conserving = work_conserving
        self._rank = {job_id: i for i, (job_id, _) in enumerate(ranked)}
        self._where = dict(ranked)

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        last = len(self._rank)
        ordered = submission_order(pending)
        ordered.sort(key=lambda job: self._rank.get(job.id, last))
        return ordered

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        if not candidates or (not self.work_conserving and job.id not in self._rank):
            return None
        where = self._where.get(job.id)
        planned = next((c for c in candidates if c.partition_id == where), None)
        return planned or candidates[0]
