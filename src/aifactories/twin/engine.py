"""A small deterministic discrete-event engine: a heap of (time, priority, sequence, event).

Ties in time are broken by a stated priority (ends before arrivals before scheduling cycles,
so that a cycle at time t sees every job that ended or arrived at t), then by insertion order,
so the same inputs always give the same run. The engine's clock implements the broker's
:class:`~aifactories.domain.clock.Clock` protocol: policies and the shared snapshot code see
virtual time exactly as they see wall time in production.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from enum import IntEnum
from typing import Any


class Priority(IntEnum):
    """Order of events at the same instant (lower first)."""

    OUTAGE = 0  # capacity changes first: a cycle must not place on a site that just failed
    JOB_END = 1
    JOB_ARRIVAL = 2
    CYCLE = 3
    SAMPLE = 4  # metrics sampling sees the state after the cycle


# A heap entry: (time, priority, sequence, action, label). A plain tuple, because tuples
# compare in C: a dataclass with order=True costs a Python call per comparison, and a long
# replay makes millions. The sequence is unique, so actions are never compared.
_Entry = tuple[float, int, int, Callable[[], None], str]


class VirtualClock:
    """The engine's time, readable through the Clock protocol."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def _advance_to(self, when: float) -> None:
        if when < self._now:
            raise ValueError(f"event at {when} is in the past (now {self._now})")
        self._now = when


class EventEngine:
    def __init__(self, start: float = 0.0) -> None:
        self.clock = VirtualClock(start)
        self._heap: list[_Entry] = []
        self._sequence = 0
        self.processed = 0

    def schedule(
        self, when: float, priority: Priority, action: Callable[[], None], label: str = ""
    ) -> None:
        if when < self.clock.now():
            raise ValueError(
                f"cannot schedule {label or 'an event'} at {when}, before now ({self.clock.now()})"
            )
        entry: _Entry = (when, int(priority), self._sequence, action, label)
        heapq.heappush(self._heap, entry)
        self._sequence += 1

    def __len__(self) -> int:
        return len(self._heap)

    def peek_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run(
        self,
        until: float | None = None,
        stop: Callable[[], bool] | None = None,
        on_event: Callable[[float], Any] | None = None,
    ) -> None:
        """Process events in order until the heap is empty, ``until`` is passed, or ``stop()``
        says so. ``on_event(now)`` is called after each event (progress bars)."""
        while self._heap:
            if until is not None and self._heap[0][0] > until:
                self.clock._advance_to(until)
                return
            when, _, _, action, _ = heapq.heappop(self._heap)
            self.clock._advance_to(when)
            action()
            self.processed += 1
            if on_event is not None:
                on_event(when)
            if stop is not None and stop():
                return
