"""Expected completion: each job where it is expected to finish first, shortest requests first
with ageing, so that heterogeneous GPUs are used by how fast they run the job.

Choice. A candidate's expected completion is its start plus the job's runtime estimate
there: its requested time (``time_limit_s``) divided by the speed of the partition's GPU
model for the job's workload class (:class:`~aifactories.scheduling.speeds.SpeedTable` in
the snapshot). Every candidate fits now, so the fastest GPU wins; ties go to the least
loaded partition, the lower billing weight, then catalogue order (as earliest start). With
an empty speed table this is earliest start.

Waiting for a faster GPU. A partition the job could use but that is full now is expected
to have room when enough of its running jobs have reached their time limits (the snapshot's
active jobs; an upper bound, jobs end no later). If the job would finish there sooner than
on the best candidate, it is left pending this cycle (``choose`` returns None), so a slow
GPU goes to a job that loses less on it. A job waits so only while it has waited less than
its own requested time, so it never waits for a faster GPU for ever.

Comparative advantage. A job takes a slower GPU at once, without waiting, where its class
loses less there than the median class of the speed table does (its speed there / its best
speed, against the median of that ratio over the classes:
:meth:`~aifactories.scheduling.speeds.SpeedTable.has_comparative_advantage`). Under a deep
queue every job would rather wait for the fastest GPU, and a slow GPU that everyone waits
out stands idle; given instead to the jobs that lose least on it, as Gavel's
heterogeneity-aware allocation gives each GPU type the job types with the highest relative
throughput there, it adds the most work per hour. On Gavel's three GPU types this raises
the load the federation sustains from x1.17 to x1.22 of the sibling rule's
(``bench/bench_decision_quality.py``). A table with one row (the catalogue's speeds) gives
no class an advantage, and the job waits as above.

Order. Shortest requested time first, with linear ageing, as Slurm's multifactor priority
adds an age factor to a job-size factor (``PriorityWeightAge``; there ``PriorityFavorSmall``
favours small jobs) so that small jobs go first yet waiting raises every job::

    priority = ageing * (now - submitted_at) - time_limit_s

Uncapped and linear, the ordering by that priority is the same at every ``now``: ascending
``submitted_at + time_limit_s / ageing``, a due time (so the twin may keep its queue sorted,
``standing_key``). Nothing starves: a job submitted at ``s`` with request ``L`` is passed
only by jobs submitted before ``s + (L - L') / ageing``, so after ``L / ageing`` seconds no
new job passes it; it then reaches the head of the queue and the EASY reservation of the
first blocked job (``backfill = EASY``) keeps later jobs from delaying its start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from aifactories.domain.errors import InvalidInput
from aifactories.domain.fit import shape_fitting
from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.backfill import EASY, BackfillRule
from aifactories.scheduling.policy import Candidate, CycleContext
from aifactories.scheduling.snapshot import PartitionState, Snapshot
from aifactories.scheduling.speeds import SpeedTable

DEFAULT_AGEING = 1.0
"""Seconds of requested time one second of waiting makes up for: a job asking for an hour
more than another is passed by it for at most an hour after its own submission."""


def due_key(ageing: float) -> Callable[[PendingJob], tuple[float, int]]:
    """The standing order for ``ageing``: due time, then job id (never the input's order)."""

    def key(job: PendingJob) -> tuple[float, int]:
        return (job.submitted_at + job.spec.time_limit_s / ageing, job.id)

    return key


def expected_completion(job: PendingJob, candidate: Candidate, speeds: SpeedTable) -> float:
    """When ``job`` would end on ``candidate``: start + requested time / speed there."""
    speed = speeds.speed(job.spec.workload_class, candidate.state.partition.gpu_model)
    return candidate.expected_start + job.spec.time_limit_s / speed


def first_to_complete(
    job: PendingJob, candidates: Sequence[Candidate], speeds: SpeedTable
) -> Candidate | None:
    """The candidate where ``job`` ends first; ties to least loaded, cheaper, earlier in the
    catalogue (free fractions compared exactly, by cross-multiplying integers)."""
    if not candidates:
        return None
    best = candidates[0]
    best_end = expected_completion(job, best, speeds)
    for other in candidates[1:]:
        end = expected_completion(job, other, speeds)
        if end != best_end:
            if end < best_end:
                best, best_end = other, end
            continue
        mine = other.free_gpus * best.total_gpus
        theirs = best.free_gpus * other.total_gpus
        if mine != theirs:
            if mine > theirs:
                best, best_end = other, end
            continue
        if other.billing_weight < best.billing_weight or (
            other.billing_weight == best.billing_weight and other.order < best.order
        ):
            best, best_end = other, end
    return best


def room_expected_at(state: PartitionState, gpus: int, snapshot: Snapshot, now: float) -> float:
    """When ``gpus`` GPUs of a partition that is no candidate now are expected to be free:
    the time limit of the running job whose end frees the last of them (GPUs counted, not
    nodes: an estimate). Its free GPUs in the snapshot are taken to be gone, since a cycle
    offers a partition with room as a candidate; ``inf`` if its running jobs never free
    enough."""
    ends = sorted(
        (job.expected_end(now), job.shape.allocated_gpus)
        for job in snapshot.active_jobs
        if job.partition_id == state.id
    )
    freed = 0
    for end, held in ends:
        freed += held
        if freed >= gpus:
            return end
    return math.inf


def sooner_elsewhere(
    job: PendingJob, best: Candidate, best_end: float, context: CycleContext
) -> bool:
    """Whether a partition that is full now is expected to finish ``job`` before ``best``."""
    spec = job.spec
    snapshot = context.snapshot
    countries = frozenset(c.upper() for c in spec.countries)
    for state in snapshot.partitions:
        if not state.available or state.id == best.partition_id:
            continue
        if countries and state.country not in countries:
            continue
        speed = snapshot.speeds.speed(spec.workload_class, state.partition.gpu_model)
        run = spec.time_limit_s / speed
        if context.now + run >= best_end:
            continue  # not faster: even starting now it would not end sooner
        shape = shape_fitting(spec, state.partition)
        if shape is None:
            continue
        if room_expected_at(state, shape.allocated_gpus, snapshot, context.now) + run < best_end:
            return True
    return False


class ExpectedCompletion:
    name: str = "expected_completion"
    backfill: BackfillRule = EASY

    def __init__(self, ageing: float = DEFAULT_AGEING) -> None:
        if not ageing > 0:
            raise InvalidInput("ageing", f"{ageing}", limit="above 0 (1.0: a second a second)")
        self.ageing = ageing
        # The order never changes while jobs wait (see the module): a caller may keep it.
        self.standing_key = due_key(ageing)

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        return sorted(pending, key=self.standing_key)

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        best = first_to_complete(job, candidates, context.snapshot.speeds)
        if best is None or context.now - job.submitted_at >= job.spec.time_limit_s:
            return best
        speeds = context.snapshot.speeds
        if speeds.has_comparative_advantage(
            job.spec.workload_class, best.state.partition.gpu_model
        ):
            return best
        best_end = expected_completion(job, best, speeds)
        return None if sooner_elsewhere(job, best, best_end, context) else best
