"""First fit: jobs in submission order, each on the first partition (catalogue order) where it
fits now. The baseline: simple, predictable, and no reservation, so big jobs can starve."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.backfill import GREEDY, BackfillRule
from aifactories.scheduling.policy import Candidate, CycleContext
from aifactories.scheduling.snapshot import Snapshot
from aifactories.scheduling.standing_queue import StandingKey, submission_key


def submission_order(pending: Sequence[PendingJob]) -> list[PendingJob]:
    """Oldest first; the job id breaks ties so the order never depends on the input's order."""
    # Two stable sorts on scalar keys: faster than one on (submitted_at, id) tuples.
    ordered = sorted(pending, key=attrgetter("id"))
    ordered.sort(key=attrgetter("submitted_at"))
    return ordered


class FirstFit:
    """Also the base of the policies that differ from it only by their backfill rule (fifo,
    easy_backfill, slurm_siblings): same order, same choice."""

    name: str = "first_fit"
    backfill: BackfillRule = GREEDY
    # The order never changes while jobs wait: a caller may keep the queue sorted by it.
    standing_key: StandingKey = staticmethod(submission_key)

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        return submission_order(pending)

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        # run_cycle offers candidates in catalogue order.
        return candidates[0] if candidates else None
