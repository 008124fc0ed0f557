"""Reservations in a cycle: when a blocked job may start, and whether a job may pass it.

A partition's free GPUs over the coming hours form a step profile ``f(t)``: the GPUs free
now, plus those expected back by ``t`` (:class:`~aifactories.scheduling.estimate.Releases`),
minus those reserved at ``t``. Releases only raise ``f``; reservations lower it at their
start and give back at their end. So a job of ``g`` GPUs that fits now leaves every
reservation whole exactly when ``f >= g`` at each reservation start before its own end:
the classic EASY "ends before the shadow time, or only uses extra nodes" test falls out
for one reservation, Slurm's conservative backfill for many.

GPU counts, not nodes: like the expected start itself, this assumes the GPUs released
by then can be used together (see :mod:`aifactories.scheduling.estimate`).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Iterator

from aifactories.domain.ids import JobId
from aifactories.scheduling.estimate import Releases
from aifactories.scheduling.working import Hold, Slot

_MAX_TRIES = 4000  # start times tried per reservation; past that, no reservation is made


class _Dips:
    """``f`` at each reservation start of one slot, sorted, with running minima.

    Built when a reservation is added, then kept up to date placement by placement
    (:meth:`Reservations.placed`): rebuilding it from the release profile after every
    placement would cost a sort of that cycle's placements each time.
    """

    __slots__ = ("holds", "minima", "starts", "values")

    def __init__(self, holds: list[Hold], values: list[int]) -> None:
        self.holds = list(holds)  # sorted by start
        self.starts = [h.start for h in holds]
        self.values = values
        self.minima: list[int] = []
        self._minima()

    def _minima(self) -> None:
        minima: list[int] = []
        low = math.inf
        for value in self.values:
            low = min(low, value)
            minima.append(int(low))
        self.minima = minima

    def placed(self, ends_at: float, gpus: int) -> None:
        # A job placed now takes its GPUs from f at every reservation start before its end.
        k = bisect_left(self.starts, ends_at)
        if k:
            values = self.values
            for i in range(k):
                values[i] -= gpus
            self._minima()


class Reservations:
    def __init__(self, releases: Releases, now: float) -> None:
        self._releases = releases
        self._now = now
        self.by_job: dict[JobId, Hold] = {}

    def add(self, hold: Hold) -> None:
        insort(hold.slot.holds, hold, key=lambda h: (h.start, h.job_id))
        known = self.by_job.get(hold.job_id)
        if known is None or hold.start < known.start:  # a job's soonest reservation
            self.by_job[hold.job_id] = hold

    def free_at(self, slot: Slot, when: float) -> int:
        """``f(when)``: free GPUs expected at ``when`` with every reservation taken out."""
        reserved = sum(h.gpus for h in slot.holds if h.start <= when < h.end)
        return slot.free + self._releases.released_by(slot, when) - reserved

    def _dips(self, slot: Slot) -> _Dips:
        dips = slot.dips
        if isinstance(dips, _Dips) and len(dips.holds) == len(slot.holds):
            return dips
        holds = slot.holds
        built = _Dips(holds, [self.free_at(slot, h.start) for h in holds])
        slot.dips = built
        return built

    def placed(self, slot: Slot, ends_at: float, gpus: int) -> None:
        """A job was placed on ``slot`` now (after :meth:`Slot.take`): update the profile."""
        dips = slot.dips
        if isinstance(dips, _Dips) and len(dips.holds) == len(slot.holds):
            dips.placed(ends_at, gpus)

    def blocking(self, slot: Slot, gpus: int, end: float) -> Hold | None:
        """The first reservation a job of ``gpus`` GPUs running until ``end`` would break.

        The caller has checked that the job fits now; this only looks ahead.
        """
        holds = slot.holds
        if not holds or end <= holds[0].start:
            return None
        dips = self._dips(slot)
        k = bisect_left(dips.starts, end)
        if dips.minima[k - 1] >= gpus:
            return None
        return next(h for h, v in zip(dips.holds[:k], dips.values, strict=False) if v < gpus)

    def earliest(
        self, slot: Slot, gpus: int, duration: float, latest: float, resolution: float
    ) -> float | None:
        """The first start, no later than ``latest``, at which ``gpus`` GPUs stay free on
        ``slot`` for ``duration`` around every reservation; None if none is known.

        Only asked for jobs that do not fit now, so starts are tried at expected releases
        and reservation ends (where ``f`` rises), from the job's expected start on.
        """
        first = self._releases.expected_start(slot, gpus)
        if first is None or first > latest:
            return None
        # The expected start is an expected release, so the first of the rises: most jobs
        # start there, and trying it first spares merging the release and hold lists.
        start = first
        if resolution > 0:
            start = self._now + math.ceil((start - self._now) / resolution) * resolution
        if self._stays_free(slot, gpus, start, start + duration):
            return start
        for tries, start in enumerate(self._rises(slot, first)):
            if start > latest or tries >= _MAX_TRIES:
                return None
            if resolution > 0:  # Slurm plans on a grid of bf_resolution seconds
                start = self._now + math.ceil((start - self._now) / resolution) * resolution
            if self._stays_free(slot, gpus, start, start + duration):
                return start
        return None

    def _rises(self, slot: Slot, first: float) -> Iterator[float]:
        ends = sorted(h.end for h in slot.holds if h.end >= first)
        last = None
        for when in heapq.merge(self._releases.release_times(slot, first), iter(ends)):
            if when != last:
                last = when
                yield when

    def _stays_free(self, slot: Slot, gpus: int, start: float, end: float) -> bool:
        if self.free_at(slot, start) < gpus:
            return False
        return all(self.free_at(slot, h.start) >= gpus for h in slot.holds if start < h.start < end)
