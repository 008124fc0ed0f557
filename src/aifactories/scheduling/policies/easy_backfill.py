"""EASY backfill: FIFO with a reservation for the queue head only (Lifka, 1995).

Jobs go in submission order to the first partition (catalogue order) where they fit now.
The first job that cannot start gets a reservation at its expected start; a later job may
start now only if it ends before that, or uses only GPUs the head will not need then (the
"extra nodes" of Mu'alem and Feitelson, 2001). Estimates are the jobs' time limits.
"""

from __future__ import annotations

from collections.abc import Sequence

from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.backfill import EASY, BackfillRule
from aifactories.scheduling.policies.first_fit import submission_order
from aifactories.scheduling.policy import Candidate, CycleContext
from aifactories.scheduling.snapshot import Snapshot


class EasyBackfill:
    name: str = "easy_backfill"
    backfill: BackfillRule = EASY

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        return submission_order(pending)

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        return candidates[0] if candidates else None
