"""Slurm siblings: every job is submitted to every site that could run it ("sibling" jobs of
a Slurm federation, ``sbatch -M all``); the first site to start it wins and the others are
withdrawn. The federation baseline of today's practice.

Modelled in one cycle: jobs in submission order; each site runs its own EASY backfill on
its own queue, so every partition reserves for the first job blocked on it (a job blocked
everywhere holds a reservation at every site, which is what siblings cost the others);
a job that can start at several sites at once starts at the first in catalogue order,
standing for whichever controller happens to run its scheduler first.
"""

from __future__ import annotations

from aifactories.scheduling.backfill import PER_PARTITION, BackfillRule
from aifactories.scheduling.policies.first_fit import FirstFit


class SlurmSiblings(FirstFit):
    name: str = "slurm_siblings"
    backfill: BackfillRule = PER_PARTITION
