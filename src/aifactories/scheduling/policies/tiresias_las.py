"""Tiresias discretised LAS (Gu et al., NSDI'19), preemptive, in rounds, with its own settings.

A job's priority comes from its attained service: GPUs x time (GPU-seconds, Tiresias' 2D-LAS,
``dlas-gpu``) or run time alone (``dlas``). Jobs sit in K queues by thresholds on that service
(:attr:`TiresiasSettings.queue_thresholds_h`, K - 1 of them), lower queues first; inside a
queue, first come first served by the time the job entered it (its arrival, or the round it
was demoted or promoted in), as Tiresias' simulator appends a job to the end of its new queue.
(That simulator also moves the pending jobs of a queue behind its running ones after each
decision, so a queue never preempts its own jobs; Pollux's Tiresias does not, nor does this.)
This needs no runtime estimate, which is why Tiresias uses it for deep-learning jobs. Every
round (``round_s``) the jobs are taken in that order and given capacity while it lasts (a
running job keeps its partition); running jobs left without capacity are preempted and pay
the restart cost when they run again.

Starvation promotion (``starve_limit``, Tiresias' STARVELIMIT, ``solve_starvation`` in its
simulator): a job below the first queue that has run, and has waited at least ``starve_limit``
times as long as it ran since it last entered the first queue (or first started), goes back to
the first queue with its queue service reset to 0, as in Tiresias' ``dlas_sim_jobs``. 0 turns
it off, which is the simulator's default for ``dlas-gpu`` (the paper's evaluation varies it).

Defaults: thresholds 1 and 10 GPU-hours, rounds of 6 minutes, no promotion (the twin's
defaults since it first ran Tiresias). Tiresias' simulator (SymbioticLab/Tiresias, run_sim.py
and jobs.py) reevaluates at every arrival, end and queue change, with 3 queues at 3,250 and
7,200 GPU-seconds; Pollux's artifact runs it with 2 queues at 16 GPU-hours every 60 s. A
scenario's ``tiresias:`` section sets them (docs/twin.md). Not modelled: Tiresias' placement
profiler (consolidation of jobs with skewed tensors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import JobId, PartitionId
from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.preemption import JobService, Planned, RoundPlan
from aifactories.scheduling.snapshot import Snapshot

_HOUR = 3600.0

Service = Literal["gpu_time", "time"]


@dataclass(frozen=True, slots=True)
class TiresiasSettings:
    """Tiresias' knobs. ``queue_thresholds_h``: the service at which a job moves down a
    queue, in GPU-hours (``service: gpu_time``, 2D-LAS) or hours of run time (``time``),
    strictly increasing; K queues need K - 1 thresholds (empty: one queue, FIFO with
    preemption). ``round_s``: the scheduling interval. ``starve_limit``: promote a job
    that waited this many times as long as it ran (0: never)."""

    queue_thresholds_h: tuple[float, ...] = (1.0, 10.0)
    round_s: float = 360.0
    starve_limit: float = 0.0
    service: Service = "gpu_time"

    def __post_init__(self) -> None:
        thresholds = self.queue_thresholds_h
        if any(not t > 0 for t in thresholds) or list(thresholds) != sorted(set(thresholds)):
            raise InvalidInput(
                "tiresias.queue_thresholds_h",
                f"{list(thresholds)} is not a strictly increasing list of positive hours",
                limit="e.g. [1, 10]: three queues, split at 1 and 10 GPU-hours",
            )
        if not self.round_s > 0:
            raise InvalidInput("tiresias.round_s", f"{self.round_s} is not positive", "> 0 s")
        if not self.starve_limit >= 0:
            raise InvalidInput(
                "tiresias.starve_limit", f"{self.starve_limit} is negative", ">= 0 (0: off)"
            )


@dataclass(frozen=True, slots=True)
class _Standing:
    """A job's place, carried from round to round (the plan's ``state``)."""

    queue: int
    entered_s: float  # when it entered its queue: the order inside the queue
    since_s: float | None  # first start or last promotion: where the counts below start
    ran_at: float = 0.0  # run seconds at ``since_s``
    gpu_s_at: float = 0.0  # GPU-seconds at ``since_s``
    promotions: int = 0


@dataclass
class _Rounds:
    standing: dict[JobId, _Standing] = field(default_factory=dict)


class TiresiasLas:
    name: str = "tiresias_las"

    def __init__(self, settings: TiresiasSettings | None = None) -> None:
        self.settings = settings or TiresiasSettings()
        self._thresholds = tuple(t * _HOUR for t in self.settings.queue_thresholds_h)
        self._gpu_time = self.settings.service == "gpu_time"
        self.round_s = self.settings.round_s

    def queue_of(self, service: JobService) -> int:
        """The queue of a job never promoted (a promoted one counts from its promotion)."""
        return self._queue(service, _Standing(0, service.submitted_at, None))

    def _queue(self, job: JobService, standing: _Standing) -> int:
        if self._gpu_time:
            attained = job.attained_gpu_seconds - standing.gpu_s_at
        else:
            attained = sum(job.received_s.values()) - standing.ran_at
        return sum(1 for t in self._thresholds if attained >= t)

    def _stand(self, job: JobService, before: _Standing | None, now: float) -> _Standing:
        ran = sum(job.received_s.values())
        if before is None:
            before = _Standing(0, job.submitted_at, None)
        if before.since_s is None and ran > 0:
            # First seen having run: it started at a round, ran since without a stop.
            before = _Standing(before.queue, before.entered_s, now - ran)
        limit = self.settings.starve_limit
        if limit > 0 and job.running_on is None and before.queue > 0 and before.since_s is not None:
            ran_since = ran - before.ran_at
            waited = (now - before.since_s) - ran_since
            if ran_since > 0 and waited >= limit * ran_since:
                return _Standing(0, now, now, ran, job.attained_gpu_seconds, before.promotions + 1)
        queue = self._queue(job, before)
        if queue == before.queue:
            return before
        return _Standing(
            queue, now, before.since_s, before.ran_at, before.gpu_s_at, before.promotions
        )

    def plan_round(
        self,
        snapshot: Snapshot,
        pending: Sequence[PendingJob],
        service: Mapping[JobId, JobService],
        now: float,
        state: object = None,
    ) -> RoundPlan:
        prior = state.standing if isinstance(state, _Rounds) else {}
        standing = {
            job_id: self._stand(job, prior.get(job_id), now) for job_id, job in service.items()
        }
        running = {job.id: job for job in snapshot.active_jobs}
        jobs = sorted(
            service.items(),
            key=lambda item: (
                standing[item[0]].queue,
                standing[item[0]].entered_s,
                item[1].submitted_at,
                item[0],
            ),
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
        return RoundPlan(preempt, Planned(self.name, ranked), _Rounds(standing))
