"""FIFO: jobs strictly in submission order, each on the first partition (catalogue order)
where it fits now; the first job that cannot start stops the cycle, so nothing passes it.
The textbook baseline of the scheduling literature: fair in order, poor in utilisation."""

from __future__ import annotations

from aifactories.scheduling.backfill import STRICT, BackfillRule
from aifactories.scheduling.policies.first_fit import FirstFit


class Fifo(FirstFit):
    name: str = "fifo"
    backfill: BackfillRule = STRICT
