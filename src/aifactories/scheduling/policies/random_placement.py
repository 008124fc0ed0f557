"""Random: jobs in submission order, each on a partition drawn at random among those where it
fits now; greedy, no reservation. The federation baseline any placement policy must beat.

Pure and reproducible: the draw is a hash of (seed, job id), so the same job gets the same
draw in the broker and in the twin, and no state is kept between calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.backfill import GREEDY, BackfillRule
from aifactories.scheduling.policies.first_fit import FirstFit
from aifactories.scheduling.policy import Candidate, CycleContext


def draw(seed: int, job_id: int, choices: int) -> int:
    """A uniform index in ``range(choices)``, fixed by (seed, job id)."""
    digest = hashlib.blake2b(f"{seed}:{job_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % choices


class RandomPlacement(FirstFit):
    name: str = "random"
    backfill: BackfillRule = GREEDY

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        if not candidates:
            return None
        return candidates[draw(self.seed, int(job.id), len(candidates))]
