"""Slurm's multifactor priority with conservative backfill, as an AI factory's own Slurm
would run it (``PriorityType=priority/multifactor``, ``SchedulerType=sched/backfill``).

Priority (Slurm's formula, the factors each in [0, 1])::

    priority = w_age * min(age / max_age, 1)
             + w_fairshare * 2 ** (-usage_fraction / share_fraction)
             + w_job_size * gpus / GPUs of the largest partition
             + w_qos * project priority weight / the largest possible weight

Fair share is Slurm's classic factor over the programme's open allocations, with usage
decayed by the snapshot's half-life (``PriorityDecayHalfLife``, 7 days by default, as in
Slurm). The QOS factor carries the programme's visible priority for critical domains and
industry. Default weights are a common site configuration (fair share dominant, then QOS,
age and size), stated here and overridable.

Backfill is conservative, with Slurm's parameters: the first ``bf_max_job_test`` jobs in
priority order are tried; each that cannot start reserves its earliest start within
``bf_window`` (rounded up to ``bf_resolution``); a later job may start only if it breaks
no reservation. Defaults are Slurm's: 1 day, 60 s, 500 jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aifactories.domain.jobs import PendingJob
from aifactories.domain.projects import PriorityWeights
from aifactories.scheduling.backfill import Backfill, BackfillRule
from aifactories.scheduling.policies.earliest_start import soonest_least_loaded
from aifactories.scheduling.policies.fair_share import fair_share_factors, fair_share_priority
from aifactories.scheduling.policies.first_fit import submission_order
from aifactories.scheduling.policy import Candidate, CycleContext
from aifactories.scheduling.snapshot import Snapshot

_HIGHEST_WEIGHT = PriorityWeights().critical_domain * PriorityWeights().industrial


@dataclass(frozen=True, slots=True)
class MultifactorWeights:
    age: float = 1000.0
    fairshare: float = 10000.0
    job_size: float = 1000.0
    qos: float = 2000.0
    max_age_s: float = 7 * 86400.0  # PriorityMaxAge=7-0


class SlurmMultifactor:
    name: str = "slurm_multifactor"

    def __init__(
        self,
        weights: MultifactorWeights | None = None,
        bf_window_s: float = 86400.0,
        bf_resolution_s: float = 60.0,
        bf_max_job_test: int = 500,
    ) -> None:
        self.weights = weights or MultifactorWeights()
        self.backfill: BackfillRule = BackfillRule(
            Backfill.CONSERVATIVE,
            window_s=bf_window_s,
            resolution_s=bf_resolution_s,
            max_job_test=bf_max_job_test,
        )

    def priorities(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> dict[int, float]:
        """Each pending job's priority, by job id (for ordering and for showing)."""
        w = self.weights
        factors = fair_share_factors(snapshot, now)
        share = {
            project: fair_share_priority(1.0, f.usage_fraction, f.share_fraction)
            for project, f in factors.items()
        }
        largest = max((p.partition.total_gpus for p in snapshot.partitions), default=1)
        result: dict[int, float] = {}
        for job in pending:
            factor = factors.get(job.project_id)
            qos = (factor.priority_weight if factor else 1.0) / _HIGHEST_WEIGHT
            age = min(max(0.0, now - job.submitted_at) / w.max_age_s, 1.0)
            result[int(job.id)] = (
                w.age * age
                + w.fairshare * share.get(job.project_id, 0.0)
                + w.job_size * min(job.spec.gpus / largest, 1.0)
                + w.qos * qos
            )
        return result

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        priority = self.priorities(pending, snapshot, now)
        ordered = submission_order(pending)  # ties: older first, as Slurm
        ordered.sort(key=lambda job: -priority[int(job.id)])
        return ordered

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        return soonest_least_loaded(candidates)
