"""FIFO: jobs strictly in submission order, each on the first partition (catalogue order)
where it fits now; the first job that cannot start stops the cycle, so nothing passes it.
The textbook baseline of the scheduling literature: fair in order, poor in utilisation."""

from __future__ import annotations

from collections.abc import Sequence

from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.backfill import STRICT, BackfillRule
from aifactories.scheduling.policies.first_fit import submission_order
from aifactories.scheduling.policy import Candidate, CycleContext
from aifactories.scheduling.snapshot import Snapshot


class Fifo:
    name: str = "fifo"
    backfill: BackfillRule = STRICT

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        return submission_order(pending)

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        return candidates[0] if candidates else None
