"""How a policy lets jobs pass a job that cannot start: the backfill rule.

Backfill is a property of the cycle, not of ordering or choosing, so :func:`run_cycle`
enforces it for every policy the same way (see :mod:`aifactories.scheduling.reservations`):

* ``NONE``: greedy. Every job that fits now starts, whatever its place in the order; big
  jobs can starve behind a stream of small ones (first fit).
* ``STRICT``: no backfill. The first job blocked for capacity stops the cycle; nothing
  behind it starts (plain FIFO).
* ``EASY``: the first blocked job gets a reservation at its expected start; a later job may
  start now only if it leaves that reservation whole: it ends before the reservation
  starts, or it only uses GPUs the reserved job will not need then (Lifka's EASY, with the
  "extra nodes" rule of Mu'alem and Feitelson, 2001).
* ``PER_PARTITION``: each partition reserves for the first job blocked on it, as a site's
  own EASY scheduler does for its own queue (what Slurm siblings see at every site).
* ``CONSERVATIVE``: every blocked job among the first ``max_job_test`` gets a reservation at
  its earliest start within ``window_s``, rounded up to ``resolution_s``; a later job may
  start only if it breaks none (Slurm's backfill with ``bf_window``, ``bf_resolution`` and
  ``bf_max_job_test``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from aifactories.domain.errors import InvalidInput


class Backfill(Enum):
    NONE = "none"
    STRICT = "strict"
    EASY = "easy"
    PER_PARTITION = "per_partition"
    CONSERVATIVE = "conservative"


@dataclass(frozen=True, slots=True)
class BackfillRule:
    kind: Backfill
    window_s: float = math.inf  # reservations only for starts within now + window_s
    resolution_s: float = 0.0  # reservation starts rounded up to multiples of this
    max_job_test: int | None = None  # jobs tried per cycle, in the policy's order

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise InvalidInput("bf_window", f"{self.window_s}", limit="a duration above 0")
        if not (math.isfinite(self.resolution_s) and self.resolution_s >= 0):
            raise InvalidInput("bf_resolution", f"{self.resolution_s}", limit="0 s or more")
        if self.max_job_test is not None and self.max_job_test < 1:
            raise InvalidInput("bf_max_job_test", f"{self.max_job_test}", limit="1 or more")

    @property
    def reserves(self) -> bool:
        return self.kind in (Backfill.EASY, Backfill.PER_PARTITION, Backfill.CONSERVATIVE)


GREEDY = BackfillRule(Backfill.NONE)
STRICT = BackfillRule(Backfill.STRICT)
EASY = BackfillRule(Backfill.EASY)
PER_PARTITION = BackfillRule(Backfill.PER_PARTITION)
