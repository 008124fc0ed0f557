"""Fair share: projects that used less than their share of the programme go first.

Priority of a project (Slurm's classic fair-share factor, with the programme's visible
weight for critical domains and industry multiplied in)::

    priority = priority_weight * 2 ** (-usage_fraction / share_fraction)

* ``share_fraction``: the project's part of all GPU-seconds granted by the allocations that
  are open now (``Snapshot.allocations``);
* ``usage_fraction``: the project's part of all decayed usage (``ProjectShare``, computed
  by :func:`aifactories.scheduling.usage.decayed_usage`).

A project that used exactly its share gets half its weight; one that used nothing, its full
weight; one without an open allocation, 0 (it could not pay anyway). Jobs are ordered by
their project's priority, then submission time; each goes where it starts soonest, on the
least loaded partition, with the same head-job reservation as earliest start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aifactories.domain.ids import ProjectId
from aifactories.domain.jobs import PendingJob
from aifactories.domain.projects import AllocationStatus
from aifactories.scheduling.backfill import EASY, BackfillRule
from aifactories.scheduling.policies.earliest_start import soonest_least_loaded
from aifactories.scheduling.policies.first_fit import submission_order
from aifactories.scheduling.policy import Candidate, CycleContext
from aifactories.scheduling.snapshot import ProjectShare, Snapshot


@dataclass(frozen=True, slots=True)
class FairShareFactor:
    """The terms of one project's fair-share priority, for showing how it was reached."""

    project_id: ProjectId
    priority_weight: float
    usage_fraction: float
    share_fraction: float
    priority: float


def fair_share_priority(
    priority_weight: float, usage_fraction: float, share_fraction: float
) -> float:
    """``priority_weight * 2 ** (-usage_fraction / share_fraction)``; 0 without a share."""
    if share_fraction <= 0:
        return 0.0
    return priority_weight * math.exp2(-usage_fraction / share_fraction)


def fair_share_factors(snapshot: Snapshot, now: float) -> dict[ProjectId, FairShareFactor]:
    """Every project known to the snapshot (by allocation or share), by id."""
    granted: dict[ProjectId, int] = {}
    for allocation in snapshot.allocations:
        if (
            allocation.status is AllocationStatus.OPEN
            and allocation.starts_at <= now < allocation.ends_at
        ):
            granted[allocation.project_id] = (
                granted.get(allocation.project_id, 0) + allocation.granted_gpu_seconds
            )
    total_granted = sum(granted.values())
    total_usage = sum(max(0.0, s.decayed_usage_gpu_seconds) for s in snapshot.projects.values())
    factors: dict[ProjectId, FairShareFactor] = {}
    for project_id in sorted(set(granted) | set(snapshot.projects)):
        share = snapshot.projects.get(project_id) or ProjectShare(project_id)
        usage = max(0.0, share.decayed_usage_gpu_seconds) / total_usage if total_usage else 0.0
        fraction = granted.get(project_id, 0) / total_granted if total_granted else 0.0
        factors[project_id] = FairShareFactor(
            project_id=project_id,
            priority_weight=share.priority_weight,
            usage_fraction=usage,
            share_fraction=fraction,
            priority=fair_share_priority(share.priority_weight, usage, fraction),
        )
    return factors


class FairShare:
    name: str = "fair_share"
    backfill: BackfillRule = EASY

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        factors = fair_share_factors(snapshot, now)
        rank = {project_id: -f.priority for project_id, f in factors.items()}
        # Two stable sorts (submission, then priority) instead of one on tuple keys:
        # sorting 10,000 jobs on float keys is several times faster.
        ordered = submission_order(pending)
        ordered.sort(key=lambda job: rank.get(job.project_id, 0.0))
        return ordered

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        return soonest_least_loaded(candidates)
