"""Earliest start: jobs in submission order, each where it starts soonest, like Slurm's
``sbatch -M`` across clusters. Every candidate fits now, so they all start now; the tie goes
to the least loaded partition (highest free fraction), then the lower billing weight, then
catalogue order. A job that fits nowhere now is given its expected start in its wait reason,
and the first such job an EASY reservation (``backfill = EASY``) so it is not starved.
"""

from __future__ import annotations

from collections.abc import Sequence

from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.backfill import EASY, BackfillRule
from aifactories.scheduling.policies.first_fit import submission_order
from aifactories.scheduling.policy import Candidate, CycleContext
from aifactories.scheduling.snapshot import Snapshot
from aifactories.scheduling.standing_queue import StandingKey, submission_key


def soonest_least_loaded(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate that starts first; ties to least loaded, cheaper, earlier in catalogue.

    A plain loop rather than ``min(key=...)``: it runs once per placement, ten thousand
    times a cycle. Free fractions are compared by cross-multiplying, exactly, in integers.
    """
    if not candidates:
        return None
    best = candidates[0]
    for other in candidates[1:]:
        if other.expected_start != best.expected_start:
            if other.expected_start < best.expected_start:
                best = other
            continue
        mine = other.free_gpus * best.total_gpus
        theirs = best.free_gpus * other.total_gpus
        if mine != theirs:
            if mine > theirs:
                best = other
            continue
        if other.billing_weight < best.billing_weight or (
            other.billing_weight == best.billing_weight and other.order < best.order
        ):
            best = other
    return best


class EarliestStart:
    name: str = "earliest_start"
    backfill: BackfillRule = EASY
    standing_key: StandingKey = staticmethod(submission_key)  # see FirstFit

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        return submission_order(pending)

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        return soonest_least_loaded(candidates)
