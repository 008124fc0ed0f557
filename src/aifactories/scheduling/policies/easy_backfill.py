"""EASY backfill: FIFO with a reservation for the queue head only (Lifka, 1995).

Jobs go in submission order to the first partition (catalogue order) where they fit now.
The first job that cannot start gets a reservation at its expected start; a later job may
start now only if it ends before that, or uses only GPUs the head will not need then (the
"extra nodes" of Mu'alem and Feitelson, 2001). Estimates are the jobs' time limits.
"""

from __future__ import annotations

from aifactories.scheduling.backfill import EASY, BackfillRule
from aifactories.scheduling.policies.first_fit import FirstFit


class EasyBackfill(FirstFit):
    name: str = "easy_backfill"
    backfill: BackfillRule = EASY
