"""Expected start times of jobs that fit nowhere now.

The estimate is deliberately simple, and documented as such to users ("around"):

* a partition gets GPUs back when the jobs holding them reach their expected end (start plus
  time limit, :meth:`ActiveJob.expected_end`); this cycle's own placements count too;
* the job is expected to start at the first such end at which the partition's free GPUs plus
  the GPUs released by then reach the GPUs the job holds.

We know GPU counts per node state, not which node each job runs on, so we assume released GPUs
can be used together. That is optimistic for gang jobs on a fragmented partition (Slurm's
backfill, which knows the nodes, can say later). GPUs held by jobs the federation does not
know (a site's local users) have no known end: if they are needed, there is no estimate.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from operator import itemgetter

from aifactories.domain.ids import PartitionId
from aifactories.domain.jobs import ActiveJob
from aifactories.scheduling.working import Slot

# Each partition's release profile by the very sequence of running jobs it was built from,
# across cycles: the twin hands a partition's jobs as the same tuple until one starts or
# ends there, and an overloaded federation runs many cycles in between (one per arrival).
# Kept by identity (the entry holds the sequence, so its id is never reused while kept).
_KEPT: dict[PartitionId, tuple[Sequence[ActiveJob], float, list[float], list[int]]] = {}


def _still(built: float, ends: list[float], now: float) -> bool:
    """Whether a profile built at ``built`` is the one its jobs give at ``now``: the same
    instant, or no job overdue at either (an overdue job counts as ending now)."""
    return now == built or not ends or (ends[0] > built and ends[0] >= now)


class Releases:
    """When each partition's busy GPUs come back, built lazily and cached per partition.

    The snapshot's releases (thousands per partition) are sorted once per cycle; this cycle's
    placements are kept apart and re-sorted only when more were made, so estimating a start
    in the middle of the cycle and again at its end does not sort the big list twice.
    """

    def __init__(
        self,
        active_jobs: Iterable[ActiveJob],
        now: float,
        by_partition: Mapping[PartitionId, Sequence[ActiveJob]] | None = None,
    ) -> None:
        self._now = now
        self._active = tuple(active_jobs)
        self._by_partition = by_partition
        # Active jobs' (end, GPUs) by partition, grouped once per cycle; each partition's
        # profile is sorted only when a question is asked about it.
        self._events: dict[PartitionId, list[tuple[float, int]]] | None = None
        self._base: dict[PartitionId, tuple[list[float], list[int]]] = {}
        # partition -> (number of this cycle's placements folded in, end times, cumulative GPUs)
        self._placed: dict[PartitionId, tuple[int, list[float], list[int]]] = {}
        self._known: dict[tuple[PartitionId, int, int], float | None] = {}

    def _snapshot_releases(self, partition_id: PartitionId) -> tuple[list[float], list[int]]:
        known = self._base.get(partition_id)
        if known is not None:
            return known
        grouped = self._by_partition
        if grouped is not None:  # the caller grouped them: read this partition's jobs only
            jobs = grouped.get(partition_id, ())
            kept = _KEPT.get(partition_id)
            if kept is not None and kept[0] is jobs and _still(kept[1], kept[2], self._now):
                known = self._base[partition_id] = kept[2], kept[3]
                return known
            found = _events(jobs, self._now).get(partition_id)
            known = self._base[partition_id] = _profile(found) if found else ([], [])
            _KEPT[partition_id] = (jobs, self._now, *known)
            return known
        else:
            if self._events is None:  # every partition's at once, in one pass
                self._events = _events(self._active, self._now)
            found = self._events.get(partition_id)
        known = self._base[partition_id] = _profile(found) if found else ([], [])
        return known

    def _placed_releases(self, slot: Slot) -> tuple[list[float], list[int]]:
        cached = self._placed.get(slot.id)
        if cached is not None and cached[0] == len(slot.placed):
            return cached[1], cached[2]
        ends, cumulative = _profile(list(slot.placed))
        self._placed[slot.id] = (len(slot.placed), ends, cumulative)
        return ends, cumulative

    def expected_start(self, slot: Slot, gpus: int) -> float | None:
        """When ``gpus`` GPUs are expected free on ``slot``'s partition, or None if unknown.

        Asked only for jobs that do not fit now, so the answer is never earlier than the
        next release, even when enough GPUs are free but scattered over nodes.
        """
        missing = gpus - slot.free
        key = (slot.id, len(slot.placed), missing)
        if key in self._known:  # wait reasons ask the same question for many jobs
            return self._known[key]
        base_ends, base_cum = self._snapshot_releases(slot.id)
        placed_ends, placed_cum = self._placed_releases(slot)
        first = _first_enough(base_ends, base_cum, placed_ends, placed_cum, missing)
        second = _first_enough(placed_ends, placed_cum, base_ends, base_cum, missing)
        if first is None or (second is not None and second < first):
            first = second
        self._known[key] = first
        return first

    def released_by(self, slot: Slot, when: float) -> int:
        """GPUs of ``slot``'s partition expected back by ``when`` (ends at ``when`` count)."""
        base_ends, base_cum = self._snapshot_releases(slot.id)
        placed_ends, placed_cum = self._placed_releases(slot)
        k = bisect_right(base_ends, when)
        j = bisect_right(placed_ends, when)
        return (base_cum[k - 1] if k else 0) + (placed_cum[j - 1] if j else 0)

    def release_times(self, slot: Slot, after: float) -> Iterator[float]:
        """The expected ends on ``slot``'s partition from ``after`` on, ascending."""
        base_ends, _ = self._snapshot_releases(slot.id)
        placed_ends, _ = self._placed_releases(slot)
        return heapq.merge(_tail(base_ends, after), _tail(placed_ends, after))


def _events(jobs: Iterable[ActiveJob], now: float) -> dict[PartitionId, list[tuple[float, int]]]:
    """(expected end, GPUs) of ``jobs`` by partition; an overdue job is expected now."""
    # ActiveJob.expected_end, inlined: tens of thousands of active jobs per cycle.
    events: defaultdict[PartitionId, list[tuple[float, int]]] = defaultdict(list)
    for job in jobs:
        started = job.started_at
        end = (now if started is None else started) + job.time_limit_s
        shape = job.shape
        events[job.partition_id].append(
            (end if end > now else now, shape.nodes * shape.gpus_per_node)
        )
    return events


def _tail(ends: list[float], after: float) -> Iterator[float]:
    # Indexing from a bisected start: islice would walk the skipped head of the list.
    return (ends[k] for k in range(bisect_left(ends, after), len(ends)))


def _profile(events: list[tuple[float, int]]) -> tuple[list[float], list[int]]:
    events.sort(key=itemgetter(0))  # float keys sort much faster than tuples
    return [end for end, _ in events], list(accumulate(gpus for _, gpus in events))


def _first_enough(
    ends: list[float], cum: list[int], other_ends: list[float], other_cum: list[int], missing: int
) -> float | None:
    """The first of ``ends`` by which both lists together have released ``missing`` GPUs.

    Binary search on ``ends``: released GPUs only grow with time, so the test is monotone.
    """
    low, high = 0, len(ends)
    while low < high:
        middle = (low + high) // 2
        k = bisect_right(other_ends, ends[middle])
        if cum[middle] + (other_cum[k - 1] if k else 0) >= missing:
            high = middle
        else:
            low = middle + 1
    return ends[low] if low < len(ends) else None
