"""The pending queue kept in a policy's standing order, for callers that cycle often.

Most policies order the queue by a key a job keeps while it waits (submission order: FIFO,
EASY, first fit, earliest start). For them a caller that runs cycle after cycle over a deep
queue (the twin: one cycle per arrival and per end) keeps the jobs sorted once, as they come
and go, and hands :func:`~aifactories.scheduling.run_cycle` the queue to read lazily; a
cycle then costs the jobs it reads, not the length of the queue (FIFO stops at its blocked
head, EASY once every partition is full). Policies whose order moves with time or usage
(fair share, multifactor) have no standing key and are ordered each cycle as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from sortedcontainers import SortedKeyList

from aifactories.domain.ids import JobId
from aifactories.domain.jobs import PendingJob

StandingKey = Callable[[PendingJob], Any]


def submission_key(job: PendingJob) -> tuple[float, int]:
    """Oldest first, the job id breaking ties: what ``submission_order`` sorts by."""
    return (job.submitted_at, job.id)


class StandingQueue(Sequence[PendingJob]):
    """Pending jobs sorted by ``key``; adding and removing a job costs O(log n)."""

    def __init__(self, key: StandingKey) -> None:
        self._jobs: SortedKeyList = SortedKeyList(key=key)
        self._by_id: dict[JobId, PendingJob] = {}

    def add(self, job: PendingJob) -> None:
        if job.id in self._by_id:
            raise ValueError(f"job {job.id} is already in the queue")
        self._by_id[job.id] = job
        self._jobs.add(job)

    def remove(self, job_id: JobId) -> PendingJob:
        job = self._by_id.pop(job_id)
        self._jobs.remove(job)
        return job

    def __contains__(self, job: object) -> bool:
        return isinstance(job, PendingJob) and self._by_id.get(job.id) is job

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[PendingJob]:
        return iter(self._jobs)

    @overload
    def __getitem__(self, index: int) -> PendingJob: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[PendingJob]: ...

    def __getitem__(self, index: int | slice) -> PendingJob | Sequence[PendingJob]:
        item = self._jobs[index]
        return list(item) if isinstance(index, slice) else item


def standing_key_of(policy: object) -> StandingKey | None:
    """The policy's standing key (an optional attribute of a policy), or None."""
    key = getattr(policy, "standing_key", None)
    return key if callable(key) else None
