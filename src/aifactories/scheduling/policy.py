"""The policy interface: a policy orders the pending jobs and picks one partition per job.

Everything a policy must respect (hardware, gang shape, residency, budget, capacity, the
reservation of a blocked head job) is enforced by :func:`~aifactories.scheduling.run_cycle`
before a policy is asked, so a policy only ever sees partitions where the job fits *now*,
budget included, and cannot break a rule by choosing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from aifactories.domain.ids import AllocationId, PartitionId
from aifactories.domain.jobs import PendingJob, Shape
from aifactories.scheduling.backfill import BackfillRule
from aifactories.scheduling.snapshot import PartitionState, Snapshot


class Candidate(NamedTuple):
    """A partition where the job fits now, with the allocation that would pay for it.

    A tuple rather than a dataclass on purpose: a cycle builds tens of thousands of these
    and a NamedTuple is several times cheaper to construct than a frozen dataclass.
    """

    state: PartitionState
    order: int  # position of the partition in the snapshot, i.e. catalogue order
    shape: Shape
    allocation_id: AllocationId
    reserved_gpu_seconds: int
    free_gpus: int  # free GPUs of the partition in this cycle, before this job
    total_gpus: int
    billing_weight: float
    expected_start: float  # candidates fit now, so this is the cycle's ``now``

    @property
    def partition_id(self) -> PartitionId:
        return self.state.partition.id

    @property
    def free_fraction(self) -> float:
        """Share of the partition's GPUs still free in this cycle: 1.0 is an idle partition."""
        return self.free_gpus / self.total_gpus


@dataclass(frozen=True, slots=True)
class CycleContext:
    """What a policy may look at besides the candidates: the cycle's time and snapshot."""

    now: float
    snapshot: Snapshot


class Policy(Protocol):
    """A pure placement strategy. Implementations keep no state between calls."""

    name: str
    backfill: BackfillRule
    """How later jobs may pass a blocked one (:mod:`aifactories.scheduling.backfill`);
    enforced by ``run_cycle``, the same for every policy."""

    def order(
        self, pending: Sequence[PendingJob], snapshot: Snapshot, now: float
    ) -> list[PendingJob]:
        """The pending jobs in the order they are offered capacity (each exactly once)."""
        ...

    def choose(
        self, job: PendingJob, candidates: Sequence[Candidate], context: CycleContext
    ) -> Candidate | None:
        """One of ``candidates`` (never empty, in catalogue order), or None to leave it pending."""
        ...
