"""Tiresias discretised two-dimensional LAS (Gu et al., NSDI'19), preemptive, in rounds.

A job's priority comes from its attained service in two dimensions, GPUs x time
(GPU-seconds): jobs sit in queues by thresholds of attained GPU-hours (default 1 and 10, so
three queues), lower queues first, first come first served inside a queue. This needs no
runtime estimate, which is why Tiresias uses it for deep-learning jobs. Every round the
jobs are taken in that order and given capacity while it lasts (a running job keeps its
partition); running jobs left without capacity are preempted and pay the restart cost when
they run again. Not modelled: Tiresias' starvation promotion (a job that waited much
longer than it last ran goes back to the first queue) and its placement-consolidation
profiler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aifactories.domain.ids import JobId, PartitionId
from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.preemption import JobService, Planned, RoundPlan
from aifactories.scheduling.snapshot import Snapshot

_HOUR = 3600.0


class TiresiasLas:
    name: str = "tiresias_las"

    def __init__(
        self,
        thresholds_gpu_hours: Sequence[float] = (1.0, 10.0),
        round_s: float = 360.0,
    ) -> None:
        self.thresholds = tuple(t * _HOUR for t in thresholds_gpu_hours)
        self.round_s = round_s

    def queue_of(self, service: JobService) -> int:
        return sum(1 for t in self.thresholds if service.attained_gpu_seconds >= t)

    def plan_round(
        self,
        snapshot: Snapshot,
        pending: Sequence[PendingJob],
        service: Mapping[JobId, JobService],
        now: float,
        state: object = None,
    ) -> RoundPlan:
        running = {job.id: job for job in snapshot.active_jobs}
        jobs = sorted(
            service.items(),
            key=lambda item: (self.queue_of(item[1]), item[1].submitted_at, item[0]),
        )
        free = {
            state.id: state.partition.total_gpus for state in snapshot.partitions if state.available
        }
        models = {state.id: state.partition.gpu_model for state in snapshot.partitions}
        ranked: list[tuple[JobId, PartitionId | None]] = []
        keep: set[JobId] = set()
        for job_id, job in jobs:
            where = job.running_on if job.running_on in free else None
            if where is None or free[where] < job.gpus:
                # the partition with most room left, where the job runs fastest on ties
                fits = [p for p, left in free.items() if left >= job.gpus]
                if not fits:
                    continue
                where = max(fits, key=lambda p: (free[p], job.speed_on(models[p])))
            free[where] -= job.gpus
            if job_id in running and job.running_on == where:
                keep.add(job_id)
            else:
                ranked.append((job_id, where))
        preempt = frozenset(job_id for job_id in running if job_id not in keep)
        return RoundPlan(preempt, Planned(self.name, ranked))
