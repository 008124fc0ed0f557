"""The pending queue kept in a policy's standing order, for callers that cycle often.

Most policies order the queue by a key a job keeps while it waits (submission order: FIFO,
EASY, first fit, earliest start). For them a caller that runs cycle after cycle over a deep
queue (the twin: one cycle per arrival and per end) keeps the jobs sorted once, as they come
and go, and hands :func:`~aifactories.scheduling.run_cycle` the queue to read lazily; a
cycle then costs the jobs it reads, not the length of the queue (FIFO stops at its blocked
head, EASY once every partition is full). Policies whose order moves with time or usage
(fair share, multifactor) have no standing key and are ordered each cycle as before.

The queue is also kept grouped by fit class (``JobSpec.fit_key``: jobs that fit the same
partitions in the same shape), each group in the standing order. A cycle reads the queue as
a lazy merge of the groups (:meth:`StandingQueue.read`) and drops a whole group once no job
of it can start in this cycle: under a deep queue that many free GPUs cannot serve (the
twin's overloaded federation, a million jobs queued) a cycle then costs the jobs it reads
of the live groups, not the jobs it would pass over one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from heapq import heappop, heapreplace
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
        self._key = key
        self._jobs: SortedKeyList = SortedKeyList(key=key)
        self._by_id: dict[JobId, PendingJob] = {}
        # The same jobs by fit class, each group in the same order (for :meth:`read`).
        self._groups: dict[Hashable, SortedKeyList] = {}

    def add(self, job: PendingJob) -> None:
        if job.id in self._by_id:
            raise ValueError(f"job {job.id} is already in the queue")
        self._by_id[job.id] = job
        self._jobs.add(job)
        group = self._groups.get(job.spec.fit_key)
        if group is None:
            group = self._groups[job.spec.fit_key] = SortedKeyList(key=self._key)
        group.add(job)

    def remove(self, job_id: JobId) -> PendingJob:
        job = self._by_id.pop(job_id)
        self._jobs.remove(job)
        group = self._groups[job.spec.fit_key]
        group.remove(job)
        if not group:  # fit classes come and go: a cycle reads only those with jobs
            del self._groups[job.spec.fit_key]
        return job

    def read(self) -> MergedRead:
        """The queue in its order, as a merge of its fit classes that can drop one."""
        return MergedRead(self._groups, self._key)

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


class MergedRead:
    """One cycle's read of a :class:`StandingQueue`: its jobs in the standing order, merged
    lazily from the fit-class groups, less the groups :meth:`drop` ended.

    Standing keys are unique (they end with the job id), so the merge gives exactly the
    queue's own order. The queue must not change while it is read (a cycle only decides;
    its caller starts the placed jobs afterwards).
    """

    def __init__(self, groups: dict[Hashable, SortedKeyList], key: StandingKey) -> None:
        self._key = key
        self._dropped: set[Hashable] = set()
        # One entry per group: (key of its next job, fit class number, job, fit class, rest).
        heap: list[tuple[Any, int, PendingJob, Hashable, Iterator[PendingJob]]] = []
        for number, (fit_key, group) in enumerate(groups.items()):
            jobs = iter(group)
            first = next(jobs)  # the queue keeps no empty group
            heap.append((key(first), number, first, fit_key, jobs))
        heap.sort()
        self._heap = heap

    def drop(self, fit_key: Hashable) -> None:
        """Read no more jobs of this fit class (the caller knows none of them can start)."""
        self._dropped.add(fit_key)

    def __iter__(self) -> Iterator[PendingJob]:
        heap, dropped, key = self._heap, self._dropped, self._key
        while heap:
            _, number, job, fit_key, jobs = heap[0]
            if fit_key in dropped:
                heappop(heap)
                continue
            yield job
            if fit_key in dropped:
                heappop(heap)
                continue
            following = next(jobs, None)
            if following is None:
                heappop(heap)
            else:
                heapreplace(heap, (key(following), number, following, fit_key, jobs))


def standing_key_of(policy: object) -> StandingKey | None:
    """The policy's standing key (an optional attribute of a policy), or None."""
    key = getattr(policy, "standing_key", None)
    return key if callable(key) else None
